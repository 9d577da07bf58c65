// ctxexec/threads/run_sync.hpp
//
// Defines `run_sync_with_context()`: run a blocking function on a worker
// thread, inside a copy of the caller's context, without blocking the event
// loop, and at most as many at once as a `capacity_limiter` allows (40 by
// default). Starlette's `run_in_threadpool`, anyio's `to_thread.run_sync`
// and asyncio's `to_thread`, for Boost.Asio; also `run_sync_options`.
//
// Example:
//   auto guard = user_id.scoped_set(42);
//   auto rows = co_await ctxexec::run_sync_with_context(
//       [&] { return db.query(sql); },   // sees user_id == 42
//       boost::asio::use_awaitable);
//
// Writes made by `fn` stay in its copy: they never flow back to the caller
// (as with anyio). A call made from code that itself runs under a token of
// the same limiter (through from_thread) and finds no free token fails with
// `starvation_error` instead of waiting forever; see docs/executors.md.

#ifndef CTXEXEC_THREADS_RUN_SYNC_HPP
#define CTXEXEC_THREADS_RUN_SYNC_HPP

#include <ctxexec/asio/bind_context.hpp>
#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/detail/known_executors.hpp>
#include <ctxexec/context.hpp>
#include <ctxexec/threads/blocking_pool.hpp>
#include <ctxexec/threads/capacity_limiter.hpp>
#include <ctxexec/threads/detail/execution_context_of.hpp>
#include <ctxexec/threads/detail/worker_call.hpp>
#include <ctxexec/threads/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <concepts>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace ctxexec {

/// Where and how `run_sync_with_context` runs a function.
///
/// Thread safety: a plain aggregate. Errors: none.
/// Example: `ctxexec::run_sync_options{.limiter = &db_limiter}`
struct run_sync_options {
  /// Where the token comes from. nullptr: `default_thread_limiter()` of the
  /// execution context of the completion handler's associated executor.
  capacity_limiter* limiter = nullptr;
  /// Where the function runs. nullptr: `default_blocking_pool()` of that
  /// same execution context.
  blocking_pool* pool = nullptr;
  /// On cancellation while the function runs, complete at once with
  /// `operation_aborted`; the thread finishes in the background and
  /// releases its token when it does (anyio's `abandon_on_cancel`).
  /// Otherwise a cancellation only interrupts the wait for a token.
  bool abandon_on_cancel = false;
};

namespace detail {

template <class R>
struct run_sync_signature {
  using type = void(std::exception_ptr, R);
};
template <>
struct run_sync_signature<void> {
  using type = void(std::exception_ptr);
};

/// Whether code running in the current context already holds a token of
/// `limiter` (it runs, through from_thread, on behalf of a worker that
/// does): how a nested call recognises starvation.
inline bool holds_token_of(const capacity_limiter& limiter) {
  const std::shared_ptr<worker_call> call = current_worker_call();
  return call != nullptr && call->limiter() == &limiter;
}

/// The io_context under `ex`, when ex is (or wraps, in an any_io_executor,
/// a strand or a context_executor) an io_context executor; else nullptr.
template <class Executor>
boost::asio::io_context* io_context_of(const Executor& ex) {
  if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>) {
    return find_io_context(ex);
  } else if constexpr (requires { ex.get_inner_executor(); }) {
    return io_context_of(ex.get_inner_executor());
  } else if constexpr (requires {
                         {
                           ex.context()
                           } -> std::same_as<boost::asio::io_context&>;
                       }) {
    return &ex.context();
  } else {
    return nullptr;
  }
}

/// default_thread_limiter() of the execution context that runs `ex`, made
/// with the io_context's own executor when `ex` shows one (see
/// default_thread_limiter's note on the first call).
template <class Executor>
capacity_limiter& default_thread_limiter_for(const Executor& ex) {
  if (boost::asio::io_context* io = io_context_of(ex)) {
    return default_thread_limiter(*io);
  }
  return default_thread_limiter(execution_context_of(ex));
}

