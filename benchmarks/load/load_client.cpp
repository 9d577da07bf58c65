// load_client.cpp: ctxexec_load, the load client of scripts/demo.sh.
//
// Drives a server of the demo contract (issue 10: ctxexec_demo, its --plain
// mode, or benchmarks/peers/fastapi_app.py) over N keep-alive connections on
// loopback, and checks every response (load_check.hpp): status 200, a
// traceresponse of the request's trace, and a JSON body carrying the
// request's own trace id and user id, at every level of /chain's upstream.
// Each request sends its own unique traceparent and x-user-id.
//
// Every run is bounded in time AND count: no request starts after
// --duration seconds or after --requests requests, each request and connect
// gives up after --timeout-ms, and the client then exits by itself.
// Connections are opened before the clock starts. Latencies and req/s count
// the requests started after --warmup seconds; the checks count them all.
//
// Prints one JSON object (stdout, or --output): per route the requests,
// errors (transport, status, bad JSON), mismatches by kind, the match rate,
// req/s and p50/p90/p99/max latency in ms, and the same over all routes.
//
//   ctxexec_load --url=http://127.0.0.1:8080 --connections=200
//                --duration=5 --mix='/async?ms=0@3,/chain?hops=1@1'
//
// --mix lists targets with optional weights (target@weight). Each
// connection takes the targets in turn by weight; with --pin, connection i
// keeps one target, the connections shared out by weight (a load of 40
// /sync?ms=200 beside 10 /async?ms=0: --connections=50 --pin
// --mix='/sync?ms=200@40,/async?ms=0@10').
//
// --rate paces the requests (an open loop: latency at a given load, not at
// saturation); without it each connection sends its next request when the
// last is answered. One io_context thread by default (--threads): the
// client shares the machine with the server it measures. Only loopback
// addresses are accepted.

#include "load_check.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/json/src.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using ctxexec_load::check_errc;
using ctxexec_load::check_errc_count;

constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// --- Options

struct options {
  std::string url;
  int connections = 50;
  double duration = 5;
  double warmup = 0;
  std::uint64_t requests = 5'000'000;
  std::string mix = "/async?ms=0";
  bool pin = false;
  int threads = 1;
  double rate = 0;  // requests per second in all; 0: each connection
                    // sends its next request as soon as it has an answer
  int timeout_ms = 5000;
  std::string output;
  std::string label;
};

struct flag {
  std::string_view name;
  std::string_view help;
  std::function<bool(std::string_view)> set;  // false: invalid value
  bool is_switch = false;
};

template <class T>
std::function<bool(std::string_view)> number_into(T& target, T min, T max) {
  return [&target, min, max](std::string_view text) {
    T value{};
    auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return false;
    if (value < min || value > max) return false;
    target = value;
    return true;
  };
}

