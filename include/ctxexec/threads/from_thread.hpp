// ctxexec/threads/from_thread.hpp
//
// Defines `from_thread::run()` and `from_thread::run_sync()`: from a worker
// thread (a `run_sync_with_context` function, or any thread that is not the
// event loop), run code on the event loop and block until its result
// arrives. anyio's `from_thread.run` / `from_thread.run_sync`. The code runs
// in a copy of the calling thread's context.
//
// Example (inside a function given to run_sync_with_context):
//   int n = ctxexec::from_thread::run(ex, [] { return count_sessions(); });
//   ctxexec::from_thread::run_sync(ex, [] { metrics.bump(); });
//
// A task that a `run_sync_with_context` function starts with `run()` is
// cancelled (terminal) when that call is: anyio's from_thread.run tasks
// live in the host task's cancel scope.
//
// Invalid calls: calling either from a thread that runs `ex`'s event loop
// would wait for itself; it throws `wrong_thread_error` instead.

#ifndef CTXEXEC_THREADS_FROM_THREAD_HPP
#define CTXEXEC_THREADS_FROM_THREAD_HPP

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/detail/asio_private.hpp>
#include <ctxexec/context.hpp>
#include <ctxexec/threads/blocking_pool.hpp>
#include <ctxexec/threads/detail/execution_context_of.hpp>
#include <ctxexec/threads/detail/mutex.hpp>
#include <ctxexec/threads/detail/worker_call.hpp>
#include <ctxexec/threads/errors.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/thread_pool.hpp>

#include <absl/base/thread_annotations.h>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace ctxexec {

namespace detail {

/// Whether the calling thread runs the event loop behind `ex`: inside the
/// executor itself (a strand, say), or inside run() of its io_context or
/// thread_pool. Asio's scheduler knows the threads inside its run(); it is
/// what those executors' own running_in_this_thread() asks.
template <class Executor>
bool runs_event_loop_of(const Executor& ex) {
  if constexpr (requires { ex.running_in_this_thread(); }) {
    if (ex.running_in_this_thread()) return true;
  }
  return runs_scheduler_of(execution_context_of(ex));
}

/// The rendezvous of one from_thread call: the outcome, set once by the
/// loop (or by the loop's destruction), waited for by the calling thread.
template <class R>
class from_thread_state final : public loop_waiter {
 public:
  using value_type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

  void set_value(value_type v) {
    mutex_lock lock(mu_);
    if (done_) return;
    value_.emplace(std::move(v));
    done_ = true;
    cv_.notify_all();
  }

  void set_error(std::exception_ptr e) {
    mutex_lock lock(mu_);
    if (done_) return;
    error_ = std::move(e);
    done_ = true;
    cv_.notify_all();
  }

  void loop_gone() noexcept override {
    set_error(std::make_exception_ptr(shutdown_error(
        "ctxexec::from_thread: the event loop cannot serve the call: it is "
        "being destroyed, or this worker's pool is being shut down from it")));
  }

  R wait() {
    mutex_lock lock(mu_);
    cv_.wait(mu_,
             [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; });
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return std::move(*value_);
  }

 private:
  mutex mu_;
  condition_variable cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<value_type> value_ ABSL_GUARDED_BY(mu_);
  std::exception_ptr error_ ABSL_GUARDED_BY(mu_);
};

/// Sets the state's outcome when called; if destroyed uncalled (the loop
/// dropped the handler), reports that instead, so the waiter never hangs.
template <class R>
class from_thread_reply {
 public:
  explicit from_thread_reply(std::shared_ptr<from_thread_state<R>> s)
      : state_(std::move(s)) {}
  from_thread_reply(from_thread_reply&&) noexcept = default;
  from_thread_reply& operator=(from_thread_reply&&) noexcept = default;
  ~from_thread_reply() {
    if (state_) {
      state_->set_error(std::make_exception_ptr(shutdown_error(
          "ctxexec::from_thread: the event loop dropped the call without "
          "running it")));
    }
  }

  template <class... V>
  void operator()(std::exception_ptr e, V&&... v) {
    auto s = std::move(state_);
    if (e) {
      s->set_error(std::move(e));
    } else if constexpr (sizeof...(V) == 0) {
      s->set_value({});
    } else {
      s->set_value(
          typename from_thread_state<R>::value_type(std::forward<V>(v)...));
    }
  }

