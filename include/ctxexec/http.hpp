// ctxexec/http.hpp
//
// The HTTP part: includes every public header under ctxexec/http/
// (`middleware_stack`, `sync_handler`, `request_scope`,
// `current_request_scope`, `serve_request`, and the Boost.Beast adapters of
// Trace Context and Baggage). CMake target: `ctxexec::http` (the thread
// executors and Boost.Beast, header-only).
//
// Example:
//   #include <ctxexec/http.hpp>
//   ctxexec::http::middleware_stack<request, response> app(handler);
//   app.use(trace_middleware);
//   co_await ctxexec::http::serve_request(app, req, res, write);

#ifndef CTXEXEC_HTTP_HPP
#define CTXEXEC_HTTP_HPP

#include <ctxexec/http/beast.hpp>
#include <ctxexec/http/middleware.hpp>
#include <ctxexec/http/request_scope.hpp>
#include <ctxexec/http/serve_request.hpp>
#include <ctxexec/threads.hpp>

#endif  // CTXEXEC_HTTP_HPP
