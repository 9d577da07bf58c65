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
#include <ctxexec/context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <type_traits>
#include <utility>

namespace ctxexec {

namespace detail {

template <class T>
inline constexpr bool is_use_awaitable = false;
template <class Executor>
inline constexpr bool is_use_awaitable<boost::asio::use_awaitable_t<Executor>> =
    true;

}  // namespace detail

/// Spawns `a` (an awaitable, or a function returning one) on `ex` in a
/// copy of the current context. `ex` may be an executor or an execution
/// context such as an io_context.
///
/// Thread safety: safe (as `boost::asio::co_spawn`).
///
/// Propagation: the child's context is `copy_context()` at this call; it is
/// current at the child's start and after each of its suspensions, and the
/// thread's previous context is restored whenever the child suspends. The
/// completion handler runs in another copy taken at this call. `co_await
/// sub()` inside the child shares the child's context (same task).
///
/// Errors: as `boost::asio::co_spawn`; the child's exception reaches the
/// completion handler. std::bad_alloc for the snapshots.
///
/// Example:
///   ctxexec::co_spawn(io, session(std::move(socket)), boost::asio::detached);
template <class ExecutorOrContext, class Awaitable, class CompletionToken>
decltype(auto) co_spawn(ExecutorOrContext&& target, Awaitable&& a,
                        CompletionToken&& token) {
  auto executor = [&] {
    if constexpr (std::is_base_of_v<boost::asio::execution_context,
                                    std::decay_t<ExecutorOrContext>>) {
      return target.get_executor();
    } else {
      return unwrap(target);  // never nest context executors
    }
  }();
  // The task's context lives as long as the task: its completion handler
  // holds it (Asio keeps the handler until the task completes or is
  // destroyed), while the executor refers to it without owning it.
  context task_context = copy_context();
  context_executor<std::decay_t<decltype(executor)>> task_executor(
      executor, task_context);
  if constexpr (detail::is_use_awaitable<std::decay_t<CompletionToken>>) {
    // The handler resumes the awaiting coroutine in its own context: no
    // snapshot to take.
    return boost::asio::co_spawn(
        task_executor, std::forward<Awaitable>(a),
        context_binder<std::decay_t<CompletionToken>>(
            detail::keep_alive_t{}, std::move(task_context),
            std::forward<CompletionToken>(token)));
  } else {
    return boost::asio::co_spawn(
        task_executor, std::forward<Awaitable>(a),
        context_binder<context_binder<std::decay_t<CompletionToken>>>(
            detail::keep_alive_t{}, std::move(task_context),
            bind_context(std::forward<CompletionToken>(token))));
  }
}

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_CO_SPAWN_HPP
