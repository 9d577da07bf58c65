// ctxexec/http/serve_request.hpp
//
// Defines `serve_request()`, the life of one request in a server: a copy of
// the context taken when the request has been read, a `request_scope`, the
// middleware stack, the response written, the scope's cleanups; and
// `serve_options`. Framework-neutral: the caller reads the request and
// passes the function that writes the response.
//
// Example (a Beast connection loop):
//   for (;;) {
//     http::request<http::string_body> req;
//     co_await http::async_read(stream, buffer, req, use_awaitable);
//     http::response<http::string_body> res;
//     co_await ctxexec::http::serve_request(app, req, res,
//         [&](auto& r) { return http::async_write(stream, r, use_awaitable);
//         });
//   }
//
// Nothing a request sets reaches the next request on the same connection:
// each runs in its own copy.

#ifndef CTXEXEC_HTTP_SERVE_REQUEST_HPP
#define CTXEXEC_HTTP_SERVE_REQUEST_HPP

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/http/middleware.hpp>
#include <ctxexec/http/request_scope.hpp>
#include <ctxexec/threads/run_sync.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <utility>

namespace ctxexec::http {

/// How `serve_request()` runs the request scope.
///
/// Thread safety: a plain aggregate. Errors: none.
/// Example: `serve_options{.sync = {.limiter = &limiter}, .counters = &c}`
struct serve_options {
  /// Where the scope's synchronous cleanups run.
  run_sync_options sync{};
  /// Counts the scopes and their cleanups, if not null.
  request_scope_counters* counters = nullptr;
};

namespace detail {

template <class Request, class Response, class Write>
boost::asio::awaitable<void> serve_in_copy(
    const middleware_stack<Request, Response>& stack, Request& req,
    Response& res, Write write, serve_options options) {
  // Shared, so that a task the request starts and that outlives it finds a
  // closed scope, never a dangling one. Not reset: this context is the
  // request's own copy, dropped with it.
  auto scope = std::make_shared<request_scope>(options.sync, options.counters);
  (void)current_request_scope.set(scope);
  std::exception_ptr error;
  try {
    co_await stack(req, res);
  } catch (...) {
    error = std::current_exception();
  }
  if (!error) {
    try {
      co_await write(res);
    } catch (...) {
      error = std::current_exception();
    }
  }
  // Always: after the write, after a failed handler, after a failed write
  // (the client went away).
  if (!scope->try_close()) {
    try {
      co_await scope->close();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

/// Serves one request that has been read: in a copy of the current
/// context, taken now, it opens a `request_scope` (set in
/// `current_request_scope`), runs `req` through `stack`, then awaits
/// `write(res)` (a function returning an awaitable that writes the
/// response), then runs the scope's cleanups in reverse order. The
/// cleanups run also when the stack throws (the response is then not
/// written) and when the write fails.
///
/// `ex` is the executor the request runs on (the connection's); it may be
/// a coroutine's own executor. The returned awaitable is awaited by the
/// connection's coroutine.
///
/// Thread safety: as `ctxexec::co_spawn`; `stack`, `req` and `res` must
/// live until it completes (`write` and `options` are copied).
///
/// Propagation: the request runs as a child task (`ctxexec::co_spawn`) in a
/// copy of the calling thread's current context, taken at the call: every
/// layer, the handler, `write` and the cleanups run in it, and nothing
/// they set reaches the caller or the next request. Sync handlers and sync
/// cleanups run in copies of it on workers.
///
/// Errors: rethrows, after the cleanups, the first of: what the stack
/// threw, what `write` threw, what a cleanup threw. The caller decides
/// what to answer (a 500, or closing the connection).
///
/// Example:
///   try {
///     co_await serve_request(stream.get_executor(), app, req, res, write);
///   } catch (const std::exception&) { co_await write_500(); }
template <class Executor, class Request, class Response, class Write>
[[nodiscard]] boost::asio::awaitable<void> serve_request(
    const Executor& ex, const middleware_stack<Request, Response>& stack,
    Request& req, Response& res, Write write, serve_options options = {}) {
  return ctxexec::co_spawn(
      ex, detail::serve_in_copy(stack, req, res, std::move(write), options),
      boost::asio::use_awaitable);
}

/// `serve_request(ex, ...)` on the calling coroutine's executor.
///
/// Example:
///   co_await ctxexec::http::serve_request(app, req, res, write);
template <class Request, class Response, class Write>
boost::asio::awaitable<void> serve_request(
    const middleware_stack<Request, Response>& stack, Request& req,
    Response& res, Write write, serve_options options = {}) {
  auto ex = co_await boost::asio::this_coro::executor;
  co_await serve_request(ex, stack, req, res, std::move(write), options);
}

}  // namespace ctxexec::http

#endif  // CTXEXEC_HTTP_SERVE_REQUEST_HPP
