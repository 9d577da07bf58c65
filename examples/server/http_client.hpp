// examples/server/http_client.hpp: the demo's Beast HTTP/1.1 client, for
// /chain and /test: URLs of the form http://host[:port][/path], and a
// per-loop cache of idle keep-alive connections (one loop thread uses a
// client, so it needs no lock).

#ifndef CTXEXEC_EXAMPLES_SERVER_HTTP_CLIENT_HPP
#define CTXEXEC_EXAMPLES_SERVER_HTTP_CLIENT_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace demo {

/// A parsed `http://host[:port][/target]` URL.
struct url {
  std::string host;
  std::string port;
  std::string target;  // "/" when the URL has no path

  /// Parses `text`; std::nullopt for anything but a plain http URL.
  static std::optional<url> parse(std::string_view text) {
    constexpr std::string_view scheme = "http://";
    if (text.substr(0, scheme.size()) != scheme) return std::nullopt;
    text.remove_prefix(scheme.size());
    const std::size_t slash = text.find('/');
    std::string_view authority = text.substr(0, slash);
    url u;
    u.target = slash == std::string_view::npos ? "/" : text.substr(slash);
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      u.port = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    } else {
      u.port = "80";
    }
    u.host = authority;
    if (u.host.empty() || u.port.empty() ||
        u.port.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    return u;
  }
};

using client_response =
    boost::beast::http::response<boost::beast::http::string_body>;

/// A client for one event loop: idle connections are kept per host:port
/// and reused. Use it only from the loop thread of `ex`.
class http_client {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  explicit http_client(executor_type ex) : ex_(ex) {}

  /// Sends `req` to `u`'s host and port (its target and Host are set by the
  /// caller) and returns the response. A kept connection that fails before
  /// any byte of a response arrived (the server closed it while it was
  /// idle) is dropped and the call goes on with the next kept one, then
  /// with a new connection; only a new connection's failure, or one after
  /// a response began, is thrown: boost::system::system_error.
  template <class Body>
  boost::asio::awaitable<client_response> call(
      const url& u, boost::beast::http::request<Body>& req) {
    namespace http = boost::beast::http;
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    const std::string key = u.host + ':' + u.port;
    req.keep_alive(true);
    req.prepare_payload();
    for (;;) {
      std::unique_ptr<boost::beast::tcp_stream> stream = take(key);
      const bool reused = stream != nullptr;
      if (!reused) stream = co_await connect(u);
      stream->expires_after(std::chrono::seconds(10));
      auto [wec, wn] =
          co_await http::async_write(*stream, req, as_tuple(use_awaitable));
      client_response res;
      boost::system::error_code ec = wec;
      std::size_t received = 0;
      if (!ec) {
        boost::beast::flat_buffer buffer;
        auto [rec, rn] = co_await http::async_read(*stream, buffer, res,
                                                   as_tuple(use_awaitable));
        ec = rec;
        received = rn + buffer.size();
      }
      if (ec) {
        if (reused && received == 0) continue;  // a stale kept connection
        throw boost::system::system_error(ec, "call to " + key);
      }
      stream->expires_never();
      if (res.keep_alive()) put(key, std::move(stream));
      co_return res;
    }
  }

 private:
  boost::asio::awaitable<std::unique_ptr<boost::beast::tcp_stream>> connect(
      const url& u) {
    auto stream = std::make_unique<boost::beast::tcp_stream>(ex_);
    stream->expires_after(std::chrono::seconds(10));
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(u.host, ec);
    const auto port = static_cast<unsigned short>(std::stoi(u.port));
    if (!ec) {
      co_await stream->async_connect({address, port},
                                     boost::asio::use_awaitable);
    } else {
      boost::asio::ip::tcp::resolver resolver(ex_);
      auto endpoints = co_await resolver.async_resolve(
          u.host, u.port, boost::asio::use_awaitable);
      co_await stream->async_connect(endpoints, boost::asio::use_awaitable);
    }
    stream->socket().set_option(boost::asio::ip::tcp::no_delay(true));
    co_return stream;
  }

  std::unique_ptr<boost::beast::tcp_stream> take(const std::string& key) {
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if (it->first == key) {
        auto stream = std::move(it->second);
        idle_.erase(std::next(it).base());
        return stream;
      }
    }
    return nullptr;
  }

  void put(const std::string& key,
           std::unique_ptr<boost::beast::tcp_stream> stream) {
    if (idle_.size() >= max_idle) idle_.erase(idle_.begin());
    idle_.emplace_back(key, std::move(stream));
  }

  static constexpr std::size_t max_idle = 256;

  executor_type ex_;
  std::vector<std::pair<std::string, std::unique_ptr<boost::beast::tcp_stream>>>
      idle_;
};

}  // namespace demo

#endif  // CTXEXEC_EXAMPLES_SERVER_HTTP_CLIENT_HPP
