// Tests of serve_request: each request in its own copy of the context, the
// request scope around the handler and the write (cleanups after the
// response, after a throwing handler, after a failed write), and, over a
// loopback Beast connection, keep-alive isolation and a client that
// disconnects mid-request.

#include <ctxexec/http/serve_request.hpp>

#include <ctxexec/context_var.hpp>
#include <ctxexec/http/beast.hpp>
#include "../context_fixture.hpp"
#include "http_test_util.hpp"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using ctxexec::http::request_scope;
// test_request, test_response, test_stack, run_task, user, outcome.
using namespace ctxexec_test;  // NOLINT(google-build-using-namespace)
using stack = test_stack;

class ServeRequestTest : public ctxexec_test::ContextFixture {};

/// A write that records the response, or throws as a dead connection does.
struct recording_write {
  std::vector<std::string>* log;
  bool fail = false;
  awaitable<void> operator()(test_response& res) const {
    if (fail) throw std::runtime_error("connection reset");
    log->push_back("write " + res.body);
    co_return;
  }
};

/// A handler that registers two cleanups and logs what it sees.
awaitable<void> handler_with_cleanups(test_request& req, test_response& res) {
  request_scope& scope = request_scope::current();
  scope.defer([&res]() -> awaitable<void> {
    res.log.push_back("cleanup 1 sees " + user.get());
    co_return;
  });
  scope.defer_sync(
      [&res] { res.log.push_back("cleanup 2 sees " + user.get()); });
  res.log.push_back("handler sees " + user.get());
  res.body = req.path;
  if (req.path == "/throw") throw std::runtime_error("handler failed");
  co_return;
}

stack app_with_user() {
  stack app(handler_with_cleanups);
  app.use([](test_request&, test_response&,
             stack::next_type next) -> awaitable<void> {
    (void)user.set("alice");  // in the request's copy only
    co_await next();
  });
  return app;
}

TEST_F(ServeRequestTest, CleanupsRunInReverseOrderAfterTheResponseIsWritten) {
  asio::io_context io;
  const stack app = app_with_user();
  ctxexec::http::request_scope_counters counters;
  test_request req{"/ok"};
  test_response res;
  recording_write write{&res.log};
  run_task(io, [&]() -> awaitable<void> {
    co_await ctxexec::http::serve_request(app, req, res, write,
                                          {.counters = &counters});
    // Nothing the request set reached the caller.
    EXPECT_EQ(user.get(), "-");
  }());
  EXPECT_EQ(res.log, (std::vector<std::string>{
                         "handler sees alice", "write /ok",
                         "cleanup 2 sees alice", "cleanup 1 sees alice"}));
  EXPECT_EQ(counters.opened.load(), 1u);
  EXPECT_EQ(counters.closed.load(), 1u);
  EXPECT_EQ(counters.cleanups_run.load(), 2u);
}

/// Serves `path` with app_with_user(); the stack or the write fails: the
/// error reaches the caller after both cleanups ran.
void expect_cleanups_after_failure(const char* path, bool write_fails) {
  asio::io_context io;
  const stack app = app_with_user();
  test_request req{path};
  test_response res;
  recording_write write{&res.log, write_fails};
  EXPECT_THROW(run_task(io, ctxexec::http::serve_request(app, req, res, write)),
               std::runtime_error);
  EXPECT_EQ(res.log, (std::vector<std::string>{"handler sees alice",
                                               "cleanup 2 sees alice",
                                               "cleanup 1 sees alice"}));
}

TEST_F(ServeRequestTest, CleanupsRunWhenTheHandlerThrowsThenItIsRethrown) {
  expect_cleanups_after_failure("/throw", /*write_fails=*/false);
}

TEST_F(ServeRequestTest, CleanupsRunWhenTheWriteFails) {
  expect_cleanups_after_failure("/ok", /*write_fails=*/true);
}

TEST_F(ServeRequestTest, ASyncHandlerSeesTheScopeAndMayRegisterCleanups) {
  asio::io_context io;
  std::vector<std::string> log;
  std::mutex m;
  stack app(ctxexec::http::sync_handler<test_request, test_response>(
      [&](test_request&, test_response&) {
        request_scope::current().defer_sync([&] {
          std::lock_guard lock(m);
          log.push_back("closed on a worker");
        });
      }));
  test_request req;
  test_response res;
  recording_write write{&log};
  run_task(io, ctxexec::http::serve_request(app, req, res, write));
  EXPECT_EQ(log, (std::vector<std::string>{"write ", "closed on a worker"}));
}

TEST_F(ServeRequestTest, AScopeKeptBeyondItsRequestIsClosedNeverDangling) {
  asio::io_context io;
  std::shared_ptr<request_scope> kept;
  stack app([&](test_request&, test_response&) -> awaitable<void> {
    kept = ctxexec::http::current_request_scope.get();  // as a late task would
    co_return;
  });
  test_request req;
  test_response res;
  recording_write write{&res.log};
  run_task(io, ctxexec::http::serve_request(app, req, res, write));
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->closing());
  EXPECT_THROW(kept->defer_sync([] {}), std::logic_error);
}

// --- Over a loopback Beast connection.

using beast_request = bhttp::request<bhttp::string_body>;
using beast_response = bhttp::response<bhttp::string_body>;
using beast_stack =
    ctxexec::http::middleware_stack<beast_request, beast_response>;