 private:
  std::shared_ptr<from_thread_state<R>> state_;
};

/// Registers `state` with the loop's watch for the duration of the wait.
template <class R, class Executor, class Start>
R wait_on_loop(const Executor& ex, Start start) {
  if (runs_event_loop_of(ex)) {
    throw wrong_thread_error(
        "ctxexec::from_thread: called on the event loop's own thread, where "
        "it would wait for itself; co_await the code instead");
  }
  auto state = std::make_shared<from_thread_state<R>>();
  // Woken with an error if the target loop is destroyed, or if this
  // worker's pool is shut down from an event-loop thread.
  struct registration {
    std::shared_ptr<loop_watch> watch;
    loop_waiter* w = nullptr;
    ~registration() {
      if (watch) watch->remove(w);
    }
  };
  registration loop{
      boost::asio::use_service<blocking_pool_service>(execution_context_of(ex))
          .watch(),
      state.get()};
  if (!loop.watch->add(state.get())) {
    loop.watch = nullptr;
    throw shutdown_error(
        "ctxexec::from_thread: the event loop is being destroyed");
  }
  registration pool;
  if (blocking_pool_impl* p = blocking_pool_impl::current()) {
    pool.watch = p->waiters();
    pool.w = state.get();
    if (!pool.watch->add(state.get())) {
      pool.watch = nullptr;
      throw shutdown_error(
          "ctxexec::from_thread: this worker's pool is being shut down from "
          "the event loop");
    }
  }
  start(from_thread_reply<R>(state));
  return state->wait();
}

/// A from_thread::run task started by a run_sync_with_context function:
/// its cancellation signal, which the call emits through the task's
/// executor when it is cancelled. Registered with the call from the spawn
/// until from_thread::run returns. The signal is emitted at most once, on
/// the loop, and outlives every emission (each holds a reference).
template <class Executor>
class from_thread_task final
    : public worker_call::task,
      public std::enable_shared_from_this<from_thread_task<Executor>> {
 public:
  explicit from_thread_task(const Executor& ex) : ex_(ex) {}

  boost::asio::cancellation_slot slot() noexcept { return signal_.slot(); }

  void cancel() override {
    boost::asio::post(ex_, [self = this->shared_from_this()] {
      self->signal_.emit(boost::asio::cancellation_type::terminal);
    });
  }

 private:
  Executor ex_;
  boost::asio::cancellation_signal signal_;
};

/// Keeps a from_thread::run task registered with its call while the
/// calling thread waits for it.
class task_registration {
 public:
  task_registration(std::shared_ptr<worker_call> call,
                    std::shared_ptr<worker_call::task> task) noexcept
      : call_(std::move(call)), task_(std::move(task)) {}
  task_registration(const task_registration&) = delete;
  task_registration& operator=(const task_registration&) = delete;
  ~task_registration() {
    if (registered_) call_->remove(task_.get());
  }

  /// After the spawn: registers the task, or cancels it at once when the
  /// call was cancelled already (a task started then begins cancelled).
  void add() {
    registered_ = call_->add(task_);
    if (!registered_) task_->cancel();
  }

 private:
  std::shared_ptr<worker_call> call_;
  std::shared_ptr<worker_call::task> task_;
  bool registered_ = false;
};

}  // namespace detail

namespace from_thread {

/// Runs `fn()` (a function returning `boost::asio::awaitable<R>`) as a task
/// on `ex`'s event loop and blocks the calling thread until it completes;
/// returns its result or rethrows its exception.
///
/// Thread safety: safe from any thread except one running `ex`'s loop.
///
/// Propagation: the task runs in a copy of the calling thread's context,
/// taken at this call (as `ctxexec::co_spawn`); its writes never flow back.
///
/// Cancellation: called from a `run_sync_with_context` function, the task
/// belongs to that call, as anyio's task belongs to the host's cancel
/// scope: a terminal cancellation of the call while the function runs
/// (with or without `abandon_on_cancel`) is emitted into the task, through
/// `ex`; a task started after it begins cancelled (its first `co_await` of
/// an operation throws `operation_aborted`, Asio's default). This call then
/// rethrows what the task ends with, typically
/// `system_error(operation_aborted)`. Elsewhere the task runs on its own.
///
/// Errors: `wrong_thread_error` when called on a thread that runs `ex`'s
/// loop (detected for io_context and thread_pool executors, strands and
/// context executors over them); `shutdown_error` when the loop is
/// destroyed, or drops the task, before it completes; the task's own
/// exception. If the loop is merely stopped and never run again, the call
/// waits (as anyio's does).
///
/// Example:
///   auto user = ctxexec::from_thread::run(ex, [] { return load_user(); });
template <class Executor, class F>
auto run(const Executor& ex, F&& fn) {
  using awaitable_type = std::invoke_result_t<std::decay_t<F>&>;
  using R = typename awaitable_type::value_type;
  std::shared_ptr<detail::worker_call> call = detail::current_worker_call();
  if (call == nullptr) {
    return detail::wait_on_loop<R>(ex, [&](detail::from_thread_reply<R> reply) {
      ctxexec::co_spawn(ex, std::forward<F>(fn), std::move(reply));
    });
  }
  auto task = std::make_shared<detail::from_thread_task<Executor>>(ex);
  detail::task_registration registration(std::move(call), task);
  return detail::wait_on_loop<R>(ex, [&](detail::from_thread_reply<R> reply) {
    ctxexec::co_spawn(
        ex, std::forward<F>(fn),
        boost::asio::bind_cancellation_slot(task->slot(), std::move(reply)));
    registration.add();
  });
}

/// Runs `fn()` on `ex`'s event loop and blocks the calling thread until it
/// returns; returns its result or rethrows its exception.
///
/// Thread safety, propagation and errors: as `run()`; `fn` runs in a copy
/// of the calling thread's context.
///
/// Example:
///   ctxexec::from_thread::run_sync(ex, [&] { cache.put(key, value); });
template <class Executor, class F>
auto run_sync(const Executor& ex, F&& fn) {
  using R = std::invoke_result_t<std::decay_t<F>&&>;
  return detail::wait_on_loop<R>(ex, [&](detail::from_thread_reply<R> reply) {
    boost::asio::post(
        ex, [ctx = copy_context(), f = std::decay_t<F>(std::forward<F>(fn)),
             reply = std::move(reply)]() mutable {
          std::exception_ptr error;
          if constexpr (std::is_void_v<R>) {
            try {
              ctx.run([&] { std::invoke(std::move(f)); });
            } catch (...) {
              error = std::current_exception();
            }
            std::move(reply)(error);
          } else {
            std::optional<R> value;
            try {
              ctx.run([&] { value.emplace(std::invoke(std::move(f))); });
            } catch (...) {
              error = std::current_exception();
            }
            if (error) {
              std::move(reply)(error);
            } else {
              std::move(reply)(nullptr, std::move(*value));
            }
          }
        });
  });
}

}  // namespace from_thread

}  // namespace ctxexec

#endif  // CTXEXEC_THREADS_FROM_THREAD_HPP