std::vector<flag> make_flags(options& o) {
  auto text_into = [](std::string& target) {
    return [&target](std::string_view text) {
      target = text;
      return true;
    };
  };
  return {
      {"url", "server base URL, loopback only: http://127.0.0.1:PORT",
       text_into(o.url)},
      {"connections", "keep-alive connections [50]",
       number_into(o.connections, 1, 20000)},
      {"duration", "seconds of load; no request starts after it [5]",
       number_into(o.duration, 0.0, 3600.0)},
      {"warmup", "first seconds not counted in latency and req/s [0]",
       number_into(o.warmup, 0.0, 3600.0)},
      {"requests", "at most this many requests in all [5000000]",
       number_into<std::uint64_t>(o.requests, 1, 1'000'000'000)},
      {"mix", "targets with weights: /a?ms=0@3,/chain?hops=1@1 [/async?ms=0]",
       text_into(o.mix)},
      {"pin", "each connection keeps one target of the mix",
       [&o](std::string_view text) {
         o.pin = text.empty() || text == "true" || text == "1";
         return o.pin || text == "false" || text == "0";
       },
       true},
      {"threads", "io_context threads [1]", number_into(o.threads, 1, 64)},
      {"rate",
       "requests/s in all, paced per connection; 0: as fast as answered [0]",
       number_into(o.rate, 0.0, 10'000'000.0)},
      {"timeout-ms", "per request and per connect [5000]",
       number_into(o.timeout_ms, 1, 600'000)},
      {"output", "write the JSON here instead of stdout", text_into(o.output)},
      {"label", "a name echoed in the JSON", text_into(o.label)},
  };
}

void usage(const std::vector<flag>& flags) {
  std::cerr << "usage: ctxexec_load --url=http://127.0.0.1:PORT [flags]\n";
  for (const auto& f : flags)
    std::cerr << "  --" << f.name << (f.is_switch ? "" : "=V") << "  " << f.help
              << "\n";
}

// Parses --name=value, --name value and --switch; accepts '_' for '-'.
bool parse_flags(int argc, char** argv, options& o) {
  auto flags = make_flags(o);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(flags);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) {
      std::cerr << "ctxexec_load: unexpected argument '" << arg << "'\n";
      return false;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    std::replace(name.begin(), name.end(), '_', '-');
    auto f = std::find_if(flags.begin(), flags.end(),
                          [&](const flag& x) { return x.name == name; });
    if (f == flags.end()) {
      std::cerr << "ctxexec_load: unknown flag --" << name << "\n";
      return false;
    }
    if (!has_value && !f->is_switch) {
      if (i + 1 == argc) {
        std::cerr << "ctxexec_load: --" << name << " needs a value\n";
        return false;
      }
      value = argv[++i];
    }
    if (!f->set(value)) {
      std::cerr << "ctxexec_load: invalid value for --" << name << ": '"
                << value << "'\n";
      return false;
    }
  }
  if (o.url.empty()) {
    std::cerr << "ctxexec_load: --url is required\n";
    return false;
  }
  return true;
}

// --- Routes

struct route {
  std::string target;  // as sent, and the key in the results
  int upstream_depth = 0;
};

// "target@weight,..." into routes and a schedule of route indexes: blockwise
// for --pin (connection i takes schedule[i % size]), else interleaved by
// smooth weighted round robin.
bool parse_mix(std::string_view mix, bool pin, std::vector<route>& routes,
               std::vector<std::size_t>& schedule) {
  std::vector<int> weights;
  while (!mix.empty()) {
    auto comma = mix.find(',');
    std::string_view item = mix.substr(0, comma);
    mix = comma == std::string_view::npos ? "" : mix.substr(comma + 1);
    int weight = 1;
    if (auto at = item.rfind('@'); at != std::string_view::npos) {
      auto w = item.substr(at + 1);
      auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
      if (ec != std::errc{} || end != w.data() + w.size() || weight < 1 ||
          weight > 10000)
        return false;
      item = item.substr(0, at);
    }
    if (item.empty() || item[0] != '/' ||
        item.find_first_of(" \r\n") != std::string_view::npos)
      return false;
    route r{std::string(item), 0};
    if (item.rfind("/chain", 0) == 0) {
      if (auto h = item.find("hops="); h != std::string_view::npos) {
        auto digits = item.substr(h + 5);
        std::from_chars(digits.data(), digits.data() + digits.size(),
                        r.upstream_depth);
        r.upstream_depth = std::max(r.upstream_depth, 0);
      }
    }
    routes.push_back(std::move(r));
    weights.push_back(weight);
  }
  if (routes.empty()) return false;
  int total = 0;
  for (int w : weights) total += w;
  if (pin) {
    for (std::size_t r = 0; r < routes.size(); ++r)
      schedule.insert(schedule.end(), weights[r], r);
    return true;
  }
  std::vector<int> current(routes.size(), 0);
  for (int n = 0; n < total; ++n) {
    std::size_t best = 0;
    for (std::size_t r = 0; r < routes.size(); ++r) {
      current[r] += weights[r];
      if (current[r] > current[best]) best = r;
    }
    current[best] -= total;
    schedule.push_back(best);
  }
  return true;
}

// --- Per-connection results

struct route_stats {
  std::uint64_t transport_errors = 0;
  std::array<std::uint64_t, check_errc_count> verdicts{};
  std::vector<std::uint64_t> latency_ns;  // requests started after warmup

  std::uint64_t responses() const {
    std::uint64_t n = 0;
    for (auto v : verdicts) n += v;
    return n;
  }
  void merge(const route_stats& other) {
    transport_errors += other.transport_errors;
    for (std::size_t i = 0; i < check_errc_count; ++i)
      verdicts[i] += other.verdicts[i];
    latency_ns.insert(latency_ns.end(), other.latency_ns.begin(),
                      other.latency_ns.end());
  }
};

struct connection_result {
  std::vector<route_stats> routes;
  std::uint64_t connects = 0;
  std::uint64_t connect_errors = 0;
  steady::time_point last_done{};
  std::vector<std::string> samples;  // the first failures, for diagnosis
};

struct run_state {
  options opt;
  std::vector<route> routes;
  std::vector<std::size_t> schedule;
  tcp::endpoint endpoint;
  std::string host_header;
  std::uint64_t nonce = 0;  // this run's half of every trace id
  std::atomic<std::uint64_t> issued{0};
  steady::time_point start{};
  steady::time_point measure_from{};
  steady::time_point end{};
};

void add_sample(connection_result& r, std::string text) {
  if (r.samples.size() < 3) r.samples.push_back(std::move(text));
}

void put_hex(char* out, std::uint64_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, value >>= 4) out[i] = digits[value & 15];
}

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

asio::awaitable<bool> connect(run_state& s, beast::tcp_stream& stream,
                              connection_result& r) {
  ++r.connects;
  stream.expires_after(std::chrono::milliseconds(s.opt.timeout_ms));
  auto [ec] = co_await stream.async_connect(s.endpoint, as_tuple_awaitable);
  if (ec) {
    ++r.connect_errors;
    add_sample(r, "connect: " + ec.message());
    beast::error_code ignored;
    stream.socket().close(ignored);
    co_return false;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  co_return true;
}

void close(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.socket().close(ignored);
}

// One connection's request loop, until the deadline or the request budget.
asio::awaitable<void> drive(run_state& s, std::size_t index,
                            beast::tcp_stream& stream, connection_result& r) {
  beast::flat_buffer buffer;
  std::string request;
  std::uint64_t turn = index;
  const std::size_t pinned = s.schedule[index % s.schedule.size()];
  char trace_id[32];
  put_hex(trace_id, s.nonce);
  char span_id[16];
  char user_id[48];
  const std::string_view trace_view(trace_id, sizeof trace_id);
  // --rate: this connection's requests are due `interval` apart, staggered
  // across connections. A late one starts at once, and its latency counts
  // from when it was due: a stall delays every request due during it, not
  // only the one in flight (no coordinated omission).
  std::optional<asio::steady_timer> pace;
  steady::duration interval{};
  steady::time_point next_start = s.start;
  if (s.opt.rate > 0) {
    pace.emplace(co_await asio::this_coro::executor);
    interval = std::chrono::duration_cast<steady::duration>(
        std::chrono::duration<double>(s.opt.connections / s.opt.rate));
    next_start += interval * index / s.opt.connections;
  }
  while (steady::now() < s.end) {
    steady::time_point due{};
    if (pace) {
      if (next_start > steady::now()) {
        pace->expires_at(next_start);
        co_await pace->async_wait(as_tuple_awaitable);
        if (steady::now() >= s.end) break;
      }
      due = next_start;
      next_start += interval;
    }
    const std::uint64_t n = s.issued.fetch_add(1, std::memory_order_relaxed);
    if (n >= s.opt.requests) break;
    if (!stream.socket().is_open()) {
      buffer.clear();
      if (!co_await connect(s, stream, r)) {
        asio::steady_timer pause(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(20));
        co_await pause.async_wait(as_tuple_awaitable);
        continue;
      }
    }
    const std::size_t ri =
        s.opt.pin ? pinned : s.schedule[turn++ % s.schedule.size()];
    const route& rt = s.routes[ri];
    route_stats& stats = r.routes[ri];

    // Unique ids: the trace id is this run's nonce then the request number.
    put_hex(trace_id + 16, n);
    std::uint64_t span = mix64(s.nonce ^ n);
    put_hex(span_id, span ? span : 1);
    int user_len = std::snprintf(user_id, sizeof user_id, "u%08x-%llu",
                                 static_cast<unsigned>(s.nonce),
                                 static_cast<unsigned long long>(n));
    const std::string_view user_view(user_id, user_len);

    request.clear();
    request.append("GET ").append(rt.target).append(" HTTP/1.1\r\nHost: ");
    request.append(s.host_header).append("\r\ntraceparent: 00-");
    request.append(trace_view).append("-").append(span_id, sizeof span_id);
    request.append("-01\r\nx-user-id: ").append(user_view).append("\r\n\r\n");

    const auto t0 = pace ? due : steady::now();
    stream.expires_after(std::chrono::milliseconds(s.opt.timeout_ms));
    auto [wec, written] = co_await asio::async_write(
        stream, asio::buffer(request), as_tuple_awaitable);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    beast::error_code rec = wec;
    if (!wec) {
      auto [ec, read] =
          co_await http::async_read(stream, buffer, parser, as_tuple_awaitable);
      rec = ec;
    }
    const auto t1 = steady::now();
    if (rec) {
      ++stats.transport_errors;
      add_sample(r, rt.target + ": " + rec.message());
      close(stream);
      continue;
    }
    const auto& response = parser.get();
    const check_errc verdict = ctxexec_load::check_response(
        {trace_view, user_view, rt.upstream_depth}, response.result_int(),
        response["traceresponse"], response.body());
    ++stats.verdicts[static_cast<std::size_t>(verdict)];
    if (verdict != check_errc::ok)
      add_sample(r, rt.target + ": " +
                        std::string(ctxexec_load::to_string(verdict)) + ": " +
                        std::to_string(response.result_int()) + " " +
                        response.body().substr(0, 300));
    if (t0 >= s.measure_from)
      stats.latency_ns.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
              .count()));
    r.last_done = t1;
    if (!response.keep_alive()) close(stream);
  }
  close(stream);
}

// --- Results

double percentile_ms(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1] / 1e6;
}

