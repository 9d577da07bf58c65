// examples/server/main.cpp: the ctxexec demo server (CMake target
// ctxexec_demo). A Boost.Beast HTTP/1.1 server on coroutines that carries
// the trace context, the baggage and the user id of each request through
// middleware, timers, a thread pool and outgoing calls; --plain serves the
// same routes with plain Asio, to measure what ctxexec costs. See
// README.md beside this file for the routes, the flags and the metrics.
//
// Its first line on stdout is `listening on http://127.0.0.1:PORT`; logs go
// to stderr. SIGTERM: stop accepting, finish the requests in flight, exit 0.

#include "server.hpp"

#include <ctxexec/spdlog/context_flag.hpp>

#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/flags/usage.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

ABSL_FLAG(std::uint16_t, port, 0, "port on 127.0.0.1 (0: any free port)");
ABSL_FLAG(int, threads, 2, "event loop (io) threads");
ABSL_FLAG(std::uint32_t, tokens, 40,
          "blocking calls at once (the thread limiter's tokens)");
ABSL_FLAG(std::uint32_t, db_pool, 40, "fake DB sessions in the pool");
ABSL_FLAG(std::string, upstream, "",
          "base URL that /chain calls (default: this server itself)");
ABSL_FLAG(std::int64_t, header_timeout_ms, 5000,
          "close a connection whose request header takes longer (ms)");
ABSL_FLAG(bool, plain, false,
          "serve the same routes with plain Asio, without ctxexec");
ABSL_FLAG(std::string, log_level, "info",
          "spdlog level: trace, debug, info, warn, error, off");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "ctxexec demo server: GET /async?ms=N, /sync?ms=N, /chain?hops=K, "
      "/baggage/parse, /metrics; POST /test");
  // The flags are spelled with dashes (--db-pool, --header-timeout-ms);
  // Abseil names them with underscores: accept both.
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const std::size_t end = std::min(a.find('='), a.size());
    for (std::size_t j = 2; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());

  // Logs on stderr, each line with the trace and user id of the request
  // it was written for (read from the context of the thread that logs).
  auto logger = std::make_shared<spdlog::logger>(
      "demo", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(ctxexec::logging::make_formatter(
      "%Y-%m-%dT%H:%M:%S.%e %l [%*] %v",
      {ctxexec::logging::field::trace_id(),
       ctxexec::logging::field::of("user_id", demo::user_id)}));
  logger->set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);

  demo::config c;
  c.port = absl::GetFlag(FLAGS_port);
  c.threads = std::max(1, absl::GetFlag(FLAGS_threads));
  c.tokens = absl::GetFlag(FLAGS_tokens);
  c.db_pool = std::max<std::uint32_t>(1, absl::GetFlag(FLAGS_db_pool));
  c.upstream = absl::GetFlag(FLAGS_upstream);
  c.header_timeout = std::chrono::milliseconds(
      std::max<std::int64_t>(1, absl::GetFlag(FLAGS_header_timeout_ms)));
  c.plain = absl::GetFlag(FLAGS_plain);
  if (!c.upstream.empty() && !demo::url::parse(c.upstream)) {
    std::cerr << "--upstream must be an http://host[:port] URL\n";
    return 2;
  }
  try {
    demo::server s(c);
    std::cout << "listening on http://127.0.0.1:" << s.port() << std::endl;
    spdlog::info(
        "mode={} threads={} tokens={} db_pool={} upstream={} "
        "header_timeout_ms={}",
        c.plain ? "plain" : "ctxexec", c.threads, c.tokens, c.db_pool,
        c.upstream.empty() ? "self" : c.upstream, c.header_timeout.count());
    s.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}
