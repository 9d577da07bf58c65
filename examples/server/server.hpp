// examples/server/server.hpp: the demo server. One io_context per event
// loop thread (`--threads`), the acceptor on the first, connections spread
// round-robin; each connection is served by one coroutine on its loop.
//
// Two modes serve the same routes (routes.hpp):
//   * ctxexec (default): each request a connection reads runs through
//     ctxexec::http::serve_request (a task in its own copy of the context, a
//     request scope) and a middleware_stack: `observe` (metrics, errors,
//     traceresponse) around `propagate` (trace context, baggage, user id
//     into context variables) around the router.
//   * --plain: plain Asio, no ctxexec: asio::co_spawn, the same two layers
//     as plain coroutines with the ids passed as arguments, blocking work
//     posted to an asio::thread_pool and back.
//
// Bad input: malformed HTTP gets 400, a header over 8 KiB 431, a body over
// 1 MiB 413, each with `Connection: close`; a header that does not arrive
// within --header-timeout-ms gets the connection closed (slowloris).
// stop() (SIGTERM, SIGINT): stop accepting, close idle connections, finish
// the requests in flight (answered with `Connection: close`), then run()
// returns.

#ifndef CTXEXEC_EXAMPLES_SERVER_SERVER_HPP
#define CTXEXEC_EXAMPLES_SERVER_SERVER_HPP

#include "http_client.hpp"
#include "metrics.hpp"
#include "routes.hpp"
#include "session_pool.hpp"

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/asio/loop_monitor.hpp>
#include <ctxexec/context_var.hpp>
#include <ctxexec/http.hpp>
#include <ctxexec/threads.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace demo {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

/// The request's user id, set by the `propagate` middleware.
inline ctxexec::context_var<std::string> user_id{"user_id", "anonymous"};

struct config {
  std::uint16_t port = 0;
  int threads = 2;
  std::size_t tokens = 40;
  std::size_t db_pool = 40;
  std::string upstream;  // empty: this server itself
  std::chrono::milliseconds header_timeout{5000};
  bool plain = false;
  /// A loop_monitor per event loop, reporting to the log.
  bool monitor = true;
  std::chrono::milliseconds blocked_threshold{100};
  /// Serve GET /block?ms=N, which blocks the loop thread.
  bool misbehave = false;
};

inline constexpr std::size_t header_limit = 8 * 1024;
inline constexpr std::uint64_t body_limit = 1024 * 1024;

/// The ids of a request in --plain mode, passed as arguments.
struct request_ids {
  ctxexec::trace_context span;
  ctxexec::baggage bag;
  std::string user;
};

/// The cleanups of a request in --plain mode: blocking functions run on the
/// thread pool after the response is written (what the request scope does
/// in ctxexec mode).
using plain_cleanups = std::vector<std::function<void()>>;

class server;

/// One event loop thread and what belongs to it.
struct loop {
  /// A connection, listed so that stop() can close it while idle.
  struct connection_entry {
    beast::tcp_stream* stream;
    const beast::flat_buffer* buffer;
    bool idle;
  };

  explicit loop(std::size_t index)
      : index(index), io(1), client(io.get_executor()) {}

  std::size_t index;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{
      io.get_executor()};
  http_client client;
  metrics_shard* shard = nullptr;
  std::list<connection_entry> connections;  // this loop's thread only
  bool stopping = false;                    // this loop's thread only
};

/// The loop of the calling thread (set when each loop thread starts).
inline thread_local loop* current_loop = nullptr;

/// What both modes share: the loop the request runs on.
struct mode_base {
  server& s;

  asio::io_context::executor_type loop_executor() const {
    return current_loop->io.get_executor();
  }
  http_client& client() const { return current_loop->client; }
};

