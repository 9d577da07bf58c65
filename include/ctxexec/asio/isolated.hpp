// ctxexec/asio/isolated.hpp
//
// Defines `ctxexec::isolated(awaitable)` and the operators in
// `ctxexec::awaitable_operators`: composition in which each branch runs in
// its own copy of the context, as asyncio.gather and TaskGroup give each
// child task. Asio's own `experimental::awaitable_operators` run every
// branch in the parent's context object instead (see docs/asio.md).
//
// Example:
//   using namespace ctxexec::awaitable_operators;
//   auto [a, b] = co_await (fetch_user() && fetch_quota());  // own copies
//   auto first = co_await (query(primary) || query(replica));  // loser
//                                                              // cancelled
//
// Use these operators instead of Asio's, not together with them: both
// namespaces declare the same operators for awaitables.

#ifndef CTXEXEC_ASIO_ISOLATED_HPP
#define CTXEXEC_ASIO_ISOLATED_HPP

#include <ctxexec/asio/co_spawn.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace ctxexec {

/// Runs `a` as a child task in a copy of the current context (taken when
/// the returned awaitable starts) and returns its result: the values `a`
/// sets stay in that copy. Cancellation of the awaiting coroutine is
/// forwarded to the child.
///
/// Thread safety: as a coroutine. Propagation: see above; the caller's
/// context is current again when it resumes. Errors: rethrows the child's
/// exception; std::bad_alloc.
///
/// Example:
///   int n = co_await ctxexec::isolated(count_rows());
template <class T, class Executor>
boost::asio::awaitable<T, Executor> isolated(
    boost::asio::awaitable<T, Executor> a) {
  auto ex = co_await boost::asio::this_coro::executor;
  co_return co_await ctxexec::co_spawn(
      ex, std::move(a), boost::asio::use_awaitable_t<Executor>());
}

/// Operators that run each branch in its own copy of the context.
///
/// Thread safety: as coroutines. Propagation: each branch gets a copy of
/// the context current when the composed awaitable starts; nothing flows
/// back or across. Errors: as Asio's `experimental::awaitable_operators`
/// (`&&` rethrows the first exception and cancels the other branch; `||`
/// returns the first to finish and cancels the other).
///
/// Example:
///   using namespace ctxexec::awaitable_operators;
///   co_await (a() && b());
namespace awaitable_operators {

template <class T, class U, class Executor>
auto operator&&(boost::asio::awaitable<T, Executor> a,
                boost::asio::awaitable<U, Executor> b) {
  using boost::asio::experimental::awaitable_operators::operator&&;
  return isolated(std::move(a)) && isolated(std::move(b));
}

template <class T, class U, class Executor>
auto operator||(boost::asio::awaitable<T, Executor> a,
                boost::asio::awaitable<U, Executor> b) {
  using boost::asio::experimental::awaitable_operators::operator||;
  return isolated(std::move(a)) || isolated(std::move(b));
}

}  // namespace awaitable_operators
}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_ISOLATED_HPP
