// examples/server/routes.hpp: the routes, written once for both modes.
// A mode says where the request's ids come from and how blocking work and
// DB sessions are handled:
//   * demo::context_mode (server.hpp): ctxexec. The ids are read from
//     context variables, also on the worker; blocking work goes through
//     run_sync_with_context; a DB session is released by the request
//     scope.
//   * demo::plain_mode: plain Asio. The ids are passed as arguments;
//     blocking work is a plain post to an asio::thread_pool and back.
// Every JSON response starts with route, trace_id, span_id, parent_id,
// user_id and thread, read inside the handler (on the worker for /sync).

#ifndef CTXEXEC_EXAMPLES_SERVER_ROUTES_HPP
#define CTXEXEC_EXAMPLES_SERVER_ROUTES_HPP

#include "http_client.hpp"
#include "json_text.hpp"
#include "metrics.hpp"

#include <ctxexec/baggage.hpp>
#include <ctxexec/http/beast.hpp>
#include <ctxexec/trace_context.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace demo {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// True on the event loop threads (set when each starts).
inline thread_local bool on_loop_thread = false;

inline std::string_view thread_kind() {
  return on_loop_thread ? "loop" : "worker";
}

/// The integer query parameter `name` of `target`, else `fallback`, kept
/// within [lo, hi].
inline std::int64_t query_int(std::string_view target, std::string_view name,
                              std::int64_t fallback, std::int64_t lo,
                              std::int64_t hi) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return fallback;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    std::int64_t v = 0;
    const std::string_view text = pair.substr(eq + 1);
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return fallback;
    return std::clamp(v, lo, hi);
  }
  return fallback;
}

/// The user id of a request: `x-user-id`, else the baggage member
/// `user.id`, else "anonymous".
inline std::string user_of(const request& req, const ctxexec::baggage& bag) {
  if (auto it = req.find("x-user-id");
      it != req.end() && !it->value().empty()) {
    return std::string(it->value());
  }
  if (auto v = bag.get("user.id"); v && !v->empty()) return std::string(*v);
  return "anonymous";
}

/// The baggage to send on: the request's, with `user.id` = the user id.
inline ctxexec::baggage outgoing_baggage(const ctxexec::baggage& bag,
                                         std::string_view user) {
  if (bag.get("user.id") == user) return bag;
  return bag.with("user.id", user);
}

/// Writes a JSON body and its status.
inline void set_json(response& res, http::status status, std::string body) {
  res.result(status);
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
}

/// A JSON error response with the usual fields and `error`.
inline void set_json_error(response& res, http::status status, route r,
                           const ctxexec::trace_context& span,
                           std::string_view user, std::string_view error) {
  std::string body;
  open_response(body, name_of(r), span, user, thread_kind());
  append_key(body, "error");
  append_json_string(body, error);
  body += '}';
  set_json(res, status, std::move(body));
}

/// What the routes need from the server, beside the mode.
struct route_env {
  std::optional<url> upstream;
  /// Renders /metrics.
  std::function<std::string()> metrics;
  /// Serves GET /block?ms=N (--misbehave).
  bool misbehave = false;
};

template <class Mode>
boost::asio::awaitable<void> route_async(Mode& m, const request& req,
                                         response& res, route r,
                                         std::int64_t ms) {
  boost::asio::steady_timer timer(m.loop_executor(),
                                  std::chrono::milliseconds(ms));
  co_await timer.async_wait(boost::asio::use_awaitable);
  std::string body;
  open_response(body, name_of(r), m.span(), m.user(), thread_kind());
  if (r == route::chain) {
    append_number(body, "hops", 0);
  } else {
    append_number(body, "ms", ms);
  }
  body += '}';
  set_json(res, http::status::ok, std::move(body));
  (void)req;
}

