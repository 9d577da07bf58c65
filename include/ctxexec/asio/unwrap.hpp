// ctxexec/asio/unwrap.hpp
//
// Defines `ctxexec::unwrap(ex)`: the executor under a `context_executor`,
// for I/O objects whose completions should not run in a task's context.
//
// Example:
//   auto ex = co_await boost::asio::this_coro::executor;
//   boost::asio::steady_timer timer(ctxexec::unwrap(ex));  // plain executor
//   timer.async_wait(on_timeout);  // runs in the thread's own context

#ifndef CTXEXEC_ASIO_UNWRAP_HPP
#define CTXEXEC_ASIO_UNWRAP_HPP

#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/detail/known_executors.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <type_traits>

namespace ctxexec {

/// The executor under a context_executor (or `ex` itself), for I/O objects
/// whose completions should not run in the task's context. Looks inside an
/// `any_io_executor` for the context executors ctxexec makes: over an
/// io_context executor, a strand of one, or an `any_io_executor`.
///
/// Thread safety: safe. Propagation: none. Errors: std::bad_alloc at most
/// (re-wrapping in an `any_io_executor`).
///
/// Example:
///   auto timer = boost::asio::steady_timer(ctxexec::unwrap(ex));
template <class Executor>
[[nodiscard]] auto unwrap(const Executor& ex) {
  if constexpr (detail::is_context_executor<Executor>::value) {
    return ex.get_inner_executor();
  } else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>) {
    boost::asio::any_io_executor inner = ex;
    detail::with_context_executor(ex, [&](const auto& c) {
      inner = boost::asio::any_io_executor(c.get_inner_executor());
    });
    return inner;
  } else {
    return ex;
  }
}

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_UNWRAP_HPP
