// The HTTP part's umbrella header on its own: the life of a request as
// docs/http.md shows it, with Beast messages and no socket.

#include <ctxexec/http.hpp>

#include "context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

namespace {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;
using stack = ctxexec::http::middleware_stack<request, response>;

inline ctxexec::context_var<std::string> user_id{"user_id", "anonymous"};

class HttpUmbrellaTest : public ctxexec_test::ContextFixture {};

TEST_F(HttpUmbrellaTest, TheLifeOfARequest) {
  boost::asio::io_context io;
  stack app([](request&, response& res) -> boost::asio::awaitable<void> {
    res.body() =
        user_id.get() + " " + ctxexec::current_trace.get().trace.to_string();
    co_return;
  });
  app.use([](request& req, response& res,
             stack::next_type next) -> boost::asio::awaitable<void> {
    (void)ctxexec::http::enter_request(req);
    (void)user_id.set(std::string(req["x-user-id"]));
    co_await next();
    ctxexec::http::set_traceresponse(res);
  });
  request req{http::verb::get, "/", 11};
  req.set("x-user-id", "alice");
  req.set("traceparent",
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  response res;
  std::string written;
  auto done =
      ctxexec::co_spawn(io,
                        ctxexec::http::serve_request(
                            app, req, res,
                            [&](response& r) -> boost::asio::awaitable<void> {
                              written = r.body();
                              co_return;
                            }),
                        boost::asio::use_future);
  io.run();
  done.get();
  EXPECT_EQ(written, "alice 4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(std::string(res["traceresponse"]).substr(0, 36),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(user_id.get(), "anonymous");  // nothing leaked to the caller
}

}  // namespace
