// ctxexec/asio/bind_context.hpp
//
// Defines `context_binder<T>` and `bind_context()`: a handler (or a
// completion token) bound to a context object, so that it runs inside that
// context wherever and whenever Asio invokes it. `bind_context(h)` snapshots
// the current context at bind time, like asyncio's `loop.call_soon(h)`;
// `bind_context(ctx, h)` uses `ctx`.
//
// Example:
//   auto g = request_id.scoped_set("req-1");
//   timer.async_wait(ctxexec::bind_context([](auto ec) {
//     log(request_id.get());  // "req-1", whichever thread runs it
//   }));
//
// The binder forwards the wrapped handler's associated executor, allocator
// and cancellation slot through asio::associator, and works as a completion
// token for any Asio operation. A handler that belongs to a ctxexec task (a
// coroutine's own handler, or a wrapper such as as_tuple around it) runs in
// its task's context instead: the task's executor provides it.

#ifndef CTXEXEC_ASIO_BIND_CONTEXT_HPP
#define CTXEXEC_ASIO_BIND_CONTEXT_HPP

#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/detail/asio_private.hpp>
#include <ctxexec/asio/detail/known_executors.hpp>
#include <ctxexec/context.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace ctxexec {

namespace detail {

/// Whether a completion token is use_awaitable: its handler resumes the
/// awaiting coroutine in that coroutine's own context, so no snapshot is
/// taken for it.
template <class T>
inline constexpr bool is_use_awaitable = false;
template <class Executor>
inline constexpr bool is_use_awaitable<boost::asio::use_awaitable_t<Executor>> =
    true;

struct keep_alive_t {};

/// Whether `target` resumes a coroutine or otherwise belongs to a task:
/// directly, or through a wrapper (as_tuple, redirect_error, ...) that
/// forwards the associated executor of a ctxexec task.
template <class T>
bool runs_in_task_context(const T& target) noexcept {
  if constexpr (is_awaitable_handler<T>::value) {
    // A coroutine's own completion handler resumes it inline, and the
    // coroutine's executor already makes its context current: binding it
    // to another context would run the coroutine body in the wrong one.
    return true;
  } else {
    const auto ex = boost::asio::get_associated_executor(target);
    using executor = std::decay_t<decltype(ex)>;
    if constexpr (is_context_executor<executor>::value) {
      return true;
    } else if constexpr (std::is_same_v<executor,
                                        boost::asio::any_io_executor>) {
      return with_context_executor(ex, [](const auto&) {});
    } else {
      return false;
    }
  }
}

}  // namespace detail

/// A handler or completion token bound to a context object.
///
/// Invoking it calls the wrapped object with the context object current,
/// then restores the previous context. Used as a completion token, it binds
/// the handler that the wrapped token makes, for any Asio operation.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe. Binders
/// of one context object invoked on several threads at once take turns in
/// it: a binder whose object another thread has entered waits (blocking
/// its thread) until that thread exits it, as on a mutex; the object is
/// never current on two threads at once.
///
/// Propagation: the context is fixed when the binder is made; it is current
/// exactly while the wrapped object runs. A handler whose associated
/// executor is a ctxexec task's (a coroutine's own `use_awaitable` handler,
/// also inside `as_tuple`, `redirect_error` and similar wrappers) is passed
/// through unbound: it runs in its task's context.
///
/// Errors: invoking it throws what the wrapped object throws.
///
/// Example:
///   boost::asio::post(io, ctxexec::bind_context(ctx, [] { use(user.get());
///   }));
template <class T>
class context_binder {
 public:
  using target_type = T;

  template <class U>
  context_binder(context ctx, U&& target)
      : ctx_(std::move(ctx)), target_(std::forward<U>(target)) {}

  /// Keeps `ctx` alive without making it current: how ctxexec::co_spawn
  /// ties a task's context to the task's completion handler.
  template <class U>
  context_binder(detail::keep_alive_t, context ctx, U&& target)
      : ctx_(std::move(ctx)),
        target_(std::forward<U>(target)),
        enters_(false) {}

  [[nodiscard]] target_type& get() noexcept { return target_; }
  [[nodiscard]] const target_type& get() const noexcept { return target_; }
  [[nodiscard]] context& get_context() noexcept { return ctx_; }
  [[nodiscard]] const context& get_context() const noexcept { return ctx_; }
  /// False for a binder that only keeps its context alive.
  [[nodiscard]] bool enters_context() const noexcept { return enters_; }

  template <class... Args>
  decltype(auto) operator()(Args&&... args) && {
    detail::context_impl* c = context_while_running();
    detail::held_scope scope(c);
    detail::watch_scope watch(c, c != nullptr ? c->generation() : 0);
    return std::invoke(std::move(target_), std::forward<Args>(args)...);
  }

  template <class... Args>
  decltype(auto) operator()(Args&&... args) & {
    detail::context_impl* c = context_while_running();
    detail::held_scope scope(c);
    detail::watch_scope watch(c, c != nullptr ? c->generation() : 0);
    return std::invoke(target_, std::forward<Args>(args)...);
  }

 private:
  /// The context object to make current, or nullptr to leave the current
  /// one alone.
  detail::context_impl* context_while_running() const noexcept {
    if (!enters_ || detail::runs_in_task_context(target_)) return nullptr;
    return detail::context_access::impl(ctx_);
  }

  context ctx_;
  T target_;
  bool enters_ = true;
};

/// Binds `target` to a snapshot of the current context, taken now.
/// Python: `loop.call_soon(cb)` (which copies the current context).
///
/// Thread safety: safe. Propagation: captures at the call. Errors:
/// std::bad_alloc.
///
/// Example:
///   socket.async_read_some(buf, ctxexec::bind_context(on_read));
template <class T>
[[nodiscard]] context_binder<std::decay_t<T>> bind_context(T&& target) {
  return context_binder<std::decay_t<T>>(copy_context(),
                                         std::forward<T>(target));
}

