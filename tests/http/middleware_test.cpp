// Tests of middleware_stack and sync_handler: the order of the layers, and
// how values flow between middleware and handlers: into async and sync
// handlers, back out of async handlers (unlike Starlette's
// BaseHTTPMiddleware, encode/starlette#1081), and never out of a sync
// handler's worker copy.

#include <ctxexec/http/middleware.hpp>

#include <ctxexec/context_var.hpp>
#include "../context_fixture.hpp"
#include "http_test_util.hpp"

#include <gtest/gtest.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
// test_request, test_response, test_stack, run_task, user, outcome.
using namespace ctxexec_test;  // NOLINT(google-build-using-namespace)
using stack = test_stack;

class MiddlewareTest : public ctxexec_test::ContextFixture {};

awaitable<void> echo_user(test_request&, test_response& res) {
  res.body = user.get();
  co_return;
}

awaitable<void> set_user(test_request&, test_response&, stack::next_type next) {
  (void)user.set("alice");
  co_await next();
}

TEST_F(MiddlewareTest, TheFirstLayerAddedIsTheOutermost) {
  asio::io_context io;
  stack app([](test_request&, test_response& res) -> awaitable<void> {
    res.log.push_back("handler");
    co_return;
  });
  for (const char* name : {"a", "b", "c"}) {
    app.use([name](test_request&, test_response& res,
                   stack::next_type next) -> awaitable<void> {
      res.log.push_back(std::string(name) + " in");
      co_await next();
      res.log.push_back(std::string(name) + " out");
    });
  }
  EXPECT_EQ(app.size(), 3u);
  test_request req;
  test_response res;
  run_task(io, app(req, res));
  EXPECT_EQ(res.log,
            (std::vector<std::string>{"a in", "b in", "c in", "handler",
                                      "c out", "b out", "a out"}));
}

TEST_F(MiddlewareTest, AValueSetByMiddlewareIsSeenByAnAsyncHandler) {
  asio::io_context io;
  stack app(echo_user);
  app.use(set_user);
  test_request req;
  test_response res;
  run_task(io, [&]() -> awaitable<void> { co_await app(req, res); }());
  EXPECT_EQ(res.body, "alice");
}

TEST_F(MiddlewareTest, AValueSetByMiddlewareIsSeenByASyncHandlerOnAWorker) {
  asio::io_context io;
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id handler_thread;
  stack app(ctxexec::http::sync_handler<test_request, test_response>(
      [&](test_request&, test_response& res) {
        handler_thread = std::this_thread::get_id();
        res.body = user.get();
      }));
  app.use(set_user);
  test_request req;
  test_response res;
  run_task(io, app(req, res));
  EXPECT_EQ(res.body, "alice");
  EXPECT_NE(handler_thread, loop_thread);
}

TEST_F(MiddlewareTest, AnAsyncHandlersValueIsSeenByOuterLayersAfterNext) {
  asio::io_context io;
  stack app([](test_request&, test_response&) -> awaitable<void> {
    (void)outcome.set("charged");  // left set for the outer layers
    co_return;
  });
  app.use([](test_request&, test_response& res,
             stack::next_type next) -> awaitable<void> {
    res.log.push_back("before: " + outcome.get());
    co_await next();
    res.log.push_back("after: " + outcome.get());
  });
  test_request req;
  test_response res;
  run_task(io, app(req, res));
  // Starlette's BaseHTTPMiddleware would log "after: -" here.
  EXPECT_EQ(res.log, (std::vector<std::string>{"before: -", "after: charged"}));
}

TEST_F(MiddlewareTest, ASyncHandlersWritesStayInItsWorkerCopy) {
  asio::io_context io;
  stack app(ctxexec::http::sync_handler<test_request, test_response>(
      [](test_request&, test_response& res) {
        (void)outcome.set("set on the worker");
        res.body = outcome.get();
      }));
  app.use([](test_request&, test_response& res,
             stack::next_type next) -> awaitable<void> {
    co_await next();
    res.log.push_back("after: " + outcome.get());
  });
  test_request req;
  test_response res;
  run_task(io, app(req, res));
  EXPECT_EQ(res.body, "set on the worker");
  EXPECT_EQ(res.log, (std::vector<std::string>{"after: -"}));  // as anyio
}

TEST_F(MiddlewareTest, ALayerMayAnswerWithoutCallingNext) {
  asio::io_context io;
  bool handler_ran = false;
  stack app([&](test_request&, test_response&) -> awaitable<void> {
    handler_ran = true;
    co_return;
  });
  app.use([](test_request& req, test_response& res,
             stack::next_type next) -> awaitable<void> {
    if (req.path == "/forbidden") {
      res.status = 403;
      co_return;
    }
    co_await next();
  });
  test_request req{"/forbidden"};
  test_response res;
  run_task(io, app(req, res));
  EXPECT_EQ(res.status, 403);
  EXPECT_FALSE(handler_ran);
}

TEST_F(MiddlewareTest, ALayerCatchesWhatTheHandlerThrows) {
  asio::io_context io;
  stack app([](test_request&, test_response&) -> awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  });
  app.use([](test_request&, test_response& res,
             stack::next_type next) -> awaitable<void> {
    try {
      co_await next();
    } catch (const std::runtime_error& e) {
      res.status = 500;
      res.body = e.what();
    }
  });
  test_request req;
  test_response res;
  run_task(io, app(req, res));
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.body, "boom");
}

TEST_F(MiddlewareTest, WithoutALayerTheHandlersExceptionReachesTheCaller) {
  asio::io_context io;
  stack app(ctxexec::http::sync_handler<test_request, test_response>(
      [](test_request&, test_response&) { throw std::logic_error("sync"); }));
  test_request req;
  test_response res;
  EXPECT_THROW(run_task(io, app(req, res)), std::logic_error);
}

}  // namespace
