// Tests of ctxexec::bind_context: snapshots, explicit contexts, associators.

#include <ctxexec/asio/bind_context.hpp>

#include <ctxexec/asio.hpp>
#include <ctxexec/context_leak_check.hpp>
#include "../context_fixture.hpp"
#include "../run_loop.hpp"
#include "../sharing.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

namespace asio = boost::asio;

class BindContextTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<int> task_id("task_id", -1);

TEST_F(BindContextTest, BindContextSnapshotsAtBindTime) {
  asio::io_context io;
  int seen = 0;
  auto t = task_id.set(11);
  auto h = ctxexec::bind_context([&] { seen = task_id.get(); });
  task_id.reset(t);
  asio::post(io, std::move(h));
  io.run();
  EXPECT_EQ(seen, 11);
}

TEST_F(BindContextTest, BindContextForwardsAssociatedExecutorAndAllocator) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  auto bound = ctxexec::bind_context(asio::bind_executor(strand, [] {}));
  EXPECT_TRUE(asio::get_associated_executor(bound) == strand);
  using alloc = asio::associated_allocator_t<decltype(bound)>;
  EXPECT_TRUE((std::is_same_v<alloc, std::allocator<void>>));
  asio::cancellation_signal signal;
  auto with_slot =
      ctxexec::bind_context(asio::bind_cancellation_slot(signal.slot(), [] {}));
  EXPECT_TRUE(asio::get_associated_cancellation_slot(with_slot) ==
              signal.slot());
}

TEST_F(BindContextTest, HandlerThrowingOutOfRunLeavesTheRootContext) {
  asio::io_context io;
  ctxexec::context ctx;
  ctx.run([] { (void)task_id.set(1); });
  ctxexec::context_leak_check before;
  asio::post(io, ctxexec::bind_context(ctx, [] {
               EXPECT_EQ(task_id.get(), 1);
               throw std::runtime_error("handler failed");
             }));
  int after = 0;
  asio::post(io, [&] { after = task_id.get(); });
  EXPECT_THROW(io.run(), std::runtime_error);
  EXPECT_TRUE(before.intact());
  EXPECT_EQ(task_id.get(), -1);
  io.restart();
  io.run();  // the remaining handler runs in the root context
  EXPECT_EQ(after, -1);
}