/// ctxexec mode: the ids are read from context variables, wherever the
/// code runs (also on a worker); blocking work goes through
/// run_sync_with_context; a DB session is released by the request scope.
struct context_mode : mode_base {
  const ctxexec::trace_context& span() const {
    return ctxexec::current_trace.get();
  }
  std::string_view user() const { return user_id.get(); }
  const ctxexec::baggage& baggage() const {
    return ctxexec::current_baggage.get();
  }
  template <class F>
  awaitable<void> offload(F f);
  awaitable<int> db_session();
};

/// --plain mode: the ids are arguments; blocking work is a plain post to a
/// thread pool and back.
struct plain_mode : mode_base {
  const request_ids& ids;
  plain_cleanups& cleanups;

  const ctxexec::trace_context& span() const { return ids.span; }
  std::string_view user() const { return ids.user; }
  const ctxexec::baggage& baggage() const { return ids.bag; }
  template <class F>
  awaitable<void> offload(F f);
  awaitable<int> db_session();
};

class server {
 public:
  explicit server(config c)
      : config_(std::move(c)),
        shards_(static_cast<std::size_t>(std::max(config_.threads, 1))),
        sessions_(config_.db_pool),
        limiter_(asio::system_executor(), config_.tokens),
        plain_pool_(config_.plain ? config_.tokens : 1),
        context_mode_{{*this}},
        app_([this](request& req, response& res) {
          return dispatch(context_mode_, env_, route_of(req.target()), req,
                          res);
        }) {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      loops_.push_back(std::make_unique<loop>(i));
      loops_.back()->shard = &shards_[i];
    }
    app_.use([](request& req, response& res,
                stack::next_type next) -> awaitable<void> {
      return observe(req, res, next);
    });
    app_.use([](request& req, response& res,
                stack::next_type next) -> awaitable<void> {
      return propagate(req, res, next);
    });
    sync_options_.limiter = &limiter_;
    sync_options_.pool = &blocking_pool_;
    acceptor_.emplace(loops_[0]->io);
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                                 config_.port);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(tcp::acceptor::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_->local_endpoint().port();
    const std::string self = "http://127.0.0.1:" + std::to_string(port_);
    env_.upstream =
        url::parse(config_.upstream.empty() ? self : config_.upstream);
    env_.metrics = [this] { return render_metrics(); };
    env_.misbehave = config_.misbehave;
    if (config_.monitor) {
      for (auto& l : loops_) {
        monitors_.push_back(std::make_unique<ctxexec::loop_monitor>(
            l->io,
            ctxexec::loop_monitor_options{.blocked_threshold =
                                              config_.blocked_threshold},
            [index = l->index](const ctxexec::handler_report& r) {
              log_report(index, r);
            }));
      }
    }
  }

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const config& settings() const noexcept { return config_; }
  [[nodiscard]] const std::optional<url>& upstream() const noexcept {
    return env_.upstream;
  }

  /// Serves until stop() (SIGTERM or SIGINT) and every request in flight
  /// is answered; then joins the loop threads and the workers.
  void run() {
    asio::signal_set signals(loops_[0]->io, SIGTERM, SIGINT);
    signals.async_wait([this](boost::system::error_code ec, int sig) {
      if (!ec) {
        spdlog::info("signal {}: stopping", sig);
        stop();
      }
    });
    signals_ = &signals;
    asio::co_spawn(loops_[0]->io, accept_loop(), asio::detached);
    std::vector<std::thread> threads;
    for (auto& l : loops_) {
      threads.emplace_back([l = l.get()] {
        on_loop_thread = true;
        current_loop = l;
        l->io.run();
        current_loop = nullptr;
      });
    }
    for (auto& t : threads) t.join();
    for (auto& m : monitors_) m->stop();
    signals_ = nullptr;
    blocking_pool_.shutdown();
    plain_pool_.join();
    spdlog::info("stopped: {} requests served",
                 sum(shards_, [](const metrics_shard& s) {
                   std::uint64_t n = 0;
                   for (const counter& c : s.requests) n += c.get();
                   return n;
                 }));
  }

  /// Stops accepting, closes idle connections, lets the requests in flight
  /// finish. Safe from any thread, more than once.
  void stop() {
    if (stopping_.exchange(true)) return;
    asio::post(loops_[0]->io, [this] {
      boost::system::error_code ignored;
      acceptor_->close(ignored);
      if (signals_ != nullptr) signals_->cancel(ignored);
    });
    for (auto& l : loops_) {
      asio::post(l->io, [l = l.get()] {
        l->stopping = true;
        std::size_t busy = 0;
        for (loop::connection_entry& c : l->connections) {
          boost::system::error_code ec;
          if (c.idle && c.buffer->size() == 0 &&
              c.stream->socket().available(ec) == 0) {
            c.stream->cancel();
          } else {
            ++busy;
          }
        }
        if (busy != 0) {
          spdlog::info(
              "loop {}: finishing {} connections with a request in "
              "flight",
              l->index, busy);
        }
        l->work.reset();
      });
    }
  }

 private:
  using stack = ctxexec::http::middleware_stack<request, response>;

  /// The outer middleware: metrics, a 500 for an exception, traceresponse.
  static awaitable<void> observe(request& req, response& res,
                                 stack::next_type next) {
    const route r = route_of(req.target());
    try {
      co_await next();
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", std::string_view(req.method_string()),
                    std::string_view(req.target()), e.what());
      res = response(http::status::internal_server_error, req.version());
      const ctxexec::trace_context* span = ctxexec::current_trace.try_get();
      set_json_error(res, http::status::internal_server_error, r,
                     span != nullptr ? *span : ctxexec::trace_context::start(),
                     user_id.get(), "internal error");
    }
    // The inner layer set the span: visible here after next() returns.
    ctxexec::http::set_traceresponse(res);
    current_loop->shard->count(r, res.result_int());
  }

  /// The inner middleware: trace context, baggage and user id, read from
  /// the headers into this request's context.
  static awaitable<void> propagate(request& req, response&,
                                   stack::next_type next) {
    const ctxexec::baggage_parse_result bag = ctxexec::http::enter_request(req);
    if (!bag.ok()) spdlog::debug("baggage header dropped");
    (void)user_id.set(user_of(req, bag.value));
    co_await next();
  }

  /// --plain: the same two layers, with the ids as arguments.
  awaitable<void> plain_observe(request& req, response& res,
                                plain_cleanups& cleanups) {
    const route r = route_of(req.target());
    request_ids ids;
    try {
      co_await plain_propagate(req, res, ids, cleanups);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", std::string_view(req.method_string()),
                    std::string_view(req.target()), e.what());
      res = response(http::status::internal_server_error, req.version());
      set_json_error(res, http::status::internal_server_error, r, ids.span,
                     ids.user, "internal error");
    }
    ctxexec::http::set_traceresponse(res, ids.span);
    current_loop->shard->count(r, res.result_int());
  }

  awaitable<void> plain_propagate(request& req, response& res, request_ids& ids,
                                  plain_cleanups& cleanups) {
    ids.span = ctxexec::http::extract_trace_context(req);
    const ctxexec::baggage_parse_result bag =
        ctxexec::http::extract_baggage(req);
    if (!bag.ok()) spdlog::debug("baggage header dropped");
    ids.bag = bag.value;
    ids.user = user_of(req, ids.bag);
    plain_mode m{{*this}, ids, cleanups};
    co_await dispatch(m, env_, route_of(req.target()), req, res);
  }

  awaitable<void> accept_loop() {
    std::size_t next = 0;
    for (;;) {
      loop& target = *loops_[next];
      next = (next + 1) % loops_.size();
      auto [ec, socket] = co_await acceptor_->async_accept(
          target.io, asio::as_tuple(use_awaitable));
      if (ec) {
        if (stopping_ || !acceptor_->is_open()) break;
        spdlog::warn("accept: {}", ec.message());
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      // The connection loop is a plain coroutine in both modes: it holds no
      // request state. In ctxexec mode each request it reads runs in a
      // ctxexec task of its own (serve_request).
      asio::co_spawn(target.io,
                     connection(target, std::move(socket), !config_.plain),
                     asio::detached);
    }
  }

  /// Writes a response, keeping the connection open if `keep` and the
  /// server is not stopping.
  static auto write_response(beast::tcp_stream& stream, response& res,
                             bool keep) {
    res.keep_alive(keep && !current_loop->stopping);
    res.prepare_payload();
    return http::async_write(stream, res, use_awaitable);
  }

  /// Answers a request that could not be read, then the connection closes.
  static awaitable<void> write_error(beast::tcp_stream& stream,
                                     http::status status,
                                     std::string_view error) {
    const auto span = ctxexec::trace_context::start();
    response res(status, 11);
    set_json_error(res, status, route::invalid, span, "anonymous", error);
    ctxexec::http::set_traceresponse(res, span);
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(5));
    co_await http::async_write(stream, res, asio::as_tuple(use_awaitable));
    current_loop->shard->count(route::invalid, res.result_int());
  }

  /// Serves one request in ctxexec mode. Returns false if the response
  /// could not be written.
  awaitable<bool> serve_context(beast::tcp_stream& stream, request& req,
                                bool keep) {
    response res(http::status::ok, req.version());
    try {
      co_await ctxexec::http::serve_request(
          stream.get_executor(), app_, req, res,
          [&stream, keep](response& r) {
            return write_response(stream, r, keep);
          },
          ctxexec::http::serve_options{sync_options_,
                                       &current_loop->shard->scopes});
    } catch (const std::exception& e) {
      spdlog::debug("request not answered: {}", e.what());
      co_return false;
    }
    co_return true;
  }

  /// Serves one request in --plain mode.
  awaitable<bool> serve_plain(beast::tcp_stream& stream, request& req,
                              bool keep) {
    response res(http::status::ok, req.version());
    plain_cleanups cleanups;
    auto& scopes = current_loop->shard->scopes;
    scopes.opened.fetch_add(1, std::memory_order_relaxed);
    co_await plain_observe(req, res, cleanups);
    res.keep_alive(keep && !current_loop->stopping);
    res.prepare_payload();
    auto [ec, n] =
        co_await http::async_write(stream, res, asio::as_tuple(use_awaitable));
    // After the write, as the request scope does: blocking cleanups on the
    // pool, in reverse order.
    if (!cleanups.empty()) {
      const auto loop_ex = current_loop->io.get_executor();
      co_await asio::post(asio::bind_executor(plain_pool_, use_awaitable));
      for (auto it = cleanups.rbegin(); it != cleanups.rend(); ++it) (*it)();
      co_await asio::post(loop_ex, use_awaitable);
      scopes.cleanups_run.fetch_add(cleanups.size(), std::memory_order_relaxed);
    }
    scopes.closed.fetch_add(1, std::memory_order_relaxed);
    co_return !ec;
  }

  awaitable<void> connection(loop& l, tcp::socket socket, bool with_context) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    l.connections.push_back({&stream, &buffer, true});
    const auto entry = std::prev(l.connections.end());
    l.shard->connections.add();
    l.shard->connections_total.add();
    for (;;) {
      if (l.stopping) {
        boost::system::error_code ec;
        if (buffer.size() == 0 && stream.socket().available(ec) == 0) break;
      }
      http::request_parser<http::string_body> parser;
      parser.header_limit(header_limit);
      parser.body_limit(body_limit);
      entry->idle = true;
      stream.expires_after(config_.header_timeout);
      auto [ec, n] = co_await http::async_read_header(
          stream, buffer, parser, asio::as_tuple(use_awaitable));
      entry->idle = false;
      if (!ec && !parser.is_done()) {
        stream.expires_after(std::max(config_.header_timeout,
                                      std::chrono::milliseconds(10'000)));
        std::tie(ec, n) = co_await http::async_read(
            stream, buffer, parser, asio::as_tuple(use_awaitable));
      }
      if (ec) {
        if (ec == beast::error::timeout) {
          l.shard->header_timeouts.add();
          spdlog::info(
              "connection closed: the request did not arrive within "
              "the timeout");
        } else if (ec == http::error::header_limit) {
          co_await write_error(stream,
                               http::status::request_header_fields_too_large,
                               "request header over 8 KiB");
        } else if (ec == http::error::body_limit) {
          co_await write_error(stream, http::status::payload_too_large,
                               "request body over 1 MiB");
        } else if (ec.category() ==
                       http::make_error_code(http::error::bad_target)
                           .category() &&
                   ec != http::error::end_of_stream &&
                   ec != http::error::partial_message) {
          co_await write_error(stream, http::status::bad_request,
                               "malformed HTTP request");
        }
        break;  // end of stream, reset, cancelled by stop(), or answered
      }
      stream.expires_never();
      request req = parser.release();
      const bool keep = req.keep_alive();
      l.shard->in_flight.add();
      bool written = false;
      if (with_context) {
        written = co_await serve_context(stream, req, keep);
      } else {
        written = co_await serve_plain(stream, req, keep);
      }
      l.shard->in_flight.sub();
      if (!written || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
    l.connections.erase(entry);
    l.shard->connections.sub();
  }

  /// A loop monitor's report, logged in the blocked request's own context
  /// (a snapshot): the log line carries its trace id and user id.
  static void log_report(std::size_t loop_index,
                         const ctxexec::handler_report& r) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.duration)
            .count();
    auto log = [&] {
      if (r.what == ctxexec::handler_report::blocked) {
        spdlog::warn(
            "blocked: a handler has run {} ms on loop {} and still runs "
            "(handler {})",
            ms, loop_index, r.handler);
      } else {
        spdlog::warn(
            "returned: the handler that blocked loop {} ran {} ms "
            "(handler {})",
            loop_index, ms, r.handler);
      }
    };
    if (r.context.size() != 0) {
      ctxexec::context ctx = r.context;
      ctx.run(log);
    } else {
      log();
    }
  }

  std::string render_metrics() const {
    std::string out;
    out.reserve(4096);
    render_shards(out, shards_);
    if (!monitors_.empty()) {
      metric_header(out, "ctxexec_loop_lag_seconds", "summary",
                    "Event loop lag: how late a probe posted to the loop "
                    "ran, per loop.");
      std::uint64_t blocked = 0;
      for (std::size_t i = 0; i < monitors_.size(); ++i) {
        const ctxexec::loop_statistics st = monitors_[i]->statistics();
        blocked += st.blocked_handlers;
        const std::string loop = "loop=\"" + std::to_string(i) + "\"";
        const auto quantile = [&](std::string_view q,
                                  std::chrono::nanoseconds v) {
          out += "ctxexec_loop_lag_seconds{" + loop + ",quantile=\"";
          out += q;
          out += "\"} ";
          out += std::to_string(static_cast<double>(v.count()) / 1e9);
          out += '\n';
        };
        quantile("0.5", st.overall.p50);
        quantile("0.9", st.overall.p90);
        quantile("0.99", st.overall.p99);
        quantile("1", st.overall.max);
        metric_value(out, "ctxexec_loop_lag_seconds_count", st.overall.samples,
                     loop);
      }
      metric(out, "ctxexec_blocked_handlers_total", "counter",
             "Handlers the loop monitors saw block a loop thread longer "
             "than the threshold.",
             blocked);
    }
    if (config_.plain) {
      const std::uint64_t busy = plain_busy_.load(std::memory_order_relaxed);
      metric(out, "ctxexec_limiter_borrowed_tokens", "gauge",
             "Blocking calls running (plain: thread pool items).",
             std::min<std::uint64_t>(busy, config_.tokens));
      metric(out, "ctxexec_limiter_total_tokens", "gauge",
             "Blocking calls allowed at once.", config_.tokens);
      metric(out, "ctxexec_limiter_tasks_waiting", "gauge",
             "Blocking calls waiting for a token.",
             busy > config_.tokens ? busy - config_.tokens : 0);
    } else {
      const auto stats = limiter_.statistics();
      metric(out, "ctxexec_limiter_borrowed_tokens", "gauge",
             "Blocking calls running (tokens of the limiter).",
             stats.borrowed_tokens);
      metric(out, "ctxexec_limiter_total_tokens", "gauge",
             "Blocking calls allowed at once.", stats.total_tokens);
      metric(out, "ctxexec_limiter_tasks_waiting", "gauge",
             "Blocking calls waiting for a token.", stats.tasks_waiting);
      const auto pool = blocking_pool_.statistics();
      metric(out, "ctxexec_worker_threads", "gauge",
             "Threads of the blocking pool.", pool.threads);
    }
    const auto db = sessions_.statistics();
    metric(out, "ctxexec_db_pool_size", "gauge",
           "Fake DB sessions in the pool.", db.size);
    metric(out, "ctxexec_db_sessions_in_use", "gauge",
           "Fake DB sessions held by requests.", db.in_use);
    metric(out, "ctxexec_db_session_waiting", "gauge",
           "Requests waiting for a DB session now.", db.waiting);
    metric(out, "ctxexec_db_session_waits_total", "counter",
           "Requests that had to wait for a DB session.", db.waits_total);
    return out;
  }

  friend struct context_mode;
  friend struct plain_mode;

  config config_;
  std::vector<metrics_shard> shards_;
  std::vector<std::unique_ptr<loop>> loops_;
  session_pool sessions_;
  ctxexec::capacity_limiter limiter_;
  ctxexec::blocking_pool blocking_pool_;
  ctxexec::run_sync_options sync_options_;
  asio::thread_pool plain_pool_;
  std::atomic<std::uint64_t> plain_busy_{0};
  context_mode context_mode_;  // stateless: the server, the current loop
  stack app_;
  route_env env_;
  std::optional<tcp::acceptor> acceptor_;
  std::vector<std::unique_ptr<ctxexec::loop_monitor>> monitors_;
  asio::signal_set* signals_ = nullptr;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
};

template <class F>
awaitable<void> context_mode::offload(F f) {
  co_await ctxexec::run_sync_with_context(s.sync_options_, std::move(f),
                                          use_awaitable);
}

inline awaitable<int> context_mode::db_session() {
  const int session = co_await s.sessions_.async_acquire(use_awaitable);
  // FastAPI's `Depends(get_db)` with yield: closed when the request ends,
  // on a worker (a sync driver's close blocks).
  ctxexec::http::request_scope::current().defer_sync(
      [pool = &s.sessions_, session] { pool->release(session); });
  co_return session;
}

template <class F>
awaitable<void> plain_mode::offload(F f) {
  const auto loop_ex = current_loop->io.get_executor();
  s.plain_busy_.fetch_add(1, std::memory_order_relaxed);
  co_await asio::post(asio::bind_executor(s.plain_pool_, use_awaitable));
  std::exception_ptr error;
  try {
    f();
  } catch (...) {
    error = std::current_exception();
  }
  s.plain_busy_.fetch_sub(1, std::memory_order_relaxed);
  co_await asio::post(loop_ex, use_awaitable);
  if (error) std::rethrow_exception(error);
}

inline awaitable<int> plain_mode::db_session() {
  const int session = co_await s.sessions_.async_acquire(use_awaitable);
  cleanups.push_back(
      [pool = &s.sessions_, session] { pool->release(session); });
  current_loop->shard->scopes.cleanups_registered.fetch_add(
      1, std::memory_order_relaxed);
  co_return session;
}

}  // namespace demo

#endif  // CTXEXEC_EXAMPLES_SERVER_SERVER_HPP
