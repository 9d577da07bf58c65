// run_sync_benchmark.cpp: Google Benchmark measurements of
// ctxexec::run_sync_with_context, each beside its plain-Asio baseline in
// this binary.
//
//   BM_RoundTripBaseline   co_await post(bind_executor(thread_pool)) to a
//                          pool thread, call fn there, co_await post back to
//                          the io_context
//   BM_RoundTrip           co_await run_sync_with_context(fn): default
//                          limiter (40 tokens) and default blocking pool
//   BM_RoundTripWarm       the same on a blocking_pool whose workers poll
//                          for 200 us before sleeping (the warm path)
//   BM_Throughput[Baseline]  1000 concurrent callers, 40 tokens (baseline:
//                          a 40-thread asio::thread_pool), one call each per
//                          iteration; items_per_second is calls per second
//   BM_ThroughputWarm      the same, the default pool polling for 200 us
//
// fn is trivial (returns its argument + 1), so the figures are the cost of
// the hop: thread wake-ups dominate. The coroutine runs the timed loop
// itself (one call per iteration); the io_context runs on the benchmark
// thread, the pools on their own threads. A wrong result turns the run
// into an error. The CPython peer (peers/to_thread_peer.py) times
// asyncio.to_thread the same ways; scripts/bench.sh prints the comparison.

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/threads/run_sync.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace {

ctxexec::context_var<int>& bench_var() {
  static auto* var = new ctxexec::context_var<int>("run_sync_bench_var");
  return *var;
}

/// The blocking function: trivial, and opaque to the optimiser.
int work(int x) {
  benchmark::DoNotOptimize(x);
  return x + 1;
}

void run_io(benchmark::State& state, asio::io_context& io) {
  try {
    io.run();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// ---------------------------------------------------------------------------
// Round trip, one caller.

void BM_RoundTripBaseline(benchmark::State& state) {
  asio::io_context io(1);
  asio::thread_pool pool(2);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto io_ex = co_await asio::this_coro::executor;
        std::int64_t sum = 0;
        int x = 0;
        for (auto _ : state) {
          co_await asio::post(asio::bind_executor(pool, use_awaitable));
          x = work(x);  // on a pool thread
          co_await asio::post(io_ex, use_awaitable);
          sum += 1;
        }
        if (x != sum) state.SkipWithError("wrong result");
      },
      asio::detached);
  run_io(state, io);
  pool.join();
  state.SetItemsProcessed(state.iterations());
}

template <bool kWarm>
void round_trip(benchmark::State& state) {
  asio::io_context io(1);
  ctxexec::blocking_pool warm_pool({.spin = std::chrono::microseconds(200)});
  ctxexec::run_sync_options options;
  if (kWarm) options.pool = &warm_pool;
  auto guard = bench_var().scoped_set(1);
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        std::int64_t sum = 0;
        int x = 0;
        for (auto _ : state) {
          x = co_await ctxexec::run_sync_with_context(
              options, [x] { return work(x) * bench_var().get(); },
              use_awaitable);
          sum += 1;
        }
        if (x != sum) state.SkipWithError("wrong result");
      },
      asio::detached);
  run_io(state, io);
  state.SetItemsProcessed(state.iterations());
}

void BM_RoundTrip(benchmark::State& state) { round_trip<false>(state); }
void BM_RoundTripWarm(benchmark::State& state) { round_trip<true>(state); }

// ---------------------------------------------------------------------------
// Throughput: 1000 concurrent callers, 40 tokens.

constexpr int kCallers = 1000;
constexpr std::size_t kTokens = 40;

void BM_ThroughputBaseline(benchmark::State& state) {
  asio::io_context io(1);
  asio::thread_pool pool(kTokens);
  std::int64_t done = 0;
  for (auto _ : state) {
    for (int i = 0; i < kCallers; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> awaitable<void> {
            auto io_ex = co_await asio::this_coro::executor;
            co_await asio::post(asio::bind_executor(pool, use_awaitable));
            const int r = work(i);
            co_await asio::post(io_ex, use_awaitable);
            done += r - i;
          },
          asio::detached);
    }
    run_io(state, io);
    io.restart();
  }
  pool.join();
  if (done != static_cast<std::int64_t>(state.iterations()) * kCallers) {
    state.SkipWithError("wrong result");
  }
  state.SetItemsProcessed(state.iterations() * kCallers);
}

template <bool kWarm>
void throughput(benchmark::State& state) {
  asio::io_context io(1);
  ctxexec::capacity_limiter limiter(io, kTokens);
  if (kWarm) {
    ctxexec::default_blocking_pool(io).set_spin(std::chrono::microseconds(200));
  }
  auto guard = bench_var().scoped_set(1);
  std::int64_t done = 0;
  for (auto _ : state) {
    for (int i = 0; i < kCallers; ++i) {
      ctxexec::co_spawn(
          io,
          [&, i]() -> awaitable<void> {
            const int r = co_await ctxexec::run_sync_with_context(
                limiter, [i] { return work(i) * bench_var().get(); },
                use_awaitable);
            done += r - i;
          },
          asio::detached);
    }
    run_io(state, io);
    io.restart();
  }
  if (done != static_cast<std::int64_t>(state.iterations()) * kCallers) {
    state.SkipWithError("wrong result");
  }
  state.SetItemsProcessed(state.iterations() * kCallers);
}

void BM_Throughput(benchmark::State& state) { throughput<false>(state); }
void BM_ThroughputWarm(benchmark::State& state) { throughput<true>(state); }

}  // namespace

BENCHMARK(BM_RoundTripBaseline)->UseRealTime();
BENCHMARK(BM_RoundTrip)->UseRealTime();
BENCHMARK(BM_RoundTripWarm)->UseRealTime();
BENCHMARK(BM_ThroughputBaseline)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Throughput)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ThroughputWarm)->UseRealTime()->Unit(benchmark::kMillisecond);