// A binder is the completion handler of any Asio initiating function, with
// Asio's handler type requirements on (the default): timers, the resolver,
// accept and the composed async_connect, socket reads and writes, the
// composed async_read and async_write, Beast's http::async_read and
// async_write, and inside as_tuple and redirect_error. Every handler runs in
// the context it was bound in: the server's steps in the server's, the
// client's in the client's.
TEST_F(BindContextTest, BindsTheHandlerOfEveryKindOfOperation) {
  namespace http = boost::beast::http;
  using tcp = asio::ip::tcp;
  using error_code = boost::system::error_code;
  ctxexec::context_var<std::string> side("side", "none");
  asio::io_context io(1);
  std::vector<std::string> seen;
  auto record = [&](const char* step, bool ok) {
    seen.push_back(std::string(step) + (ok ? "" : "(failed)") + ":" +
                   side.get());
  };
  tcp::acceptor acceptor(io,
                         tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const std::string port = std::to_string(acceptor.local_endpoint().port());
  tcp::socket server(io);
  tcp::socket client(io);
  asio::steady_timer timer(io);
  tcp::resolver resolver(io);
  boost::beast::flat_buffer server_buffer, client_buffer;
  http::request<http::string_body> request{http::verb::post, "/", 11};
  http::request<http::string_body> received;
  http::response<http::string_body> response, answer;
  std::array<char, 4> server_raw{}, client_raw{};
  error_code write_error;

  {
    auto g = side.scoped_set("server");
    acceptor.async_accept(
        server, ctxexec::bind_context([&](error_code ec) {
          record("accept", !ec);
          http::async_read(
              server, server_buffer, received,
              ctxexec::bind_context([&](error_code ec, std::size_t) {
                record("http_read", !ec);
                response.result(http::status::ok);
                response.body() = received.body();
                response.prepare_payload();
                http::async_write(
                    server, response,
                    ctxexec::bind_context([&](error_code ec, std::size_t) {
                      record("http_write", !ec);
                      asio::async_read(
                          server, asio::buffer(server_raw),
                          ctxexec::bind_context(
                              [&](error_code ec, std::size_t) {
                                record("read", !ec);
                                server.async_write_some(
                                    asio::buffer(server_raw),
                                    ctxexec::bind_context(
                                        [&](error_code ec, std::size_t) {
                                          record("write_some", !ec);
                                        }));
                              }));
                    }));
              }));
        }));
  }
  // Declared here: the client's handlers run after the block below ends.
  auto exchange = [&](tcp::resolver::results_type endpoints) {
    asio::async_connect(
        client, endpoints,
        asio::as_tuple(ctxexec::bind_context(
            [&](std::tuple<error_code, tcp::endpoint> result) {
              record("connect", !std::get<0>(result));
              request.body() = "hello";
              request.prepare_payload();
              http::async_write(
                  client, request,
                  asio::redirect_error(
                      ctxexec::bind_context([&](std::size_t) {
                        record("http_write", !write_error);
                        http::async_read(
                            client, client_buffer, answer,
                            ctxexec::bind_context([&](error_code ec,
                                                      std::size_t) {
                              record("http_read", !ec);
                              asio::async_write(
                                  client, asio::buffer("ping", 4),
                                  ctxexec::bind_context([&](error_code ec,
                                                            std::size_t) {
                                    record("write", !ec);
                                    client.async_read_some(
                                        asio::buffer(client_raw),
                                        ctxexec::bind_context(
                                            [&](error_code ec, std::size_t) {
                                              record("read_some", !ec);
                                            }));
                                  }));
                            }));
                      }),
                      write_error));
            })));
  };
  {
    auto g = side.scoped_set("client");
    timer.expires_after(std::chrono::milliseconds(0));
    timer.async_wait(ctxexec::bind_context([&](error_code ec) {
      record("timer", !ec);
      resolver.async_resolve(
          "127.0.0.1", port,
          ctxexec::bind_context(
              [&](error_code ec, tcp::resolver::results_type endpoints) {
                record("resolve", !ec);
                exchange(endpoints);
              }));
    }));
  }
  io.run_for(std::chrono::seconds(20));  // stops by itself well before
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen,
            (std::vector<std::string>{
                "accept:server", "connect:client", "http_read:client",
                "http_read:server", "http_write:client", "http_write:server",
                "read:server", "read_some:client", "resolve:client",
                "timer:client", "write:client", "write_some:server"}));
  EXPECT_EQ(answer.body(), "hello");
  EXPECT_EQ(std::string(client_raw.data(), 4), "ping");
  EXPECT_EQ(side.get(), "none");  // nothing leaked into the thread's context
}

// A binder whose context object another thread has entered waits for it to
// be exited, then runs in it.
TEST_F(BindContextTest, BinderOfABusyContextWaitsForItsExit) {
  ctxexec::context_var<int> tag("tag", 0);
  ctxexec::context ctx;
  ctxexec_test::holder_thread holder(ctx, tag);
  int seen = 0;
  std::thread waiter(
      [&] { ctxexec::bind_context(ctx, [&] { seen = tag.get(); })(); });
  holder.wait_for_a_waiter();
  holder.release();
  waiter.join();
  EXPECT_EQ(seen, 2);
}

// Handlers bound to one context object and run by several threads at once
// take turns in it: no data race, no freed value read, and what each one
// set and reset leaves the object as it was.
TEST_F(BindContextTest, HandlersBoundToOneContextOnManyThreadsNeverRace) {
  constexpr int kHandlers = 4000;
  constexpr int kThreads = 4;
  ctxexec::context_var<std::string> tag("tag");
  ctxexec::context ctx;
  ctx.run([&] { (void)tag.set(ctxexec_test::flow_value("init", 0)); });
  asio::io_context io(kThreads);
  std::atomic<long> runs{0};
  std::atomic<long> bad{0};
  for (int i = 0; i < kHandlers; ++i) {
    asio::post(io, ctxexec::bind_context(ctx, [&, i] {
                 const std::string* before = tag.try_get();
                 if (before == nullptr ||
                     !ctxexec_test::is_flow_value(*before, {"init"}, 1)) {
                   ++bad;  // another handler's value: it ran at the same time
                 }
                 auto guard =
                     tag.scoped_set(ctxexec_test::flow_value("binder", i));
                 if (*tag.try_get() != ctxexec_test::flow_value("binder", i))
                   ++bad;
                 ++runs;
               }));
  }
  ctxexec_test::run_on_threads(io, kThreads);
  EXPECT_EQ(runs.load(), kHandlers);
  EXPECT_EQ(bad.load(), 0);
  ctx.run([&] { EXPECT_EQ(tag.get(), ctxexec_test::flow_value("init", 0)); });
}

}  // namespace