json::object summarize(const std::string& name, route_stats& stats,
                       double window_s) {
  std::sort(stats.latency_ns.begin(), stats.latency_ns.end());
  const auto& v = stats.verdicts;
  auto count = [&](check_errc e) { return v[static_cast<std::size_t>(e)]; };
  const std::uint64_t responses = stats.responses();
  const std::uint64_t matched = count(check_errc::ok);
  std::uint64_t errors = stats.transport_errors;
  json::object verdicts;
  for (std::size_t i = 1; i < check_errc_count; ++i) {
    auto e = static_cast<check_errc>(i);
    if (ctxexec_load::is_error(e)) errors += v[i];
    verdicts[ctxexec_load::to_string(e)] = v[i];
  }
  double sum = 0;
  for (auto ns : stats.latency_ns) sum += ns;
  const auto measured = stats.latency_ns.size();
  json::object o;
  o["route"] = name;
  o["requests"] = responses + stats.transport_errors;
  o["responses"] = responses;
  o["errors"] = errors;
  o["transport_errors"] = stats.transport_errors;
  o["mismatches"] = responses - matched - (errors - stats.transport_errors);
  o["matched"] = matched;
  o["match_rate"] = responses ? double(matched) / responses : 0.0;
  o["verdicts"] = std::move(verdicts);
  o["measured"] = measured;
  o["rps"] = window_s > 0 ? measured / window_s : 0.0;
  o["latency_ms"] =
      json::object{{"p50", percentile_ms(stats.latency_ns, 50)},
                   {"p90", percentile_ms(stats.latency_ns, 90)},
                   {"p99", percentile_ms(stats.latency_ns, 99)},
                   {"max", percentile_ms(stats.latency_ns, 100)},
                   {"mean", measured ? sum / measured / 1e6 : 0.0}};
  return o;
}

