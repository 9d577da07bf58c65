// tests/http/http_test_util.hpp: what the HTTP tests share: a request and a
// response of their own (the middleware is framework-neutral), and running
// one coroutine to its end on an io_context.

#ifndef CTXEXEC_TESTS_HTTP_HTTP_TEST_UTIL_HPP
#define CTXEXEC_TESTS_HTTP_HTTP_TEST_UTIL_HPP

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/context_var.hpp>
#include <ctxexec/http/middleware.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <string>
#include <utility>
#include <vector>

namespace ctxexec_test {

struct test_request {
  std::string path;
};

struct test_response {
  int status = 0;
  std::string body;
  std::vector<std::string> log;
};

using test_stack = ctxexec::http::middleware_stack<test_request, test_response>;

/// Variables that middleware and handlers set in the tests.
inline ctxexec::context_var<std::string> user("user", "-");
inline ctxexec::context_var<std::string> outcome("outcome", "-");

/// Runs `a` as a ctxexec task on `io` until `io` runs out of work; returns
/// its result, or rethrows its exception.
template <class T>
T run_task(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto f = ctxexec::co_spawn(io, std::move(a), boost::asio::use_future);
  io.run();
  io.restart();
  return f.get();
}

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_HTTP_HTTP_TEST_UTIL_HPP