/// One call: the handler, the function and its context, the token, and
/// the outcome. Shared by the loop side and the worker.
template <class Handler, class F, class R>
class run_sync_op
    : public std::enable_shared_from_this<run_sync_op<Handler, F, R>> {
  using handler_executor =
      boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;
  using tracked_executor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<const handler_executor&>(),
      boost::asio::execution::outstanding_work.tracked))>;

 public:
  run_sync_op(Handler handler, const handler_executor& ex, F fn, context ctx,
              capacity_limiter& limiter, blocking_pool& pool,
              bool abandon_on_cancel)
      : handler_(std::move(handler)),
        work_(boost::asio::prefer(
            ex, boost::asio::execution::outstanding_work.tracked)),
        fn_(std::in_place, std::move(fn)),
        ctx_(std::move(ctx)),
        limiter_(limiter),
        state_(&limiter_access::state(limiter)),
        pool_(pool),
        abandon_on_cancel_(abandon_on_cancel),
        call_(std::make_shared<worker_call>(&limiter)) {
    // Allocated before any token is taken, so that taking one is the last
    // step that can fail before the pool has the function. The token goes
    // back through the shared state, which outlives the limiter if it must
    // (an abandoned function may finish after its caller destroyed it).
    state_->add_ref();
  }

  run_sync_op(const run_sync_op&) = delete;
  run_sync_op& operator=(const run_sync_op&) = delete;
  ~run_sync_op() { state_->drop_ref(); }

  /// Step 1 (the caller's thread): take a token, or wait for one. The
  /// token is borrowed on behalf of this call, not of the calling task (as
  /// anyio's to_thread.run_sync does): a task may have several calls in
  /// flight on one limiter.
  void start() {
    if (state_->try_acquire(borrower_id{})) {
      submit();
      return;
    }
    if (holds_token_of(limiter_)) {
      complete_with(std::make_exception_ptr(starvation_error(
          "ctxexec::run_sync_with_context: no free token, and the caller "
          "already holds one of the same limiter (every token may be held "
          "by code waiting for a token); see docs/executors.md")));
      return;
    }
    auto slot = boost::asio::get_associated_cancellation_slot(handler_);
    auto on_token =
        [self = this->shared_from_this()](boost::system::error_code ec) {
          if (ec) {
            self->complete_with(
                std::make_exception_ptr(boost::system::system_error(ec)));
          } else {
            self->submit();
          }
        };
    // The wait completes on the handler's executor, where cancellation is
    // emitted too.
    limiter_access::async_acquire_anonymous(
        limiter_,
        boost::asio::bind_cancellation_slot(
            slot, boost::asio::bind_executor(work_, std::move(on_token))));
  }

 private:
  /// Step 2: a token is held; hand the function to the pool. Never throws:
  /// on failure the token goes back and the call completes with the error.
  void submit() noexcept {
    try {
      // Until the function starts, a cancellation of any type aborts the
      // call; afterwards see cancel().
      auto slot = boost::asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected()) {
        slot.template emplace<cancellation_handler>(this->weak_from_this());
      }
      blocking_pool_access::impl(pool_).submit(
          [ctx = std::move(ctx_), self = this->shared_from_this()]() mutable {
            return ctx.run([&] { return self->run(); });
          });
    } catch (...) {
      phase_.store(phase::done, std::memory_order_relaxed);
      call_->finish();
      state_->release_unrecorded();
      complete_with(std::current_exception());
    }
  }

  struct cancellation_handler {
    explicit cancellation_handler(std::weak_ptr<run_sync_op> o)
        : op(std::move(o)) {}
    std::weak_ptr<run_sync_op> op;
    void operator()(boost::asio::cancellation_type_t type) const {
      if (type == boost::asio::cancellation_type::none) return;
      if (auto self = op.lock()) self->cancel(type);
    }
  };

  /// A cancellation signal, on the handler's executor. Before the function
  /// has started (anyio checks for cancellation there too), any type
  /// aborts the call: the function never runs, the token goes back now.
  /// Once it runs it has side effects, so only terminal cancellation
  /// counts (partial and total promise none): it cancels the tasks the
  /// function started with from_thread::run (anyio: they live in the
  /// host's cancel scope), and with abandon_on_cancel it completes the
  /// call at once while the thread finishes alone.
  void cancel(boost::asio::cancellation_type_t type) {
    phase expected = phase::queued;
    if (phase_.compare_exchange_strong(expected, phase::done,
                                       std::memory_order_acq_rel)) {
      fn_.reset();  // the worker will not touch it: it lost the race
      call_->finish();
      state_->release_unrecorded();
      complete_with(std::make_exception_ptr(
          boost::system::system_error(boost::asio::error::operation_aborted)));
      return;
    }
    if (expected == phase::running &&
        (type & boost::asio::cancellation_type::terminal) !=
            boost::asio::cancellation_type::none) {
      if (abandon_on_cancel_) {
        complete_with(std::make_exception_ptr(boost::system::system_error(
            boost::asio::error::operation_aborted)));
      }
      call_->cancel_tasks();
    }
  }

  /// Step 3 (a worker, inside the copied context): run, unless the call
  /// was cancelled first. Returns the hand-off, which the worker runs once
  /// it counts as idle.
  blocking_pool::work_item run() {
    phase expected = phase::queued;
    if (!phase_.compare_exchange_strong(expected, phase::running,
                                        std::memory_order_acq_rel)) {
      return nullptr;  // cancelled: the call is complete, its token back
    }
    (void)worker_call_var().set(call_);
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::move(*fn_));
        result_.emplace();
      } else {
        result_.emplace(std::invoke(std::move(*fn_)));
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    fn_.reset();  // what it captured goes now, on the worker
    return [self = this->shared_from_this()] { self->hand_off(); };
  }

  /// Step 4 (the same worker, idle now): give the token back, then deliver
  /// the result. The caller resumes, and may call again, only after the
  /// worker counts as idle: sequential calls reuse one worker (anyio's do
  /// too) instead of starting a thread each.
  void hand_off() {
    call_->finish();
    state_->release_unrecorded();
    complete_with(error_);
  }

  /// Delivers the outcome on the handler's executor, once. If even that
  /// cannot be queued (std::bad_alloc), the handler would be lost without a
  /// call: the process terminates instead, as the limiter's does.
  void complete_with(std::exception_ptr e) noexcept {
    if (completed_.exchange(true, std::memory_order_acq_rel)) return;
    try {
      deliver(std::move(e));
    } catch (...) {
      std::fputs("ctxexec::run_sync_with_context: cannot queue a completion\n",
                 stderr);
      std::terminate();
    }
  }

  void deliver(std::exception_ptr e) {
    boost::asio::post(work_, [self = this->shared_from_this(), e]() mutable {
      auto slot = boost::asio::get_associated_cancellation_slot(self->handler_);
      if (slot.is_connected()) slot.clear();
      Handler handler = std::move(self->handler_);
      if constexpr (std::is_void_v<R>) {
        self.reset();
        std::move(handler)(e);
      } else {
        std::optional<R> value;
        if (!e) value.emplace(std::move(*self->result_));
        self.reset();
        if (value) {
          std::move(handler)(std::exception_ptr(), std::move(*value));
        } else {
          std::move(handler)(e, R());
        }
      }
    });
  }

  using result_type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

  /// queued: submitted, the function not started; running: started (by a
  /// worker that won the race against cancel()); done: cancelled before it
  /// started, or never submitted.
  enum class phase : unsigned char { queued, running, done };

  Handler handler_;
  tracked_executor work_;
  std::optional<F> fn_;
  context ctx_;
  capacity_limiter& limiter_;  // used on the caller's thread only
  limiter_state* const state_;
  blocking_pool& pool_;
  const bool abandon_on_cancel_;
  const std::shared_ptr<worker_call> call_;
  std::optional<result_type> result_;
  std::exception_ptr error_;
  std::atomic<bool> completed_{false};
  std::atomic<phase> phase_{phase::queued};
};

