// asio_benchmark.cpp: Google Benchmark microbenchmarks of the ctxexec
// Boost.Asio integration (<ctxexec/asio.hpp>), each beside its plain-Asio
// baseline in this binary.
//
//   BM_PostHop            co_await asio::post(use_awaitable), io_context
//   BM_PostHopMonitored   the same with a loop_monitor on (vs. BM_PostHop)
//   BM_StrandHop          the same hop, coroutine spawned on a strand
//   BM_CoSpawnAwait       co_await co_spawn(this_coro executor, child)
//   BM_CoSpawnAwaitIoExecutor  the same, spawned on the io_context executor
//   BM_TimerZero          steady_timer expires_after(0) + co_await async_wait
//   BM_TcpEcho            64-byte loopback TCP echo round trip
//   BM_PostHandler        post(io, handler) + io.run() in batches
//
// BM_<What> spawns its coroutine with ctxexec::co_spawn (or uses
// ctxexec::post), BM_<What>Baseline does the same with plain Asio. In both,
// a context variable is set in the spawning thread first, so a ctxexec task
// runs in a non-empty copy of the spawner's context, which differs from the
// thread's current context: every resumption really switches contexts.
//
// Measurement: the `for (auto _ : state)` loop runs INSIDE the coroutine, so
// Google Benchmark's "time per iteration" is the time of one hop (one
// co_spawn + await, one timer wait, one echo round trip); setting up the
// io_context, the spawn and io.run() bookkeeping are outside the timed loop.
// Every io_context is single-threaded with concurrency hint 1.
//
// Honesty: each iteration performs the whole operation (nothing can be
// hoisted across a co_await); results are checked after the loop and a
// wrong result turns the run into an error. The `allocs_per_op` counter
// comes from a counting global operator new in this binary (a relaxed
// load+store on a thread_local, the same for both sides of every pair).

#include <ctxexec/asio.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

namespace asio = boost::asio;
using asio::ip::tcp;

// ---------------------------------------------------------------------------
// Allocation counting: every operator new in this binary bumps a counter, so
// each benchmark can report heap allocations per operation.