/// Serves one connection with `app` until the client closes it.
awaitable<void> serve_connection(asio::ip::tcp::acceptor& acceptor,
                                 const beast_stack& app,
                                 ctxexec::http::request_scope_counters& c) {
  beast::tcp_stream stream(co_await acceptor.async_accept(use_awaitable));
  beast::flat_buffer buffer;
  for (;;) {
    beast_request req;
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, req,
                                              asio::as_tuple(use_awaitable));
    if (ec) break;
    beast_response res{bhttp::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    try {
      co_await ctxexec::http::serve_request(
          stream.get_executor(), app, req, res,
          [&](beast_response& r) -> awaitable<void> {
            r.prepare_payload();
            co_await bhttp::async_write(stream, r, use_awaitable);
          },
          {.counters = &c});
    } catch (const std::exception&) {
      break;  // the write failed: the client is gone
    }
  }
  // The connection's own context never saw the requests' values.
  EXPECT_EQ(user.get(), "-");
  EXPECT_EQ(outcome.get(), "-");
}

/// Sends `req` on `stream` and reads the response (a blocking client).
beast_response round_trip(beast::tcp_stream& stream, beast_request req) {
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  beast_response res;
  bhttp::read(stream, buffer, res);
  return res;
}

/// Runs `io` until the connection task is `done` (at most 20 s), then
/// joins the client thread.
void run_until_done(asio::io_context& io, const bool& done,
                    std::thread& client) {
  asio::steady_timer guard(io, std::chrono::seconds(20));
  guard.async_wait([&](boost::system::error_code ec) {
    if (!ec) io.stop();
  });
  while (!done && !io.stopped()) io.run_one();
  client.join();
}

TEST_F(ServeRequestTest, NothingLeaksBetweenRequestsOfOneKeepAliveConnection) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io,
                                   {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  beast_stack app([](beast_request&, beast_response& res) -> awaitable<void> {
    res.body() = user.get() + "|" + outcome.get() + "|" +
                 ctxexec::current_trace.get().trace.to_string();
    (void)outcome.set("left by the handler");  // must not reach request 2
    co_return;
  });
  app.use([](beast_request& req, beast_response& res,
             beast_stack::next_type next) -> awaitable<void> {
    (void)ctxexec::http::enter_request(req);
    if (auto it = req.find("x-user"); it != req.end()) {
      (void)user.set(std::string(it->value()));
    }
    co_await next();
    ctxexec::http::set_traceresponse(res);
  });
  ctxexec::http::request_scope_counters counters;
  bool done = false;
  ctxexec::co_spawn(io, serve_connection(acceptor, app, counters),
                    [&](std::exception_ptr) { done = true; });
  std::vector<std::string> bodies;
  std::thread client([&] {
    asio::io_context cio;
    beast::tcp_stream stream(cio);
    stream.connect({asio::ip::make_address("127.0.0.1"), port});
    beast_request first{bhttp::verb::get, "/", 11};
    first.set("x-user", "alice");
    first.set("traceparent",
              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    bodies.push_back(round_trip(stream, first).body());
    beast_request second{bhttp::verb::get, "/", 11};
    bodies.push_back(round_trip(stream, second).body());
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both);
    stream.close();
  });
  run_until_done(io, done, client);
  ASSERT_TRUE(done) << "the connection did not end";
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], "alice|-|4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(bodies[1].substr(0, 4), "-|-|");  // a new trace, no user
  EXPECT_NE(bodies[1].substr(4), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(counters.opened.load(), 2u);
  EXPECT_EQ(counters.closed.load(), 2u);
}

TEST_F(ServeRequestTest, EveryCleanupRunsWhenTheClientDisconnectsMidRequest) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io,
                                   {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  asio::steady_timer gate(io, asio::steady_timer::time_point::max());
  std::promise<void> started;
  std::mutex m;
  std::vector<std::string> cleanups;
  auto record = [&](std::string s) {
    std::lock_guard lock(m);
    cleanups.push_back(std::move(s));
  };
  beast_stack app([&](beast_request&, beast_response& res) -> awaitable<void> {
    request_scope& scope = request_scope::current();
    scope.defer([&]() -> awaitable<void> {
      record("async 1");
      co_return;
    });
    scope.defer_sync([&] { record("sync 2"); });
    scope.defer([&]() -> awaitable<void> {
      record("async 3");
      co_return;
    });
    started.set_value();
    // Held until the client has gone away.
    co_await gate.async_wait(asio::as_tuple(use_awaitable));
    res.body() = std::string(64 * 1024, 'x');
  });
  ctxexec::http::request_scope_counters counters;
  bool done = false;
  ctxexec::co_spawn(io, serve_connection(acceptor, app, counters),
                    [&](std::exception_ptr) { done = true; });
  std::thread client([&] {
    asio::io_context cio;
    beast::tcp_stream stream(cio);
    stream.connect({asio::ip::make_address("127.0.0.1"), port});
    beast_request req{bhttp::verb::get, "/slow", 11};
    req.prepare_payload();
    bhttp::write(stream, req);
    started.get_future().wait();
    stream.socket().set_option(asio::socket_base::linger(true, 0));  // RST
    stream.close();
    asio::post(io, [&] { gate.cancel(); });  // let the handler finish
  });
  run_until_done(io, done, client);
  ASSERT_TRUE(done) << "the connection did not end";
  EXPECT_EQ(cleanups,
            (std::vector<std::string>{"async 3", "sync 2", "async 1"}));
  EXPECT_EQ(counters.opened.load(), 1u);
  EXPECT_EQ(counters.closed.load(), 1u);
  EXPECT_EQ(counters.cleanups_run.load(), 3u);
}

}  // namespace