template <class F>
using run_sync_result_t = std::invoke_result_t<std::decay_t<F>&&>;

template <class R>
inline constexpr bool valid_run_sync_result =
    std::is_void_v<R> ||
    (std::is_object_v<R> && std::is_default_constructible_v<R> &&
     std::is_move_constructible_v<R>);

struct initiate_run_sync {
  template <class Handler, class F>
  void operator()(Handler&& handler, F&& fn, context ctx,
                  run_sync_options options) const {
    using handler_type = std::decay_t<Handler>;
    using fn_type = std::decay_t<F>;
    using R = run_sync_result_t<F>;
    const auto fallback =
        options.limiter != nullptr
            ? options.limiter->get_executor()
            : boost::asio::any_io_executor(boost::asio::system_executor());
    const auto ex = boost::asio::get_associated_executor(handler, fallback);
    boost::asio::execution_context& owner = execution_context_of(ex);
    capacity_limiter& limiter = options.limiter != nullptr
                                    ? *options.limiter
                                    : default_thread_limiter_for(ex);
    blocking_pool& pool =
        options.pool != nullptr ? *options.pool : default_blocking_pool(owner);
    auto op = std::make_shared<run_sync_op<handler_type, fn_type, R>>(
        std::forward<Handler>(handler), ex, std::forward<F>(fn), std::move(ctx),
        limiter, pool, options.abandon_on_cancel);
    op->start();
  }
};

}  // namespace detail

