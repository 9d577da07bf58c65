// examples/server/metrics.hpp: the demo's counters, one shard per event
// loop thread (each written by its own loop only, read by /metrics from
// any), and their Prometheus text.

#ifndef CTXEXEC_EXAMPLES_SERVER_METRICS_HPP
#define CTXEXEC_EXAMPLES_SERVER_METRICS_HPP

#include <ctxexec/http/request_scope.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace demo {

/// The routes, as counted and as written in JSON's `route`.
enum class route : std::uint8_t {
  async_,
  sync_,
  chain,
  test,
  baggage_parse,
  metrics,
  block,    // --misbehave only
  other,    // no such route, or the wrong method
  invalid,  // a request that could not be read (400, 408, 413, 431)
  count
};

inline constexpr std::array<std::string_view,
                            static_cast<std::size_t>(route::count)>
    route_names{"/async",   "/sync",  "/chain", "/test",  "/baggage/parse",
                "/metrics", "/block", "other",  "invalid"};

inline std::string_view name_of(route r) {
  return route_names[static_cast<std::size_t>(r)];
}

/// The route of a request target (its path, without the query).
inline route route_of(std::string_view target) {
  target = target.substr(0, target.find('?'));
  for (std::size_t i = 0; i < static_cast<std::size_t>(route::other); ++i) {
    if (target == route_names[i]) return static_cast<route>(i);
  }
  return route::other;
}

/// A counter with one writer thread: an increment is a plain load and store
/// (no locked instruction); readers on other threads see a recent value.
class counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return v_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// The counters of one event loop thread.
struct alignas(64) metrics_shard {
  std::array<counter, static_cast<std::size_t>(route::count)> requests;
  std::array<counter, static_cast<std::size_t>(route::count)> errors;
  counter in_flight;          // requests read and not answered yet
  counter connections;        // open now
  counter connections_total;  // accepted
  counter header_timeouts;    // closed at the header timeout
  ctxexec::http::request_scope_counters scopes;

  void count(route r, unsigned status) noexcept {
    requests[static_cast<std::size_t>(r)].add();
    if (status >= 400) errors[static_cast<std::size_t>(r)].add();
  }
};

/// Prometheus text format helpers.
inline void metric_header(std::string& out, std::string_view name,
                          std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

inline void metric_value(std::string& out, std::string_view name,
                         std::uint64_t v, std::string_view labels = {}) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

inline void metric(std::string& out, std::string_view name,
                   std::string_view type, std::string_view help,
                   std::uint64_t v) {
  metric_header(out, name, type, help);
  metric_value(out, name, v);
}

/// Sums `field` over the shards.
template <class F>
std::uint64_t sum(const std::vector<metrics_shard>& shards, F field) {
  std::uint64_t total = 0;
  for (const metrics_shard& s : shards) total += field(s);
  return total;
}

/// The per-route and per-loop part of /metrics.
inline void render_shards(std::string& out,
                          const std::vector<metrics_shard>& shards) {
  const auto per_route = [&](std::string_view name, std::string_view help,
                             auto field) {
    metric_header(out, name, "counter", help);
    for (std::size_t r = 0; r < static_cast<std::size_t>(route::count); ++r) {
      std::string label = "route=\"";
      label += route_names[r];
      label += '"';
      metric_value(
          out, name,
          sum(shards,
              [&](const metrics_shard& s) { return field(s)[r].get(); }),
          label);
    }
  };
  per_route(
      "ctxexec_requests_total", "Requests answered, per route.",
      [](const metrics_shard& s) -> const auto& { return s.requests; });
  per_route(
      "ctxexec_errors_total",
      "Responses with a status of 400 or more, per route.",
      [](const metrics_shard& s) -> const auto& { return s.errors; });
  metric(out, "ctxexec_requests_in_flight", "gauge",
         "Requests read and not answered yet (this one included).",
         sum(shards, [](const metrics_shard& s) { return s.in_flight.get(); }));
  metric(
      out, "ctxexec_connections_open", "gauge", "Open client connections.",
      sum(shards, [](const metrics_shard& s) { return s.connections.get(); }));
  metric(out, "ctxexec_connections_total", "counter",
         "Client connections accepted.",
         sum(shards,
             [](const metrics_shard& s) { return s.connections_total.get(); }));
  metric(out, "ctxexec_header_timeouts_total", "counter",
         "Connections closed because a request's header did not arrive in "
         "time (slowloris).",
         sum(shards,
             [](const metrics_shard& s) { return s.header_timeouts.get(); }));
  const auto scopes = [&](auto field) {
    return sum(shards,
               [&](const metrics_shard& s) { return field(s.scopes).load(); });
  };
  const std::uint64_t opened =
      scopes([](auto& c) -> auto& { return c.opened; });
  const std::uint64_t closed =
      scopes([](auto& c) -> auto& { return c.closed; });
  metric(out, "ctxexec_request_scopes_opened_total", "counter",
         "Request scopes opened (one per request served).", opened);
  metric(out, "ctxexec_request_scopes_closed_total", "counter",
         "Request scopes closed: every cleanup of the request ran.", closed);
  metric(out, "ctxexec_request_scopes_open", "gauge",
         "Request scopes open now.", opened - closed);
  metric(out, "ctxexec_request_scope_cleanups_registered_total", "counter",
         "Cleanups registered in request scopes.",
         scopes([](auto& c) -> auto& { return c.cleanups_registered; }));
  metric(out, "ctxexec_request_scope_cleanups_run_total", "counter",
         "Cleanups of request scopes that ran.",
         scopes([](auto& c) -> auto& { return c.cleanups_run; }));
  metric(out, "ctxexec_request_scope_cleanup_errors_total", "counter",
         "Cleanups that threw.",
         scopes([](auto& c) -> auto& { return c.cleanup_errors; }));
}

}  // namespace demo

#endif  // CTXEXEC_EXAMPLES_SERVER_METRICS_HPP
