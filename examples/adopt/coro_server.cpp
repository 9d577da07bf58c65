// coro_server.cpp and coro_server_plain.cpp: an HTTP/1.1 server on
// Boost.Beast and C++20 coroutines, in the shape of Beast's coroutine
// server: a listener coroutine, and one coroutine per connection that reads
// its requests one after the other (keep-alive). coro_server_plain.cpp is
// the server before ctxexec, coro_server.cpp the same server with it: they
// differ only by what adopting ctxexec changes. docs/adopting.md shows their
// diff (the test adopt.docs_diffs checks it); ctest builds and runs both.
//
// Each request: a log line, a call to a backend (a timer stands in for its
// latency), rendering on a thread pool, and the answer "hello <target>".
// With ctxexec, every `asio::co_spawn` is `ctxexec::co_spawn`, and each
// request runs in a child task of its connection, in its own copy of the
// context. The acceptor is built from `ctxexec::unwrap(ex)`, so that the
// sockets it makes do not run their handlers in the listener's context.
// The request's trace id and user id, set once, are on every log line
// written for it (after the backend's timer, on the thread pool) and in its
// answer.
//
// Usage: coro_server[_plain] [port]   (0, the default, picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout, logs to stderr, and stops
// on SIGINT or SIGTERM.

#include "request_log.hpp"
#include "run_server.hpp"

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/asio/unwrap.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A call to a backend service: the timer stands in for its latency.
asio::awaitable<void> call_backend() {
  asio::steady_timer latency(co_await asio::this_coro::executor, 1ms);
  co_await latency.async_wait(asio::use_awaitable);
  log_line("backend answered");
}

// CPU-bound work, run on the thread pool.
asio::awaitable<std::string> render(std::string target) {
  log_line("rendering " + target);
  co_return "hello " + target + " " + request_ids();
}

// Answers one request.
asio::awaitable<response> handle(request req, asio::thread_pool& pool) {
  enter_request(req["traceparent"], req["x-user-id"]);
  const std::string target(req.target());
  log_line(std::string(req.method_string()) + " " + target);
  co_await call_backend();
  std::string body =
      co_await ctxexec::co_spawn(pool, render(target), asio::use_awaitable);
  response res(http::status::ok, req.version());
  res.set(http::field::content_type, "text/plain");
  res.keep_alive(req.keep_alive());
  res.body() = body + "\n";
  res.prepare_payload();
  log_line("responding 200");
  co_return res;
}

// Serves one connection: its requests one after the other.
asio::awaitable<void> session(tcp::socket socket, asio::thread_pool& pool) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    request req;
    stream.expires_after(30s);
    auto [read_error, n] =
        co_await http::async_read(stream, buffer, req, use_tuple);
    if (read_error) {
      if (read_error != http::error::end_of_stream) log_line("read failed");
      break;
    }
    const bool keep_alive = req.keep_alive();
    response res = co_await ctxexec::co_spawn(  // the request's own context
        stream.get_executor(), handle(std::move(req), pool),
        asio::use_awaitable);
    auto [write_error, m] = co_await http::async_write(stream, res, use_tuple);
    if (write_error || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

// Accepts connections, each served by its own coroutine.
asio::awaitable<void> listener(tcp::endpoint endpoint,
                               asio::thread_pool& pool) {
  tcp::acceptor acceptor(ctxexec::unwrap(co_await asio::this_coro::executor),
                         endpoint);
  std::cout << "listening on " << acceptor.local_endpoint() << std::endl;
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(use_tuple);
    if (error) break;  // the acceptor failed
    auto ex = acceptor.get_executor();
    ctxexec::co_spawn(ex, session(std::move(socket), pool), asio::detached);
  }
}

int main(int argc, char* argv[]) {
  asio::thread_pool pool(2);
  asio::io_context io;
  auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  ctxexec::co_spawn(io, listener(loopback_endpoint(argc, argv), pool), rethrow);
  run_until_stopped(io);
}
