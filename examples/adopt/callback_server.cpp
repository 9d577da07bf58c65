// callback_server.cpp and callback_server_plain.cpp: an HTTP/1.1 server on
// Boost.Beast with completion handlers, in the style of Beast's classic
// async server: a listener and one session per connection, each an object
// kept alive by the handlers it gives out (`shared_from_this`), a session's
// handlers serialised by its strand. callback_server_plain.cpp is the
// server before ctxexec, callback_server.cpp the same server with it: they
// differ only by what adopting ctxexec changes. docs/adopting.md shows
// their diff (the test adopt.docs_diffs checks it); ctest builds and runs
// both.
//
// Each request: a log line, a call to a backend (a timer stands in for its
// latency), rendering on a thread pool, and the answer "hello <target>".
// With ctxexec, a session makes a new context when it has read a request
// (a copy of the current one) and starts the request in it; every
// completion handler of the request is bound to that context
// (`ctxexec::bind_context(ctx, h)`, made in one place: `step()`), while
// the handler that reads the next request is not. The request's trace id
// and user id, set once, are on every log line written for it (in the
// backend's timer handler, on the thread pool, after the write) and in its
// answer.
//
// Usage: callback_server[_plain] [port]   (0, the default, picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout, logs to stderr, and stops
// on SIGINT or SIGTERM.

#include "request_log.hpp"
#include "run_server.hpp"

#include <ctxexec/asio/bind_context.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

// One connection: its requests one after the other, on its strand.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket&& socket, asio::thread_pool& pool)
      : stream_(std::move(socket)),
        backend_(stream_.get_executor()),
        pool_(pool) {}

  void start() {
    asio::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&session::read, shared_from_this()));
  }

 private:
  // A completion handler of the current request: calls `member` with `args`
  // and the operation's results. Every handler of a request is made here.
  template <class Member, class... Args>
  auto step(Member member, Args&&... args) {
    return ctxexec::bind_context(
        context_, beast::bind_front_handler(member, shared_from_this(),
                                            std::forward<Args>(args)...));
  }

  void read() {
    request_ = {};
    stream_.expires_after(30s);
    http::async_read(
        stream_, buffer_, request_,
        beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code error, std::size_t) {
    if (error) return close(error);
    context_ = ctxexec::copy_context();  // the request's own context
    context_.run([this] { handle(); });
  }

  // The request starts: a call to the backend first.
  void handle() {
    enter_request(request_["traceparent"], request_["x-user-id"]);
    log_line(std::string(request_.method_string()) + " " +
             std::string(request_.target()));
    backend_.expires_after(1ms);
    backend_.async_wait(step(&session::on_backend));
  }

  void on_backend(beast::error_code error) {
    if (error) return close(error);
    log_line("backend answered");
    asio::post(pool_, step(&session::render));
  }

  // CPU-bound work, on a thread of the pool; then back to the strand.
  void render() {
    const std::string target(request_.target());
    log_line("rendering " + target);
    std::string body = "hello " + target + " " + request_ids();
    asio::post(stream_.get_executor(),
               step(&session::respond, std::move(body)));
  }

  void respond(std::string body) {
    response_ = {http::status::ok, request_.version()};
    response_.set(http::field::content_type, "text/plain");
    response_.keep_alive(request_.keep_alive());
    response_.body() = body + "\n";
    response_.prepare_payload();
    log_line("responding 200");
    http::async_write(stream_, response_, step(&session::on_write));
  }

  void on_write(beast::error_code error, std::size_t) {
    if (error) return close(error);
    if (!response_.keep_alive()) return close({});
    read();
  }

  void close(beast::error_code error) {
    if (error && error != http::error::end_of_stream) log_line("I/O failed");
    stream_.socket().shutdown(tcp::socket::shutdown_send, error);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  asio::steady_timer backend_;
  asio::thread_pool& pool_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  ctxexec::context context_;  // of the current request
};

// Accepts connections, each onto a strand of its own.
class listener : public std::enable_shared_from_this<listener> {
 public:
  listener(asio::io_context& io, asio::thread_pool& pool,
           tcp::endpoint endpoint)
      : io_(io), acceptor_(io, endpoint), pool_(pool) {
    std::cout << "listening on " << acceptor_.local_endpoint() << std::endl;
  }

  void accept() {
    acceptor_.async_accept(
        asio::make_strand(io_),
        beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code error, tcp::socket socket) {
    if (error) return;  // the acceptor failed
    std::make_shared<session>(std::move(socket), pool_)->start();
    accept();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::thread_pool& pool_;
};

int main(int argc, char* argv[]) {
  asio::thread_pool pool(2);
  asio::io_context io;
  std::make_shared<listener>(io, pool, loopback_endpoint(argc, argv))->accept();
  run_until_stopped(io);
}