namespace {
thread_local std::uint64_t tl_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++tl_allocations;
  if (size == 0) size = 1;
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

// ---------------------------------------------------------------------------
// Sizes: the io_context adaptor must fit any_executor's small buffer (the
// storage of a shared_ptr<void> plus a pointer), or every conversion to
// any_io_executor (the default awaitable executor) allocates.

using io_executor = asio::io_context::executor_type;
using io_strand = asio::strand<io_executor>;

static_assert(sizeof(ctxexec::context_executor<io_executor>) <= 24,
              "context_executor over an io_context executor must stay within "
              "any_executor's small buffer");

constexpr std::size_t kAnyExecutorSmallBuffer =
    sizeof(std::shared_ptr<void>) + sizeof(void*);

[[maybe_unused]] const bool kSizesReported = [] {
  auto fits = [](std::size_t n) {
    return std::to_string(n) +
           (n <= kAnyExecutorSmallBuffer ? " (fits" : " (exceeds") +
           " any_executor small buffer " +
           std::to_string(kAnyExecutorSmallBuffer) + ")";
  };
  benchmark::AddCustomContext(
      "sizeof(context_executor<io_context::executor_type>)",
      fits(sizeof(ctxexec::context_executor<io_executor>)));
  benchmark::AddCustomContext(
      "sizeof(context_executor<strand<io_context::executor_type>>)",
      fits(sizeof(ctxexec::context_executor<io_strand>)));
  benchmark::AddCustomContext(
      "sizeof(context_executor<any_io_executor>)",
      fits(sizeof(ctxexec::context_executor<asio::any_io_executor>)));
  return true;
}();

// ---------------------------------------------------------------------------
// Shared helpers.

constexpr int kVarValue = 42;

/// The variable set in the spawner. Never destroyed.
ctxexec::context_var<int>& bench_var() {
  static auto* var = new ctxexec::context_var<int>("asio_bench_var");
  return *var;
}

/// Which spawn (or post) a benchmark uses.
enum class flavor { plain_asio, ctxexec };

/// Forces `value` into a register here; a compiler memory barrier as well.
template <class T>
inline __attribute__((always_inline)) void keep(T value) {
  asm volatile("" : : "r"(value) : "memory");
}

/// The completion handler of every top-level spawn: rethrows the
/// coroutine's exception out of io.run().
struct rethrow {
  void operator()(const std::exception_ptr& e) const {
    if (e) std::rethrow_exception(e);
  }
};

/// Spawns `a` on `target` (an executor or io_context) the chosen way.
template <flavor kFlavor, class Target, class Awaitable>
void spawn(Target& target, Awaitable&& a) {
  if constexpr (kFlavor == flavor::ctxexec) {
    ctxexec::co_spawn(target, std::forward<Awaitable>(a), rethrow{});
  } else {
    asio::co_spawn(target, std::forward<Awaitable>(a), rethrow{});
  }
}

/// Fails the run unless a ctxexec task sees the spawner's value. (A plain
/// task shares the thread's context, which also holds it; nothing to check.)
template <flavor kFlavor>
void check_task_context(benchmark::State& state) {
  if constexpr (kFlavor == flavor::ctxexec) {
    const int* v = bench_var().try_get();
    if (v == nullptr || *v != kVarValue) {
      state.SkipWithError("task does not see the spawner's value");
    }
  }
}

/// Runs `io` to completion, turning an escaped exception into an error.
void run_io(benchmark::State& state, asio::io_context& io) {
  try {
    io.run();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

/// Sets the per-operation counters from the allocation count at the start.
void finish(benchmark::State& state, std::uint64_t allocations_before) {
  state.SetItemsProcessed(state.iterations());
  const auto n = static_cast<double>(state.iterations());
  state.counters["allocs_per_op"] = benchmark::Counter(
      n > 0 ? static_cast<double>(tl_allocations - allocations_before) / n
            : 0.0);
}

/// The common frame: set the variable, spawn make_task() the chosen way on
/// spawn_target(io), run, report.
template <flavor kFlavor, class TargetFactory, class TaskFactory>
void run_spawned(benchmark::State& state, TargetFactory spawn_target,
                 TaskFactory make_task) {
  asio::io_context io(1);
  decltype(auto) target = spawn_target(io);
  auto guard = bench_var().scoped_set(kVarValue);
  const std::uint64_t allocations_before = tl_allocations;
  spawn<kFlavor>(target, make_task());
  run_io(state, io);
  finish(state, allocations_before);
}

// ---------------------------------------------------------------------------
// 1, 2. co_await asio::post(use_awaitable): one hop per iteration.

template <flavor kFlavor>
asio::awaitable<void> hop_loop(benchmark::State& state) {
  for (auto _ : state) {
    co_await asio::post(asio::use_awaitable);
  }
  check_task_context<kFlavor>(state);
}

template <flavor kFlavor>
void post_hop(benchmark::State& state) {
  run_spawned<kFlavor>(
      state, [](asio::io_context& io) -> asio::io_context& { return io; },
      [&] { return hop_loop<kFlavor>(state); });
}

template <flavor kFlavor>
void strand_hop(benchmark::State& state) {
  run_spawned<kFlavor>(
      state, [](asio::io_context& io) { return asio::make_strand(io); },
      [&] { return hop_loop<kFlavor>(state); });
}

void BM_PostHopBaseline(benchmark::State& state) {
  post_hop<flavor::plain_asio>(state);
}
void BM_PostHop(benchmark::State& state) { post_hop<flavor::ctxexec>(state); }
// The same hop with a loop_monitor watching the io_context: what each
// handler pays for being watched (its baseline is BM_PostHop).
void BM_PostHopMonitored(benchmark::State& state) {
  asio::io_context io(1);
  ctxexec::loop_monitor monitor(io);
  auto guard = bench_var().scoped_set(kVarValue);
  const std::uint64_t allocations_before = tl_allocations;
  spawn<flavor::ctxexec>(io, hop_loop<flavor::ctxexec>(state));
  run_io(state, io);
  monitor.stop();
  finish(state, allocations_before);
}

void BM_StrandHopBaseline(benchmark::State& state) {
  strand_hop<flavor::plain_asio>(state);
}
void BM_StrandHop(benchmark::State& state) {
  strand_hop<flavor::ctxexec>(state);
}

// ---------------------------------------------------------------------------
// 3. co_spawn of a child plus co_await of it, from inside a parent.

asio::awaitable<int> child() { co_return 1; }

/// The child is spawned on the parent's own executor (as
/// `co_await this_coro::executor` returns it: an any_io_executor, which for
/// a ctxexec parent holds a context_executor) or, with `kIoExecutor`, on the
/// io_context's executor with its concrete type.
template <flavor kFlavor, bool kIoExecutor>
asio::awaitable<void> spawn_await_loop(benchmark::State& state,
                                       asio::io_context& io) {
  const asio::any_io_executor own = co_await asio::this_coro::executor;
  const auto executor = [&] {
    if constexpr (kIoExecutor) {
      return io.get_executor();
    } else {
      return own;
    }
  }();
  std::int64_t sum = 0;
  for (auto _ : state) {
    int v = 0;
    if constexpr (kFlavor == flavor::ctxexec) {
      v = co_await ctxexec::co_spawn(executor, child(), asio::use_awaitable);
    } else {
      v = co_await asio::co_spawn(executor, child(), asio::use_awaitable);
    }
    keep(v);
    sum += v;
  }
  if (sum != static_cast<std::int64_t>(state.iterations())) {
    state.SkipWithError("wrong child result");
  }
  check_task_context<kFlavor>(state);
}

template <flavor kFlavor, bool kIoExecutor>
void co_spawn_await(benchmark::State& state) {
  asio::io_context* io_ptr = nullptr;
  run_spawned<kFlavor>(
      state,
      [&](asio::io_context& io) -> asio::io_context& {
        io_ptr = &io;
        return io;
      },
      [&] { return spawn_await_loop<kFlavor, kIoExecutor>(state, *io_ptr); });
}

void BM_CoSpawnAwaitBaseline(benchmark::State& state) {
  co_spawn_await<flavor::plain_asio, false>(state);
}
void BM_CoSpawnAwait(benchmark::State& state) {
  co_spawn_await<flavor::ctxexec, false>(state);
}
void BM_CoSpawnAwaitIoExecutorBaseline(benchmark::State& state) {
  co_spawn_await<flavor::plain_asio, true>(state);
}
void BM_CoSpawnAwaitIoExecutor(benchmark::State& state) {
  co_spawn_await<flavor::ctxexec, true>(state);
}

// ---------------------------------------------------------------------------
// 4. A steady_timer wait of 0.

template <flavor kFlavor>
asio::awaitable<void> timer_loop(benchmark::State& state) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (auto _ : state) {
    timer.expires_after(std::chrono::nanoseconds(0));
    co_await timer.async_wait(asio::use_awaitable);
  }
  check_task_context<kFlavor>(state);
}

template <flavor kFlavor>
void timer_zero(benchmark::State& state) {
  run_spawned<kFlavor>(
      state, [](asio::io_context& io) -> asio::io_context& { return io; },
      [&] { return timer_loop<kFlavor>(state); });
}

void BM_TimerZeroBaseline(benchmark::State& state) {
  timer_zero<flavor::plain_asio>(state);
}
void BM_TimerZero(benchmark::State& state) {
  timer_zero<flavor::ctxexec>(state);
}

// ---------------------------------------------------------------------------
// 5. Loopback TCP echo: the client writes 64 bytes and reads them back per
// iteration; the server echoes until the client closes.

constexpr std::size_t kEchoBytes = 64;

template <flavor kFlavor>
asio::awaitable<void> echo_server(benchmark::State& state,
                                  tcp::acceptor& acceptor) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await acceptor.async_accept(socket, asio::use_awaitable);
  socket.set_option(tcp::no_delay(true));
  std::array<char, kEchoBytes> buf{};
  for (;;) {
    auto [ec, n] = co_await asio::async_read(
        socket, asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) break;  // the client closed
    co_await asio::async_write(socket, asio::buffer(buf, n),
                               asio::use_awaitable);
  }
  check_task_context<kFlavor>(state);
}

template <flavor kFlavor>
asio::awaitable<void> echo_client(benchmark::State& state,
                                  tcp::endpoint endpoint) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(endpoint, asio::use_awaitable);
  socket.set_option(tcp::no_delay(true));
  std::array<char, kEchoBytes> out{};
  std::array<char, kEchoBytes> in{};
  std::uint8_t seq = 0;
  bool ok = true;
  for (auto _ : state) {
    out[0] = static_cast<char>(++seq);
    co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
    co_await asio::async_read(socket, asio::buffer(in), asio::use_awaitable);
    ok &= in[0] == out[0];
  }
  if (!ok) state.SkipWithError("echo mismatch");
  check_task_context<kFlavor>(state);
  socket.shutdown(tcp::socket::shutdown_both);
  socket.close();
}