std::optional<tcp::endpoint> loopback_endpoint(const std::string& url,
                                               std::string& host_header) {
  std::string_view rest = url;
  if (rest.rfind("http://", 0) != 0) return std::nullopt;
  rest.remove_prefix(7);
  rest = rest.substr(0, rest.find('/'));
  host_header = rest;
  std::string host, port = "80";
  if (!rest.empty() && rest[0] == '[') {  // [::1]:port
    auto close_bracket = rest.find(']');
    if (close_bracket == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close_bracket - 1);
    if (rest.size() > close_bracket + 2) port = rest.substr(close_bracket + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    host = rest;
  }
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  unsigned short port_number = 0;
  auto [end, pec] =
      std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (ec || pec != std::errc{} || end != port.data() + port.size() ||
      port_number == 0 || !address.is_loopback())
    return std::nullopt;
  return tcp::endpoint(address, port_number);
}

void run_io(asio::io_context& io, int threads) {
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  auto s = std::make_unique<run_state>();
  if (!parse_flags(argc, argv, s->opt)) return 2;
  const options& opt = s->opt;
  auto endpoint = loopback_endpoint(opt.url, s->host_header);
  if (!endpoint) {
    std::cerr << "ctxexec_load: --url must be http://HOST:PORT with a "
                 "loopback HOST, not '"
              << opt.url << "'\n";
    return 2;
  }
  s->endpoint = *endpoint;
  if (!parse_mix(opt.mix, opt.pin, s->routes, s->schedule)) {
    std::cerr << "ctxexec_load: invalid --mix '" << opt.mix << "'\n";
    return 2;
  }
  std::random_device seed;
  s->nonce = (std::uint64_t{seed()} << 32 | seed()) | 1;

  asio::io_context io(opt.threads);
  std::vector<std::unique_ptr<beast::tcp_stream>> streams;
  std::vector<connection_result> results(opt.connections);
  for (int i = 0; i < opt.connections; ++i) {
    // A strand each: with --threads > 1, a stream's timeout and its I/O
    // never run at once.
    streams.push_back(
        std::make_unique<beast::tcp_stream>(asio::make_strand(io)));
    results[i].routes.resize(s->routes.size());
  }

  // Connect everything first; the clock starts when all are open (or have
  // failed: the request loop retries those within the time bound).
  for (int i = 0; i < opt.connections; ++i)
    asio::co_spawn(streams[i]->get_executor(),
                   connect(*s, *streams[i], results[i]), asio::detached);
  run_io(io, opt.threads);
  io.restart();

  const auto start = steady::now();
  s->start = start;
  s->measure_from = start + std::chrono::duration_cast<steady::duration>(
                                std::chrono::duration<double>(opt.warmup));
  s->end = start + std::chrono::duration_cast<steady::duration>(
                       std::chrono::duration<double>(opt.duration));
  for (int i = 0; i < opt.connections; ++i)
    asio::co_spawn(streams[i]->get_executor(),
                   drive(*s, i, *streams[i], results[i]), asio::detached);
  run_io(io, opt.threads);

  // Merge the connections' results.
  std::vector<route_stats> per_route(s->routes.size());
  route_stats all;
  std::uint64_t connects = 0, connect_errors = 0;
  steady::time_point last = s->measure_from;
  json::array samples;
  for (auto& r : results) {
    for (std::size_t i = 0; i < per_route.size(); ++i) {
      per_route[i].merge(r.routes[i]);
      all.merge(r.routes[i]);
    }
    connects += r.connects;
    connect_errors += r.connect_errors;
    last = std::max(last, r.last_done);
    for (auto& text : r.samples)
      if (samples.size() < 10) samples.emplace_back(text);
  }
  const double window =
      std::chrono::duration<double>(last - s->measure_from).count();

  json::object out;
  out["tool"] = "ctxexec_load";
  out["label"] = opt.label;
  out["url"] = opt.url;
  out["connections"] = opt.connections;
  out["threads"] = opt.threads;
  out["duration_s"] = opt.duration;
  out["warmup_s"] = opt.warmup;
  out["max_requests"] = opt.requests;
  out["mix"] = opt.mix;
  out["pinned"] = opt.pin;
  out["rate"] = opt.rate;
  out["window_s"] = window;
  out["connects"] = connects;
  out["connect_errors"] = connect_errors;
  json::array routes;
  for (std::size_t i = 0; i < per_route.size(); ++i)
    routes.push_back(summarize(s->routes[i].target, per_route[i], window));
  out["routes"] = std::move(routes);
  out["total"] = summarize("all", all, window);
  out["samples"] = std::move(samples);

  const std::string text = json::serialize(out) + "\n";
  if (opt.output.empty()) {
    std::cout << text << std::flush;
  } else {
    std::ofstream file(opt.output);
    file << text;
    if (!file) {
      std::cerr << "ctxexec_load: cannot write " << opt.output << "\n";
      return 1;
    }
  }
  return 0;
}
