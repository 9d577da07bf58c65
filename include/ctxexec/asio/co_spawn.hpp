// ctxexec/asio/co_spawn.hpp
//
// Defines `ctxexec::co_spawn`: `boost::asio::co_spawn` with asyncio's
// `create_task` semantics. The child runs in its own copy of the spawner's
// context, taken at the call, and that context is current whenever the
// child's code runs: at its start and after every co_await, on any thread.
// Its values never reach the parent or its siblings. The completion handler
// runs in a snapshot of the spawner's context, as an asyncio done-callback
// does.
//
// Example:
//   auto g = request_id.scoped_set("req-9");
//   ctxexec::co_spawn(io, handle_request(), boost::asio::detached);
//   int n = co_await ctxexec::co_spawn(ex, count(),
//   boost::asio::use_awaitable);
//
// Every completion token works: use_awaitable, deferred, use_future,
// detached and plain callbacks.

#ifndef CTXEXEC_ASIO_CO_SPAWN_HPP
#define CTXEXEC_ASIO_CO_SPAWN_HPP

#include <ctxexec/asio/bind_context.hpp>
#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/detail/known_executors.hpp>
#include <ctxexec/asio/unwrap.hpp>
#include <ctxexec/context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <type_traits>
#include <utility>

namespace ctxexec {

namespace detail {

/// Spawns on `ex` (never a context_executor) in `task_context`. The task's
/// context lives as long as the task: its completion handler holds it (Asio
/// keeps the handler until the task completes or is destroyed), while the
/// executor only names it.
template <class Executor, class Awaitable, class CompletionToken>
decltype(auto) spawn_in(context task_context, const Executor& ex, Awaitable&& a,
                        CompletionToken&& token) {
  context_executor<Executor> task_executor(ex, task_context);
  if constexpr (is_use_awaitable<std::decay_t<CompletionToken>>) {
    // The handler resumes the awaiting coroutine in its own context: no
    // snapshot to take.
    return boost::asio::co_spawn(task_executor, std::forward<Awaitable>(a),
                                 context_binder<std::decay_t<CompletionToken>>(
                                     keep_alive_t{}, std::move(task_context),
                                     std::forward<CompletionToken>(token)));
  } else {
    return boost::asio::co_spawn(
        task_executor, std::forward<Awaitable>(a),
        context_binder<context_binder<std::decay_t<CompletionToken>>>(
            keep_alive_t{}, std::move(task_context),
            bind_context(std::forward<CompletionToken>(token))));
  }
}

/// Spawns on `ex` in a copy of the current context, taken now.
template <class Executor, class Awaitable, class CompletionToken>
decltype(auto) spawn_in_context(const Executor& ex, Awaitable&& a,
                                CompletionToken&& token) {
  return spawn_in(copy_context(), ex, std::forward<Awaitable>(a),
                  std::forward<CompletionToken>(token));
}

}  // namespace detail

/// Spawns `a` (an awaitable, or a function returning one) on `ex` in a
/// copy of the current context. `ex` may be an executor or an execution
/// context such as an io_context.
///
/// Thread safety: safe (as `boost::asio::co_spawn`).
///
/// Propagation: the child's context is `copy_context()` at this call; it is
/// current at the child's start and after each of its suspensions, and the
/// thread's previous context is restored whenever the child suspends. Given
/// a `context_executor` (its static type, as `make_context_executor`
/// returns it), the child runs in that executor's context object itself,
/// as asyncio's `create_task(coro, context=ctx)` does, or in a fresh empty
/// one if that object no longer exists; a coroutine's own executor
/// (`co_await this_coro::executor`, an `any_io_executor`) still means a
/// copy. The completion handler runs in another copy taken at this call.
/// `co_await sub()` inside the child shares the child's context (same
/// task).
///
/// Errors: as `boost::asio::co_spawn`; the child's exception reaches the
/// completion handler. std::bad_alloc for the snapshots.
///
/// Example:
///   ctxexec::co_spawn(io, session(std::move(socket)), boost::asio::detached);
template <class ExecutorOrContext, class Awaitable, class CompletionToken>
decltype(auto) co_spawn(ExecutorOrContext&& target, Awaitable&& a,
                        CompletionToken&& token) {
  using target_type = std::decay_t<ExecutorOrContext>;
  if constexpr (detail::is_context_executor<target_type>::value) {
    // asyncio's create_task(coro, context=ctx): the task runs in that
    // executor's context object itself, or in a fresh one if it is gone.
    context task_context = target.get_context();
    if (detail::context_access::impl(task_context) == nullptr) {
      task_context = context();
    }
    return detail::spawn_in(
        std::move(task_context), target.get_inner_executor(),
        std::forward<Awaitable>(a), std::forward<CompletionToken>(token));
  } else if constexpr (std::is_base_of_v<boost::asio::execution_context,
                                         target_type>) {
    return detail::spawn_in_context(target.get_executor(),
                                    std::forward<Awaitable>(a),
                                    std::forward<CompletionToken>(token));
  } else if constexpr (std::is_same_v<target_type,
                                      boost::asio::any_io_executor>) {
    // A coroutine's own executor: spawn on the concrete io_context executor
    // or strand under it when there is one, where the result type allows.
    // That avoids a type-erased executor too large for any_io_executor's
    // small buffer.
    using erased = decltype(detail::spawn_in_context(
        std::declval<boost::asio::any_io_executor>(), std::declval<Awaitable>(),
        std::declval<CompletionToken>()));
    using concrete = decltype(detail::spawn_in_context(
        std::declval<detail::io_executor>(), std::declval<Awaitable>(),
        std::declval<CompletionToken>()));
    using stranded = decltype(detail::spawn_in_context(
        std::declval<detail::io_strand>(), std::declval<Awaitable>(),
        std::declval<CompletionToken>()));
    if constexpr (std::is_same_v<erased, concrete>) {
      if (const detail::io_executor* io = detail::find_io_executor(target)) {
        return detail::spawn_in_context(*io, std::forward<Awaitable>(a),
                                        std::forward<CompletionToken>(token));
      }
    }
    if constexpr (std::is_same_v<erased, stranded>) {
      if (auto strand = detail::find_io_strand(target)) {
        return detail::spawn_in_context(*strand, std::forward<Awaitable>(a),
                                        std::forward<CompletionToken>(token));
      }
    }
    return detail::spawn_in_context(unwrap(target), std::forward<Awaitable>(a),
                                    std::forward<CompletionToken>(token));
  } else {
    return detail::spawn_in_context(unwrap(target), std::forward<Awaitable>(a),
                                    std::forward<CompletionToken>(token));
  }
}

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_CO_SPAWN_HPP
