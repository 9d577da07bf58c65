// ctxexec/http/middleware.hpp
//
// Defines `middleware_stack<Request, Response>`: awaitable middleware
// composed around one handler, framework-neutral (any request and response
// types: Beast's, your own), and `sync_handler()`, which turns a blocking
// function into a handler that runs through `run_sync_with_context`.
//
// A middleware is `awaitable<void>(Request&, Response&, next)`; it may act
// before and after `co_await next()`, or answer without calling it. Every
// layer and the handler run in one task, in one context object: what a
// layer sets is seen by the layers inside it and by the handler, and what
// the handler sets (with `set`, not a scoped set that it undoes itself) is
// seen by the outer layers after `next()` returns. This differs on purpose
// from Starlette's BaseHTTPMiddleware, whose `call_next` runs the app in
// another task, so that its writes are lost (encode/starlette#1081).
//
// Example:
//   using stack = ctxexec::http::middleware_stack<request, response>;
//   stack app([](request& req, response& res) -> awaitable<void> { ... });
//   app.use([](request& req, response& res, stack::next_type next)
//               -> awaitable<void> {
//     auto g = user_id.scoped_set(req.user());   // seen by the handler
//     co_await next();
//     res.set("x-user", user_id.get());
//   });
//   co_await app(req, res);   // usually through http::serve_request()
//
// Invalid use: calling `next()` twice in one layer runs the inner layers
// twice (as in Starlette); a stack must not be changed (`use`) while a
// request runs through it.

#ifndef CTXEXEC_HTTP_MIDDLEWARE_HPP
#define CTXEXEC_HTTP_MIDDLEWARE_HPP

#include <ctxexec/threads/run_sync.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

namespace ctxexec::http {

/// Middleware layers around a handler, for any `Request` and `Response`.
///
/// Order: the first layer added with `use()` is the outermost; the handler
/// is innermost. `operator()` runs the outermost layer; each layer's
/// `next()` runs the layer inside it, the last one's runs the handler.
///
/// Thread safety: distinct objects: safe; shared objects: safe for const
/// members (any number of requests may run through one stack at once, on
/// any threads), unsafe for `use()`.
///
/// Propagation: the stack captures no context. Every layer and the handler
/// run in the context of the coroutine that awaits `operator()`: one
/// context object per request when it is run by `serve_request()` (a copy
/// taken for each request). A value set by a layer before `next()` is seen
/// by inner layers and the handler, also by a `sync_handler()` on its
/// worker (a copy); a value an async handler or inner layer leaves set is
/// seen by outer layers after `next()` returns. A sync handler's writes
/// stay in its worker's copy, as with anyio.
///
/// Errors: `operator()` throws what a layer or the handler throws; a layer
/// may catch what `next()` throws. std::bad_alloc (coroutine frames).
///
/// Example:
///   stack.use([](request& q, response& r, stack::next_type next)
///                 -> boost::asio::awaitable<void> {
///     try { co_await next(); } catch (...) { r.status(500); }
///   });
template <class Request, class Response>
class middleware_stack {
 public:
  using request_type = Request;
  using response_type = Response;
  using handler_type =
      std::function<boost::asio::awaitable<void>(Request&, Response&)>;

  /// What a layer calls to run the rest of the stack: the inner layers and
  /// the handler. Cheap to copy; valid while the request's `operator()`
  /// runs.
  class next_type {
   public:
    /// Runs the inner layers and the handler for this request.
    boost::asio::awaitable<void> operator()() const {
      return stack_->run(index_, *request_, *response_);
    }

   private:
    friend class middleware_stack;
    next_type(const middleware_stack* stack, std::size_t index, Request& req,
              Response& res) noexcept
        : stack_(stack), index_(index), request_(&req), response_(&res) {}

    const middleware_stack* stack_;
    std::size_t index_;
    Request* request_;
    Response* response_;
  };

  using middleware_type = std::function<boost::asio::awaitable<void>(
      Request&, Response&, next_type)>;

  /// A stack with no layer around `handler`.
  explicit middleware_stack(handler_type handler)
      : handler_(std::move(handler)) {}

  /// Adds `layer` inside the layers added before it (the first one added
  /// is the outermost). Returns `*this`. Errors: std::bad_alloc.
  middleware_stack& use(middleware_type layer) {
    layers_.push_back(std::move(layer));
    return *this;
  }

  /// The number of layers.
  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }

  /// Runs `req` through the layers and the handler, in the calling
  /// coroutine's context.
  boost::asio::awaitable<void> operator()(Request& req, Response& res) const {
    return run(0, req, res);
  }

 private:
  boost::asio::awaitable<void> run(std::size_t index, Request& req,
                                   Response& res) const {
    if (index == layers_.size()) return handler_(req, res);
    return layers_[index](req, res, next_type(this, index + 1, req, res));
  }

  handler_type handler_;
  std::vector<middleware_type> layers_;
};

/// A handler that runs the blocking `fn(req, res)` on a worker thread
/// through `run_sync_with_context(options, ...)`: off the event loop, under
/// a token of the limiter, in a copy of the request's context.
///
/// Thread safety: `fn` runs on a worker while the request's coroutine
/// waits for it; the request and response are not touched by anything
/// else meanwhile.
///
/// Propagation: `fn` sees every value the middleware set; what `fn` sets
/// stays in the worker's copy and is gone when the handler returns (as
/// with anyio's `to_thread.run_sync`): return results through `res`.
///
/// Errors: `fn`'s exception is rethrown in the request's coroutine; the
/// errors of `run_sync_with_context` (`starvation_error`, `shutdown_error`,
/// cancellation).
///
/// Example:
///   stack app(ctxexec::http::sync_handler<request, response>(
///       [](request& q, response& r) { r.body = db.query(q.sql()); }));
template <class Request, class Response, class F>
[[nodiscard]] auto sync_handler(F fn, run_sync_options options = {}) {
  static_assert(std::is_invocable_v<F&, Request&, Response&>,
                "sync_handler: fn must be callable as fn(Request&, Response&)");
  return [fn = std::move(fn), options](
             Request& req, Response& res) -> boost::asio::awaitable<void> {
    co_await run_sync_with_context(
        options, [&] { fn(req, res); }, boost::asio::use_awaitable);
  };
}

}  // namespace ctxexec::http

#endif  // CTXEXEC_HTTP_MIDDLEWARE_HPP
