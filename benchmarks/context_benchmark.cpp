// context_benchmark.cpp: Google Benchmark microbenchmarks of the ctxexec core
// (context_var get/set/reset/scoped_set/value_or, copy_context, context::run).
//
// Every BM_<What> has a BM_<What>Baseline in this binary that does the same
// job with a raw thread_local, the floor any context variable has to pay for
// on top of. scripts/bench.sh runs this binary with repetitions, runs the
// CPython and Node peers (benchmarks/peers/) and prints the comparison table.
//
// Honesty rules kept throughout:
//   * the measured call happens in every iteration; its result goes through
//     keep() (a register-only asm sink that also clobbers memory, so no load
//     can be hoisted out of the loop) or the loop body ends in
//     benchmark::ClobberMemory();
//   * values written are opaque to the optimizer (opaque());
//   * "N vars set" means N distinct context_var<int> objects hold a value in
//     the current context, created by set() in a new context entered with
//     run() for the benchmark; the measured variable is one of them (index
//     N / 2, as in the peers).

#include <ctxexec/core.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <string>
#include <type_traits>
#include <vector>

/// The thread_locals of the baselines (external linkage, see escape()).
namespace ctxexec_bench_tls {

/// A minimal intrusively refcounted snapshot: copying a handle to it is the
/// floor of an O(1) copy_context (one atomic increment, one decrement).
struct refcounted_snapshot {
  std::atomic<long> refs{1};
  int payload = 0;
};

thread_local int tl_value = 0;
thread_local const void* tl_current_baseline = nullptr;
thread_local refcounted_snapshot* tl_snapshot = nullptr;

}  // namespace ctxexec_bench_tls