template <class Mode>
boost::asio::awaitable<void> route_sync(Mode& m, const request& req,
                                        response& res) {
  const std::int64_t ms = query_int(req.target(), "ms", 0, 0, 60'000);
  const int session = co_await m.db_session();
  std::string body;
  co_await m.offload([&] {
    // A blocking call, as a sync DB driver makes, on a worker thread.
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    // Read here, on the worker: the ids followed the request.
    open_response(body, name_of(route::sync_), m.span(), m.user(),
                  thread_kind());
    append_number(body, "ms", ms);
    append_number(body, "db_session", session);
    body += '}';
  });
  set_json(res, http::status::ok, std::move(body));
}

/// Sends a request from this one to `u` with `target`, propagating the
/// trace (a child span) and the baggage (with the user id).
template <class Mode>
boost::asio::awaitable<client_response> call_out(Mode& m, const url& u,
                                                 http::verb verb,
                                                 std::string target,
                                                 std::string body) {
  http::request<http::string_body> out{verb, target, 11};
  out.set(http::field::host, u.host + ':' + u.port);
  if (verb == http::verb::post) {
    out.set(http::field::content_type, "application/json");
  }
  out.body() = std::move(body);
  ctxexec::http::inject(out, m.span().child(),
                        outgoing_baggage(m.baggage(), m.user()));
  co_return co_await m.client().call(u, out);
}

template <class Mode>
boost::asio::awaitable<void> route_chain(Mode& m, const route_env& env,
                                         const request& req, response& res) {
  const std::int64_t hops = query_int(req.target(), "hops", 0, 0, 64);
  if (hops == 0 || !env.upstream) {
    co_await route_async(m, req, res, route::chain, 0);
    co_return;
  }
  std::string target = env.upstream->target;
  if (!target.empty() && target.back() == '/') target.pop_back();
  target += "/chain?hops=";
  target += std::to_string(hops - 1);
  std::string upstream_body;
  std::string error;
  try {
    std::string no_body;
    client_response up =
        co_await call_out(m, *env.upstream, http::verb::get, std::move(target),
                          std::move(no_body));
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(up.body(), ec);
    if (up.result() != http::status::ok || ec || !v.is_object()) {
      error = "upstream answered " + std::to_string(up.result_int());
    } else {
      upstream_body = std::move(up.body());
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    set_json_error(res, http::status::bad_gateway, route::chain, m.span(),
                   m.user(), error);
    co_return;
  }
  std::string body;
  open_response(body, name_of(route::chain), m.span(), m.user(), thread_kind());
  append_number(body, "hops", hops);
  append_key(body, "upstream");
  body += upstream_body;
  body += '}';
  set_json(res, http::status::ok, std::move(body));
}

/// The W3C Trace Context test service: for each {url, arguments} of the
/// body, POST `arguments` to `url`, propagating the trace.
template <class Mode>
boost::asio::awaitable<void> route_test(Mode& m, const request& req,
                                        response& res) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(req.body(), ec);
  if (ec || !v.is_array()) {
    set_json_error(res, http::status::bad_request, route::test, m.span(),
                   m.user(),
                   "the body must be a JSON array of {url, arguments}");
    co_return;
  }
  std::string statuses;
  std::size_t calls = 0;
  for (const boost::json::value& item : v.get_array()) {
    const boost::json::object* o = item.if_object();
    const boost::json::value* u =
        o != nullptr ? o->if_contains("url") : nullptr;
    const boost::json::value* args =
        o != nullptr ? o->if_contains("arguments") : nullptr;
    std::optional<url> target;
    if (u != nullptr && u->is_string()) target = url::parse(u->get_string());
    if (!target) {
      set_json_error(res, http::status::bad_request, route::test, m.span(),
                     m.user(), "each element needs an http \"url\"");
      co_return;
    }
    // Arguments are built before the co_await: GCC 12 mishandles some
    // temporaries inside a co_await expression (it may copy a string's
    // bytes without fixing its pointer).
    std::string payload = "[]";
    if (args != nullptr) payload = boost::json::serialize(*args);
    std::string path = target->target;
    int status = 0;
    try {
      client_response r = co_await call_out(
          m, *target, http::verb::post, std::move(path), std::move(payload));
      status = r.result_int();
    } catch (const std::exception&) {
      status = 0;  // unreachable: recorded, and the next one is tried
    }
    if (calls++ != 0) statuses += ',';
    statuses += std::to_string(status);
  }
  std::string body;
  open_response(body, name_of(route::test), m.span(), m.user(), thread_kind());
  append_number(body, "calls", static_cast<std::int64_t>(calls));
  append_key(body, "statuses");
  body += '[';
  body += statuses;
  body += "]}";
  set_json(res, http::status::ok, std::move(body));
}

/// The parsed `baggage` header, as the W3C baggage test suite's design
/// shows it: [{key, value, properties: [{key, value?}]}]. 400 if invalid.
template <class Mode>
void route_baggage_parse(Mode& m, const request& req, response& res) {
  const ctxexec::baggage_parse_result parsed =
      ctxexec::http::extract_baggage(req);
  if (!parsed.ok()) {
    set_json_error(res, http::status::bad_request, route::baggage_parse,
                   m.span(), m.user(), "invalid baggage header");
    return;
  }
  std::string body = "[";
  bool first = true;
  for (const ctxexec::baggage::member& member : parsed.value) {
    if (!first) body += ',';
    first = false;
    body += "{\"key\":";
    append_json_string(body, member.key);
    body += ",\"value\":";
    append_json_string(body, member.value);
    body += ",\"properties\":[";
    bool first_property = true;
    for (const ctxexec::baggage::property& p : member.properties) {
      if (!first_property) body += ',';
      first_property = false;
      body += "{\"key\":";
      append_json_string(body, p.key);
      if (p.value) {
        body += ",\"value\":";
        append_json_string(body, *p.value);
      }
      body += '}';
    }
    body += "]}";
  }
  body += ']';
  set_json(res, http::status::ok, std::move(body));
}

/// GET /block?ms=N (--misbehave): the seed's mistake made on purpose, a
/// blocking sleep on the event loop thread itself, which freezes every
/// other request of this loop meanwhile. The loop monitor reports it while
/// it blocks, with this request's trace id and user id.
template <class Mode>
void route_block(Mode& m, const request& req, response& res) {
  const std::int64_t ms = query_int(req.target(), "ms", 0, 0, 60'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  std::string body;
  open_response(body, name_of(route::block), m.span(), m.user(), thread_kind());
  append_number(body, "ms", ms);
  body += '}';
  set_json(res, http::status::ok, std::move(body));
}

/// Dispatches a request to its route.
template <class Mode>
boost::asio::awaitable<void> dispatch(Mode& m, const route_env& env, route r,
                                      const request& req, response& res) {
  const bool get = req.method() == http::verb::get;
  switch (r) {
    case route::async_:
      if (!get) break;
      co_await route_async(m, req, res, r,
                           query_int(req.target(), "ms", 0, 0, 60'000));
      co_return;
    case route::sync_:
      if (!get) break;
      co_await route_sync(m, req, res);
      co_return;
    case route::chain:
      if (!get) break;
      co_await route_chain(m, env, req, res);
      co_return;
    case route::test:
      if (req.method() != http::verb::post) break;
      co_await route_test(m, req, res);
      co_return;
    case route::baggage_parse:
      if (!get) break;
      route_baggage_parse(m, req, res);
      co_return;
    case route::block:
      if (!get || !env.misbehave) {
        set_json_error(res, http::status::not_found, route::other, m.span(),
                       m.user(), "no such route (see --misbehave)");
        co_return;
      }
      route_block(m, req, res);
      co_return;
    case route::metrics:
      if (!get) break;
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = env.metrics();
      co_return;
    default:
      set_json_error(res, http::status::not_found, route::other, m.span(),
                     m.user(), "no such route");
      co_return;
  }
  set_json_error(res, http::status::method_not_allowed, route::other, m.span(),
                 m.user(), "method not allowed");
}

}  // namespace demo

#endif  // CTXEXEC_EXAMPLES_SERVER_ROUTES_HPP
