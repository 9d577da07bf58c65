// readme_asio.cpp: the Boost.Asio example of README.md, built and run by
// ctest (`readme_asio_example`); `readme_snippets` checks that README.md
// shows exactly the lines between the markers.
//
// Three requests run concurrently on one io_context. Each task gets its
// own copy of the context, hops through a thread pool and back, and still
// sees only its own request id; nothing leaks into main.

// [readme-begin]
#include <boost/asio.hpp>
#include <ctxexec/ctxexec.hpp>
#include <iostream>
namespace asio = boost::asio;
ctxexec::context_var<std::string> request_id{"request_id", "-"};

asio::awaitable<void> handle(std::string id, asio::thread_pool& pool) {
  auto guard = request_id.scoped_set(id);          // this task's copy only
  co_await asio::post(pool, asio::use_awaitable);  // through the pool and back
  std::cout << id << " sees " << request_id.get() << "\n";  // its own id
}

int main() {
  asio::io_context io;
  asio::thread_pool pool(2);
  for (const char* id : {"req-1", "req-2", "req-3"})
    ctxexec::co_spawn(io, handle(id, pool), asio::detached);  // a copy each
  io.run();
  std::cout << "main sees " << request_id.get() << "\n";  // "-": no leak
}
// [readme-end]
