// A consumer of every part: proves the package's include paths, C++20,
// Boost and Abseil requirements reach a project that only links
// ctxexec::ctxexec.

#include <ctxexec/ctxexec.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <string>

inline ctxexec::context_var<std::string> request_id{"request_id", "-"};

int main() {
  boost::asio::io_context io;
  std::string seen;
  {
    auto guard = request_id.scoped_set("req-1");
    ctxexec::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          seen = co_await ctxexec::run_sync_with_context(
              [] { return request_id.get(); }, boost::asio::use_awaitable);
        },
        boost::asio::detached);
  }
  io.run();
  std::printf("consumer saw %s\n", seen.c_str());
  return seen == "req-1" ? 0 : 1;
}