/// Binds `target` to the context object `ctx`.
/// Python: `loop.call_soon(cb, context=ctx)`.
///
/// Thread safety: safe. Propagation: `ctx` is current while `target` runs.
/// Errors: none beyond copying `target`.
///
/// Example:
///   boost::asio::post(io, ctxexec::bind_context(request_ctx, handler));
template <class T>
[[nodiscard]] context_binder<std::decay_t<T>> bind_context(context ctx,
                                                           T&& target) {
  return context_binder<std::decay_t<T>>(std::move(ctx),
                                         std::forward<T>(target));
}

}  // namespace ctxexec

namespace boost::asio {

/// Forwards every associated characteristic to the wrapped handler.
template <template <class, class> class Associator, class T,
          class DefaultCandidate>
struct associator<Associator, ctxexec::context_binder<T>, DefaultCandidate> {
  using type = typename Associator<T, DefaultCandidate>::type;

  static type get(const ctxexec::context_binder<T>& b) noexcept {
    return Associator<T, DefaultCandidate>::get(b.get());
  }

  static auto get(const ctxexec::context_binder<T>& b,
                  const DefaultCandidate& c) noexcept
      -> decltype(Associator<T, DefaultCandidate>::get(b.get(), c)) {
    return Associator<T, DefaultCandidate>::get(b.get(), c);
  }
};

}  // namespace boost::asio

namespace ctxexec::detail {

/// The legacy members of async_result<context_binder<T>, Signature>
/// (`completion_handler_type`, `return_type`, `get()`): present when T's own
/// async_result has them, so that Asio's handler type requirements (on by
/// default) accept a binder as the handler of any initiating function.
template <class TargetResult, class = void>
class binder_completion_handler_result {};

template <class TargetResult>
class binder_completion_handler_result<
    TargetResult, std::void_t<typename TargetResult::completion_handler_type>> {
 public:
  using completion_handler_type =
      context_binder<typename TargetResult::completion_handler_type>;

  explicit binder_completion_handler_result(completion_handler_type& h)
      : target_(h.get()) {}

  auto get() { return target_.get(); }

 private:
  TargetResult target_;
};

template <class TargetResult, class = void>
struct binder_return_type {};

template <class TargetResult>
struct binder_return_type<TargetResult,
                          std::void_t<typename TargetResult::return_type>> {
  using return_type = typename TargetResult::return_type;
};

template <class T, class... Signatures>
struct binder_legacy_members {};

template <class T, class Signature>
struct binder_legacy_members<T, Signature>
    : binder_completion_handler_result<boost::asio::async_result<T, Signature>>,
      binder_return_type<boost::asio::async_result<T, Signature>> {
  using binder_completion_handler_result<boost::asio::async_result<
      T, Signature>>::binder_completion_handler_result;
};

}  // namespace ctxexec::detail

namespace boost::asio {

/// A context_binder used as a completion token binds the handler its
/// wrapped token produces.
template <class T, class... Signatures>
class async_result<ctxexec::context_binder<T>, Signatures...>
    : public ctxexec::detail::binder_legacy_members<T, Signatures...> {
 public:
  using ctxexec::detail::binder_legacy_members<
      T, Signatures...>::binder_legacy_members;

  template <class Initiation>
  struct init_wrapper {
    template <class Handler, class... Args>
    void operator()(Handler&& handler, Args&&... args) && {
      std::move(initiation)(
          bind(std::move(ctx), std::forward<Handler>(handler)),
          std::forward<Args>(args)...);
    }

    template <class Handler, class... Args>
    void operator()(Handler&& handler, Args&&... args) const& {
      initiation(bind(ctx, std::forward<Handler>(handler)),
                 std::forward<Args>(args)...);
    }

    template <class Handler>
    auto bind(ctxexec::context c, Handler&& handler) const {
      using binder = ctxexec::context_binder<std::decay_t<Handler>>;
      if (enters) return binder(std::move(c), std::forward<Handler>(handler));
      return binder(ctxexec::detail::keep_alive_t{}, std::move(c),
                    std::forward<Handler>(handler));
    }

    ctxexec::context ctx;
    bool enters;
    Initiation initiation;
  };

  // The return type is spelled out, not deduced, so that a handler that
  // does not fit a signature makes completion_token_for false instead of an
  // error (Asio probes overloads such as the move-accept with it).
  template <class Initiation, class RawCompletionToken, class... Args>
  static auto initiate(Initiation&& initiation, RawCompletionToken&& token,
                       Args&&... args)
      -> decltype(async_initiate<T, Signatures...>(
          std::declval<init_wrapper<std::decay_t<Initiation>>>(),
          std::declval<T&>(), std::declval<Args>()...)) {
    // An rvalue token gives up its context (as async_initiate moves from
    // the target token): no copy of the context.
    constexpr bool take = !std::is_lvalue_reference_v<RawCompletionToken> &&
                          !std::is_const_v<RawCompletionToken>;
    using context_ref =
        std::conditional_t<take, ctxexec::context&&, const ctxexec::context&>;
    const bool enters = token.enters_context();
    return async_initiate<T, Signatures...>(
        init_wrapper<std::decay_t<Initiation>>{
            static_cast<context_ref>(token.get_context()), enters,
            std::forward<Initiation>(initiation)},
        token.get(), std::forward<Args>(args)...);
  }
};

}  // namespace boost::asio

#endif  // CTXEXEC_ASIO_BIND_CONTEXT_HPP