template <flavor kFlavor>
void tcp_echo(benchmark::State& state) {
  asio::io_context io(1);
  tcp::acceptor acceptor(io,
                         tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const tcp::endpoint endpoint = acceptor.local_endpoint();
  auto guard = bench_var().scoped_set(kVarValue);
  const std::uint64_t allocations_before = tl_allocations;
  spawn<kFlavor>(io, echo_server<kFlavor>(state, acceptor));
  spawn<kFlavor>(io, echo_client<kFlavor>(state, endpoint));
  run_io(state, io);
  finish(state, allocations_before);
}

void BM_TcpEchoBaseline(benchmark::State& state) {
  tcp_echo<flavor::plain_asio>(state);
}
void BM_TcpEcho(benchmark::State& state) { tcp_echo<flavor::ctxexec>(state); }

// ---------------------------------------------------------------------------
// 6. post(io, handler), run in batches: one post plus its share of io.run()
// per iteration. ctxexec::post snapshots the context at each post.

constexpr int kPostBatch = 64;

template <flavor kFlavor>
void post_handler(benchmark::State& state) {
  asio::io_context io(1);
  auto guard = bench_var().scoped_set(kVarValue);
  std::int64_t ran = 0;
  auto handler = [&ran] { ++ran; };
  int pending = 0;
  const std::uint64_t allocations_before = tl_allocations;
  for (auto _ : state) {
    if constexpr (kFlavor == flavor::ctxexec) {
      ctxexec::post(io, handler);
    } else {
      asio::post(io, handler);
    }
    if (++pending == kPostBatch) {
      io.run();
      io.restart();
      pending = 0;
    }
  }
  io.run();
  if (ran != static_cast<std::int64_t>(state.iterations())) {
    state.SkipWithError("lost handlers");
  }
  finish(state, allocations_before);
}

void BM_PostHandlerBaseline(benchmark::State& state) {
  post_handler<flavor::plain_asio>(state);
}
void BM_PostHandler(benchmark::State& state) {
  post_handler<flavor::ctxexec>(state);
}

BENCHMARK(BM_PostHopBaseline);
BENCHMARK(BM_PostHop);
BENCHMARK(BM_PostHopMonitored);
BENCHMARK(BM_StrandHopBaseline);
BENCHMARK(BM_StrandHop);
BENCHMARK(BM_CoSpawnAwaitBaseline);
BENCHMARK(BM_CoSpawnAwait);
BENCHMARK(BM_CoSpawnAwaitIoExecutorBaseline);
BENCHMARK(BM_CoSpawnAwaitIoExecutor);
BENCHMARK(BM_TimerZeroBaseline);
BENCHMARK(BM_TimerZero);
BENCHMARK(BM_TcpEchoBaseline);
BENCHMARK(BM_TcpEcho);
BENCHMARK(BM_PostHandlerBaseline);
BENCHMARK(BM_PostHandler);

}  // namespace