namespace {

constexpr std::size_t kMaxVars = 1000;

using int_var = ctxexec::context_var<int>;

/// The variables the benchmarks set, created once and never destroyed. A
/// deque never moves its elements, which context_var requires.
std::deque<int_var>& bench_vars() {
  static std::deque<int_var>* vars = [] {
    auto* created = new std::deque<int_var>;
    for (std::size_t i = 0; i < kMaxVars; ++i) {
      created->emplace_back("bench_var_" + std::to_string(i));
    }
    return created;
  }();
  return *vars;
}

/// A variable with a default that no benchmark sets.
int_var& missing_var() {
  static int_var* var = new int_var("bench_missing_with_default", 7);
  return *var;
}

// Sinks. benchmark::DoNotOptimize(int&) uses the constraint "+m,r", and
// GCC 12 satisfies it without performing the load that produced the value
// (a `int v = tl; DoNotOptimize(v);` loop compiles to an empty loop), so
// results go through these register-only asm statements instead.

/// Forces `value` to be computed (into a register) here, and acts as a
/// compiler memory barrier, so nothing read before can be cached across it.
template <class T>
inline __attribute__((always_inline)) void keep(T value) {
  static_assert(std::is_scalar_v<T>, "keep() takes ints and pointers");
  asm volatile("" : : "r"(value) : "memory");
}

/// Makes `object` part of the optimizer's "all memory" from here on: every
/// later memory barrier may read or write it.
template <class T>
inline __attribute__((always_inline)) void escape(T& object) {
  asm volatile("" : : "r"(&object) : "memory");
}

/// `value`, but the optimizer cannot know it.
template <class T>
T opaque(T value) {
  static_assert(std::is_scalar_v<T>, "opaque() takes ints and pointers");
  asm volatile("" : "+r"(value));
  return value;
}

/// Runs body() in a new, empty context after setting the first n_set
/// variables there (variable i holds i). The context is dropped afterwards.
template <class Body>
void in_fresh_context(std::size_t n_set, Body&& body) {
  ctxexec::context ctx;
  ctx.run([&] {
    std::deque<int_var>& vars = bench_vars();
    for (std::size_t i = 0; i < n_set; ++i) {
      auto token = vars[i].set(static_cast<int>(i));
      (void)token;
    }
    body();
  });
}

// ---------------------------------------------------------------------------
// Raw thread_local baselines. The variables live in ctxexec_bench_tls (above)
// with external linkage, and each baseline passes their addresses to an asm
// statement once (escape()): from then on the optimizer must assume that
// every keep() / ClobberMemory() may read or write them, so each iteration
// really loads or stores through %fs.

using ctxexec_bench_tls::refcounted_snapshot;
using ctxexec_bench_tls::tl_current_baseline;
using ctxexec_bench_tls::tl_snapshot;
using ctxexec_bench_tls::tl_value;

class snapshot_handle {
 public:
  explicit snapshot_handle(refcounted_snapshot* s) noexcept : s_(s) {
    s_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  snapshot_handle(const snapshot_handle&) = delete;
  snapshot_handle& operator=(const snapshot_handle&) = delete;
  ~snapshot_handle() {
    if (s_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s_;
  }

 private:
  refcounted_snapshot* s_;
};

/// RAII save/assign/restore of tl_value: the floor of scoped_set.
class tl_value_guard {
 public:
  explicit tl_value_guard(int value) noexcept : old_(tl_value) {
    tl_value = value;
  }
  tl_value_guard(const tl_value_guard&) = delete;
  tl_value_guard& operator=(const tl_value_guard&) = delete;
  ~tl_value_guard() { tl_value = old_; }

 private:
  int old_;
};

// ---------------------------------------------------------------------------
// get

void BM_GetBaseline(benchmark::State& state) {
  escape(tl_value);
  tl_value = opaque(42);
  for (auto _ : state) {
    keep(tl_value);
  }
}
BENCHMARK(BM_GetBaseline);

void BM_Get(benchmark::State& state) {
  const auto n_set = static_cast<std::size_t>(state.range(0));
  in_fresh_context(n_set, [&] {
    const int_var& var = bench_vars()[n_set / 2];
    for (auto _ : state) {
      keep(var.get());
    }
  });
}
BENCHMARK(BM_Get)->Arg(1)->Arg(8)->Arg(1000);

/// get() on each of the N set variables in turn, so no per-variable state
/// stays hot (the per-iteration cost includes advancing the index).
void BM_GetRotating(benchmark::State& state) {
  const auto n_set = static_cast<std::size_t>(state.range(0));
  std::vector<const int_var*> vars;
  for (std::size_t i = 0; i < n_set; ++i) vars.push_back(&bench_vars()[i]);
  in_fresh_context(n_set, [&] {
    std::size_t i = 0;
    for (auto _ : state) {
      keep(vars[i]->get());
      if (++i == n_set) i = 0;
    }
  });
}
BENCHMARK(BM_GetRotating)->Arg(1000);

/// get() of a variable with a default that is not set (8 others are).
void BM_GetMissingDefault(benchmark::State& state) {
  in_fresh_context(8, [&] {
    const int_var& var = missing_var();
    for (auto _ : state) {
      keep(var.get());
    }
  });
}
BENCHMARK(BM_GetMissingDefault);

/// value_or() of a set variable (8 set): Python's var.get(fallback).
void BM_ValueOr(benchmark::State& state) {
  const int fallback = opaque(0);
  in_fresh_context(8, [&] {
    const int_var& var = bench_vars()[4];
    for (auto _ : state) {
      keep(var.value_or(fallback));
    }
  });
}
BENCHMARK(BM_ValueOr);

// ---------------------------------------------------------------------------
// set + reset

void BM_SetResetBaseline(benchmark::State& state) {
  const int value = opaque(42);
  escape(tl_value);
  for (auto _ : state) {
    const int old = tl_value;
    tl_value = value;
    benchmark::ClobberMemory();
    tl_value = old;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_SetResetBaseline);

void BM_SetReset(benchmark::State& state) {
  const auto n_set = static_cast<std::size_t>(state.range(0));
  const int value = opaque(42);
  in_fresh_context(n_set, [&] {
    int_var& var = bench_vars()[n_set / 2];
    for (auto _ : state) {
      auto token = var.set(value);
      var.reset(token);
    }
  });
}
BENCHMARK(BM_SetReset)->Arg(1)->Arg(8)->Arg(1000);

void BM_ScopedSetBaseline(benchmark::State& state) {
  const int value = opaque(42);
  escape(tl_value);
  for (auto _ : state) {
    {
      tl_value_guard guard(value);
      benchmark::ClobberMemory();
    }
    benchmark::ClobberMemory();  // as after reset in BM_SetResetBaseline
  }
}
BENCHMARK(BM_ScopedSetBaseline);

/// scoped_set guard created and destroyed, 8 vars set.
void BM_ScopedSet(benchmark::State& state) {
  const int value = opaque(42);
  in_fresh_context(8, [&] {
    int_var& var = bench_vars()[4];
    for (auto _ : state) {
      {
        auto guard = var.scoped_set(value);
        benchmark::ClobberMemory();
      }
      benchmark::ClobberMemory();
    }
  });
}
BENCHMARK(BM_ScopedSet);

// ---------------------------------------------------------------------------
// copy_context

void BM_CopyContextBaseline(benchmark::State& state) {
  escape(tl_snapshot);
  tl_snapshot = new refcounted_snapshot;
  for (auto _ : state) {
    snapshot_handle copy(tl_snapshot);
    keep(&copy);
  }
  delete tl_snapshot;
  tl_snapshot = nullptr;
}
BENCHMARK(BM_CopyContextBaseline);

/// copy_context() and destruction of the copy, 8 vars set.
void BM_CopyContext(benchmark::State& state) {
  in_fresh_context(8, [&] {
    for (auto _ : state) {
      ctxexec::context copy = ctxexec::copy_context();
      keep(&copy);
    }
  });
}
BENCHMARK(BM_CopyContext);

// ---------------------------------------------------------------------------
// run

void BM_RunNoopBaseline(benchmark::State& state) {
  int target = 0;
  const void* entered = opaque(static_cast<const void*>(&target));
  escape(tl_current_baseline);
  for (auto _ : state) {
    const void* previous = tl_current_baseline;
    tl_current_baseline = entered;
    benchmark::ClobberMemory();  // the no-op "call"
    tl_current_baseline = previous;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_RunNoopBaseline);

/// context::run on a no-op lambda, from the thread's own context into an
/// empty one. The lambda's only statement is a compiler barrier, so the
/// switch to the entered context cannot be elided as dead stores.
void BM_RunNoop(benchmark::State& state) {
  ctxexec::context ctx;
  for (auto _ : state) {
    ctx.run([] { benchmark::ClobberMemory(); });
  }
}
BENCHMARK(BM_RunNoop);

}  // namespace
