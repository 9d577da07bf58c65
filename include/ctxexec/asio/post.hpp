// ctxexec/asio/post.hpp
//
// Defines `ctxexec::post`, `ctxexec::dispatch` and `ctxexec::defer`: Asio's
// scheduling functions with the caller's context captured when the work is
// scheduled (asyncio's `loop.call_soon`), so the handler runs in a snapshot
// of it on whichever thread runs the handler.
//
// Example:
//   auto g = request_id.scoped_set("req-7");
//   ctxexec::post(pool, [] { log(request_id.get()); });  // "req-7"
//   co_await ctxexec::post(strand, boost::asio::use_awaitable);
//
// Each accepts any completion token, as the Asio function does; a
// coroutine's own `use_awaitable` handler resumes it in its own context.

#ifndef CTXEXEC_ASIO_POST_HPP
#define CTXEXEC_ASIO_POST_HPP

#include <ctxexec/asio/bind_context.hpp>

#include <boost/asio/defer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <utility>

namespace ctxexec {

/// `boost::asio::post`, `dispatch` and `defer` with the handler bound to a
/// snapshot of the current context, taken at the call. Each takes a token,
/// or an executor or execution context and a token, as Asio's does.
///
/// Thread safety: as the Asio function. Propagation: captured at the call;
/// current while the handler runs. Errors: as the Asio function, plus
/// std::bad_alloc for the snapshot.
///
/// Example: `ctxexec::post(io, [] { use(user.get()); });`
template <class CompletionToken>
decltype(auto) post(CompletionToken&& token) {
  return boost::asio::post(bind_context(std::forward<CompletionToken>(token)));
}

/// See post(CompletionToken&&).
template <class ExecutorOrContext, class CompletionToken>
decltype(auto) post(ExecutorOrContext&& target, CompletionToken&& token) {
  return boost::asio::post(std::forward<ExecutorOrContext>(target),
                           bind_context(std::forward<CompletionToken>(token)));
}

/// See post(CompletionToken&&).
template <class CompletionToken>
decltype(auto) dispatch(CompletionToken&& token) {
  return boost::asio::dispatch(
      bind_context(std::forward<CompletionToken>(token)));
}

/// See post(CompletionToken&&).
template <class ExecutorOrContext, class CompletionToken>
decltype(auto) dispatch(ExecutorOrContext&& target, CompletionToken&& token) {
  return boost::asio::dispatch(
      std::forward<ExecutorOrContext>(target),
      bind_context(std::forward<CompletionToken>(token)));
}

/// See post(CompletionToken&&).
template <class CompletionToken>
decltype(auto) defer(CompletionToken&& token) {
  return boost::asio::defer(bind_context(std::forward<CompletionToken>(token)));
}

/// See post(CompletionToken&&).
template <class ExecutorOrContext, class CompletionToken>
decltype(auto) defer(ExecutorOrContext&& target, CompletionToken&& token) {
  return boost::asio::defer(std::forward<ExecutorOrContext>(target),
                            bind_context(std::forward<CompletionToken>(token)));
}

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_POST_HPP