/// Runs `fn()` on a worker thread of a blocking pool, inside a copy of the
/// current context, once a token of a capacity limiter is free; completes
/// with its result.
///
/// Completion signature: `void(std::exception_ptr, R)`, or
/// `void(std::exception_ptr)` when `fn` returns void; with `use_awaitable`
/// the caller gets `R` or `fn`'s exception rethrown. Every completion token
/// works (`use_awaitable`, `deferred`, `use_future`, callbacks). The
/// function is invoked once, as an rvalue. R is void or an object type
/// that is default-constructible (the error path passes `R()`) and movable;
/// it may be move-only. Other return types do not compile.
///
/// Limiter and pool: `options.limiter` / `options.pool`, by default
/// `default_thread_limiter()` / `default_blocking_pool()` of the execution
/// context of the completion handler's associated executor (the caller's
/// io_context, for a coroutine); with neither an associated executor nor
/// `options.limiter`, the system context's.
///
/// Thread safety: safe to call from any thread; completes on the handler's
/// associated executor (default: the limiter's executor, else the system
/// executor), never inside this call.
///
/// Propagation: the context is copied when this function is called; `fn`
/// runs in that copy (its writes stay there), and the worker returns to its
/// empty context after it. A callback's completion runs in another snapshot
/// taken at the call (as a done-callback); a coroutine resumes in its own
/// context.
///
/// Order: the token is taken before `fn` runs and released after it
/// returns and before the completion is delivered, so the limiter's
/// `statistics()` no longer count it when the caller resumes.
///
/// Borrowing: the token is taken on behalf of this call, never of the
/// calling task (anyio's to_thread.run_sync borrows for a fresh object per
/// call too), so the limiter's one-token-per-borrower rule does not apply:
/// a task may have several calls in flight on one limiter.
///
/// Cancellation (the handler's cancellation slot): until `fn` has started
/// (while the call waits for a token, or for a worker), any type of
/// cancellation aborts the call: `fn` never runs, a token already taken is
/// returned at once, and the call completes with
/// `boost::system::system_error(operation_aborted)` (anyio checks for
/// cancellation before it starts the function too). Once `fn` runs,
/// partial and total cancellation are ignored (they promise no side
/// effects); terminal cancellation cancels the tasks `fn` started with
/// `from_thread::run` (anyio: they live in the host's cancel scope), and
/// with `options.abandon_on_cancel` also completes the call at once.
///
/// Errors (delivered as the exception_ptr, rethrown by `use_awaitable`):
/// `fn`'s exception; `system_error(operation_aborted)` on cancellation;
/// `starvation_error` when no token is free and the calling code already
/// holds one of the same limiter (see docs/executors.md); `shutdown_error`
/// when the pool is shut down. If even the completion cannot be queued
/// (std::bad_alloc), the process terminates rather than lose the handler.
/// Lifetime: the limiter and pool must exist when this is called; an
/// abandoned function may finish after its limiter is destroyed.
///
/// Example:
///   std::string text = co_await ctxexec::run_sync_with_context(
///       [] { return llm.complete(prompt); }, boost::asio::use_awaitable);
template <class F, class CompletionToken>
auto run_sync_with_context(const run_sync_options& options, F&& fn,
                           CompletionToken&& token) {
  using R = detail::run_sync_result_t<F>;
  static_assert(detail::valid_run_sync_result<R>,
                "run_sync_with_context: fn must return void or a movable, "
                "default-constructible object type (not a reference); wrap a "
                "reference in std::ref or return a pointer");
  using signature = typename detail::run_sync_signature<R>::type;
  context ctx = copy_context();
  if constexpr (detail::is_use_awaitable<std::decay_t<CompletionToken>>) {
    // The coroutine resumes in its own context: no snapshot needed.
    return boost::asio::async_initiate<CompletionToken, signature>(
        detail::initiate_run_sync{}, token, std::forward<F>(fn), std::move(ctx),
        options);
  } else {
    auto bound = bind_context(std::forward<CompletionToken>(token));
    return boost::asio::async_initiate<decltype(bound), signature>(
        detail::initiate_run_sync{}, bound, std::forward<F>(fn), std::move(ctx),
        options);
  }
}

/// `run_sync_with_context` with the default limiter and pool.
template <class F, class CompletionToken>
auto run_sync_with_context(F&& fn, CompletionToken&& token) {
  return run_sync_with_context(run_sync_options{}, std::forward<F>(fn),
                               std::forward<CompletionToken>(token));
}

/// `run_sync_with_context` with tokens from `limiter` (and the default
/// pool). The default completion executor is the limiter's.
template <class F, class CompletionToken>
auto run_sync_with_context(capacity_limiter& limiter, F&& fn,
                           CompletionToken&& token) {
  run_sync_options options;
  options.limiter = &limiter;
  return run_sync_with_context(options, std::forward<F>(fn),
                               std::forward<CompletionToken>(token));
}

}  // namespace ctxexec

#endif  // CTXEXEC_THREADS_RUN_SYNC_HPP
