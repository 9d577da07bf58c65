// Tests of ctxexec::run_sync_with_context: results, context copy-in and no
// copy-back, the limiter (default 40, exact statistics, cancellation,
// abandon_on_cancel), every completion token, and the starvation check.

#include <ctxexec/threads/run_sync.hpp>

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/threads/from_thread.hpp>
#include "context_fixture.hpp"
#include "run_loop.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

ctxexec::context_var<int> rs_var("rs_var", -1);
ctxexec::context_var<int> rs_written("rs_written");  // no default

class RunSyncTest : public ctxexec_test::ContextFixture {};

/// Lets the loop run other handlers until `flag` is set, at most `limit`
/// rounds: completions arrive through a few posts, never through time.
awaitable<void> until(const bool& flag, int limit = 1000) {
  for (int i = 0; i < limit && !flag; ++i) {
    co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
  }
}

/// Runs `body` as a ctxexec task on a fresh io_context and returns once
/// everything is done; rethrows the task's exception.
template <class Body>
void run_task(asio::io_context& io, Body body) {
  std::exception_ptr error;
  ctxexec::co_spawn(io, std::move(body),
                    [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

TEST_F(RunSyncTest, ReturnsValueVoidAndMoveOnlyResults) {
  asio::io_context io;
  run_task(io, [&]() -> awaitable<void> {
    const int v = co_await ctxexec::run_sync_with_context([] { return 41 + 1; },
                                                          use_awaitable);
    EXPECT_EQ(v, 42);
    bool ran = false;
    co_await ctxexec::run_sync_with_context([&] { ran = true; }, use_awaitable);
    EXPECT_TRUE(ran);
    std::unique_ptr<std::string> p = co_await ctxexec::run_sync_with_context(
        [] { return std::make_unique<std::string>("moved"); }, use_awaitable);
    EXPECT_NE(p, nullptr);
    if (p) {
      EXPECT_EQ(*p, "moved");
    }
    // A move-only function is fine too: it is invoked once. (Named, not a
    // temporary: GCC 12 destroys a temporary with a non-trivial destructor
    // twice when it sits in a co_await expression, GCC bug 99576.)
    auto move_only = [o = std::make_unique<int>(5)] { return *o; };
    const int w = co_await ctxexec::run_sync_with_context(std::move(move_only),
                                                          use_awaitable);
    EXPECT_EQ(w, 5);
  });
}

TEST_F(RunSyncTest, ExceptionsPropagateToTheCaller) {
  asio::io_context io;
  run_task(io, [&]() -> awaitable<void> {
    EXPECT_THROW(co_await ctxexec::run_sync_with_context(
                     []() -> int { throw std::runtime_error("db down"); },
                     use_awaitable),
                 std::runtime_error);
    try {
      co_await ctxexec::run_sync_with_context(
          [] { throw std::invalid_argument("bad sql"); }, use_awaitable);
      ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "bad sql");
    }
    // The token came back each time.
    EXPECT_EQ(ctxexec::default_thread_limiter(io).statistics().borrowed_tokens,
              0u);
  });
}

TEST_F(RunSyncTest, ContextIsCopiedInAndNeverCopiedBack) {
  asio::io_context io;
  run_task(io, [&]() -> awaitable<void> {
    auto guard = rs_var.scoped_set(7);
    const auto loop_thread = std::this_thread::get_id();
    struct seen {
      int value;
      std::thread::id thread;
    };
    const seen s = co_await ctxexec::run_sync_with_context(
        [] {
          const seen out{rs_var.get(), std::this_thread::get_id()};
          (void)rs_var.set(100);  // writes stay in the worker's copy
          (void)rs_written.set(1);
          return out;
        },
        use_awaitable);
    EXPECT_EQ(s.value, 7);
    EXPECT_NE(s.thread, loop_thread);
    EXPECT_EQ(rs_var.get(), 7);
    EXPECT_EQ(rs_written.try_get(), nullptr);
    // The copy is taken at the call: a later change is not seen.
    auto op = ctxexec::run_sync_with_context([] { return rs_var.get(); },
                                             asio::deferred);
    auto later = rs_var.scoped_set(8);
    EXPECT_EQ(co_await std::move(op)(use_awaitable), 7);
  });
}

TEST_F(RunSyncTest, WorkerIsBackInTheEmptyContextAfterEachItem) {
  asio::io_context io;
  ctxexec::blocking_pool pool({.max_threads = 1});
  ctxexec::run_sync_options options{.pool = &pool};
  run_task(io, [&]() -> awaitable<void> {
    auto guard = rs_var.scoped_set(3);
    const auto first = co_await ctxexec::run_sync_with_context(
        options, [] { return std::this_thread::get_id(); }, use_awaitable);
    std::promise<std::pair<bool, std::thread::id>> probe;
    pool.submit([&] {  // the same (only) worker, in its own context
      probe.set_value(
          {ctxexec::copy_context().size() == 0, std::this_thread::get_id()});
    });
    const auto [empty, thread] = probe.get_future().get();
    EXPECT_TRUE(empty);
    EXPECT_EQ(thread, first);
  });
}

TEST_F(RunSyncTest, TokenIsReleasedBeforeTheCallerResumes) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 3);
  run_task(io, [&]() -> awaitable<void> {
    for (int i = 0; i < 20; ++i) {
      const auto during = co_await ctxexec::run_sync_with_context(
          limiter, [&] { return limiter.statistics().borrowed_tokens; },
          use_awaitable);
      EXPECT_EQ(during, 1u);
      EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
    }
  });
}

TEST_F(RunSyncTest, DefaultLimiterBoundsConcurrencyAtFortyExactly) {
  asio::io_context io;
  constexpr int kCallers = 100;
  ctxexec::capacity_limiter& limiter = ctxexec::default_thread_limiter(io);
  ASSERT_EQ(limiter.total_tokens(), 40u);
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::latch forty_running(40);
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::atomic<int> finished{0};
  for (int i = 0; i < kCallers; ++i) {
    ctxexec::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await ctxexec::run_sync_with_context(
              [&] {
                const int now = ++running;
                int p = peak.load();
                while (now > p && !peak.compare_exchange_weak(p, now)) {
                }
                if (now <= 40) forty_running.count_down();
                gate_open.wait();
                --running;
              },
              use_awaitable);
          ++finished;
        },
        asio::detached);
  }
  // Spawned last, so it starts after every caller has asked for a token
  // (one loop thread, FIFO): then 40 are borrowed and 60 wait.
  ctxexec::limiter_statistics during{};
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        forty_running.wait();  // blocks the loop: nothing else may move
        during = limiter.statistics();
        gate.set_value();
        co_return;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(during.borrowed_tokens, 40u);
  EXPECT_EQ(during.total_tokens, 40u);
  EXPECT_EQ(during.tasks_waiting, 60u);
  EXPECT_EQ(finished.load(), kCallers);
  EXPECT_EQ(peak.load(), 40);
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
  EXPECT_EQ(limiter.statistics().tasks_waiting, 0u);
}

TEST_F(RunSyncTest, EveryCompletionTokenWorks) {
  asio::io_context io;
  auto guard = rs_var.scoped_set(11);
  // A callback runs in a snapshot of the caller's context, taken at the call.
  int callback_value = 0;
  int callback_saw = 0;
  ctxexec::run_sync_with_context(
      [] { return 1; },
      asio::bind_executor(io, [&](std::exception_ptr e, int v) {
        EXPECT_FALSE(e);
        callback_value = v;
        callback_saw = rs_var.get();
      }));
  // deferred: nothing starts until it is launched.
  std::atomic<int> deferred_runs{0};
  auto op = ctxexec::run_sync_with_context([&] { return ++deferred_runs; },
                                           asio::deferred);
  EXPECT_EQ(deferred_runs.load(), 0);
  int deferred_value = 0;
  std::move(op)(asio::bind_executor(
      io, [&](std::exception_ptr, int v) { deferred_value = v; }));
  // use_future, waited for on another thread while the loop runs.
  std::future<int> fut =
      ctxexec::run_sync_with_context([] { return rs_var.get() * 2; },
                                     asio::bind_executor(io, asio::use_future));
  io.run();
  EXPECT_EQ(callback_value, 1);
  EXPECT_EQ(callback_saw, 11);
  EXPECT_EQ(deferred_runs.load(), 1);
  EXPECT_EQ(deferred_value, 1);
  EXPECT_EQ(fut.get(), 22);
  // use_future without an executor: the system context's limiter and pool.
  std::future<void> thrown = ctxexec::run_sync_with_context(
      [] { throw std::runtime_error("x"); }, asio::use_future);
  EXPECT_THROW(thrown.get(), std::runtime_error);
}

TEST_F(RunSyncTest, CompletionIsNeverInline) {
  asio::io_context io;
  bool returned = false;
  bool completed_after_return = false;
  ctxexec::run_sync_with_context(
      [] {}, asio::bind_executor(io, [&](std::exception_ptr) {
        completed_after_return = returned;
      }));
  returned = true;
  io.run();
  EXPECT_TRUE(completed_after_return);
}

TEST_F(RunSyncTest, CancellingTheWaitForATokenAbandonsTheCall) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 1);
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::latch holder_running(1);
  asio::cancellation_signal cancel;
  std::atomic<bool> second_ran{false};
  std::exception_ptr second_error;
  bool second_done = false;
  run_task(io, [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    ctxexec::run_sync_with_context(
        limiter,
        [&] {
          holder_running.count_down();
          gate_open.wait();
        },
        asio::bind_executor(ex, [](std::exception_ptr) {}));
    ctxexec::run_sync_with_context(
        limiter, [&] { second_ran = true; },
        asio::bind_cancellation_slot(
            cancel.slot(), asio::bind_executor(ex, [&](std::exception_ptr e) {
              second_error = e;
              second_done = true;
            })));
    co_await ctxexec::run_sync_with_context(
        [&] { holder_running.wait(); }, use_awaitable);  // holder has the token
    EXPECT_EQ(limiter.statistics().tasks_waiting, 1u);
    cancel.emit(asio::cancellation_type::terminal);
    co_await until(second_done);
    EXPECT_TRUE(second_done);
    EXPECT_EQ(limiter.statistics().tasks_waiting, 0u);
    gate.set_value();
  });
  ASSERT_TRUE(second_error);
  try {
    std::rethrow_exception(second_error);
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_FALSE(second_ran.load());
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
}

TEST_F(RunSyncTest, AbandonOnCancelResumesAtOnceAndReleasesLater) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 2);
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::atomic<bool> finished{false};
  run_task(io, [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::cancellation_signal cancel;
    std::latch running(1);
    std::exception_ptr error;
    bool done = false;
    ctxexec::run_sync_options options{.limiter = &limiter,
                                      .abandon_on_cancel = true};
    ctxexec::run_sync_with_context(
        options,
        [&] {
          running.count_down();
          gate_open.wait();
          finished = true;
        },
        asio::bind_cancellation_slot(
            cancel.slot(), asio::bind_executor(ex, [&](std::exception_ptr e) {
              error = e;
              done = true;
            })));
    co_await ctxexec::run_sync_with_context(
        limiter, [&] { running.wait(); }, use_awaitable);
    cancel.emit(asio::cancellation_type::terminal);
    co_await until(done);
    EXPECT_TRUE(done);  // resumed while the function still runs
    EXPECT_FALSE(finished.load());
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 1u);  // still held
    EXPECT_TRUE(error);
    if (error) {
      EXPECT_THROW(std::rethrow_exception(error), boost::system::system_error);
    }
    gate.set_value();
  });
  // io.run() returned only after the abandoned function finished.
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
}

TEST_F(RunSyncTest, WithoutAbandonCancellationWaitsForTheFunction) {
  asio::io_context io;
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  run_task(io, [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::cancellation_signal cancel;
    std::latch running(1);
    std::exception_ptr error;
    int value = 0;
    bool done = false;
    ctxexec::run_sync_with_context(
        [&] {
          running.count_down();
          gate_open.wait();
          return 9;
        },
        asio::bind_cancellation_slot(
            cancel.slot(),
            asio::bind_executor(ex, [&](std::exception_ptr e, int v) {
              error = e;
              value = v;
              done = true;
            })));
    co_await ctxexec::run_sync_with_context([&] { running.wait(); },
                                            use_awaitable);
    cancel.emit(asio::cancellation_type::terminal);  // ignored: it runs
    co_await asio::post(ex, use_awaitable);
    EXPECT_FALSE(done);
    gate.set_value();
    co_await until(done, 1 << 30);
    EXPECT_FALSE(error);
    EXPECT_EQ(value, 9);
  });
}

TEST_F(RunSyncTest, StarvationIsAClearErrorNotAHang) {
  // fastapi#3205: every token is held by code that waits for a token.
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 2);
  std::atomic<int> starved{0};
  std::latch both_holding(2);
  std::latch both_tried(2);  // neither token comes back before both tried
  auto ex = io.get_executor();
  for (int i = 0; i < 2; ++i) {
    ctxexec::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await ctxexec::run_sync_with_context(
              limiter,
              [&] {
                both_holding.arrive_and_wait();  // both tokens are held
                try {
                  ctxexec::from_thread::run(ex, [&]() -> awaitable<int> {
                    co_return co_await ctxexec::run_sync_with_context(
                        limiter, [] { return 1; }, use_awaitable);
                  });
                } catch (const ctxexec::starvation_error&) {
                  ++starved;
                }
                both_tried.arrive_and_wait();
              },
              use_awaitable);
        },
        asio::detached);
  }
  io.run();  // returns: nothing hangs
  EXPECT_EQ(starved.load(), 2);
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
}

TEST_F(RunSyncTest, NestedCallWithAFreeTokenSucceeds) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 2);
  auto ex = io.get_executor();
  int nested = 0;
  run_task(io, [&]() -> awaitable<void> {
    auto guard = rs_var.scoped_set(4);
    nested = co_await ctxexec::run_sync_with_context(
        limiter,
        [&] {
          return ctxexec::from_thread::run(ex, [&]() -> awaitable<int> {
            co_return co_await ctxexec::run_sync_with_context(
                limiter, [] { return rs_var.get() * 10; }, use_awaitable);
          });
        },
        use_awaitable);
  });
  EXPECT_EQ(nested, 40);
}

}  // namespace

namespace {

// The io_context is destroyed while calls are in flight: one running (its
// caller on a strand made after the pool), one queued in the limiter. The
// pool drains while the context's other services still exist; nothing is
// used after it is freed (ASan) and every token comes back.
TEST_F(RunSyncTest, DestroyingTheLoopWithCallsInFlightIsSafe) {
  auto io = std::make_unique<asio::io_context>();
  (void)ctxexec::default_blocking_pool(*io);  // the pool service first
  ctxexec::capacity_limiter& limiter = ctxexec::default_thread_limiter(*io);
  limiter.set_total_tokens(1);
  std::optional<asio::strand<asio::io_context::executor_type>> strand(
      asio::make_strand(*io));
  std::latch started(1);
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::atomic<int> ran{0};
  for (int i = 0; i < 2; ++i) {  // the second waits for the only token
    ctxexec::co_spawn(
        *strand,
        [&]() -> awaitable<void> {
          co_await ctxexec::run_sync_with_context(
              [&] {
                started.count_down();
                gate_open.wait();
                ++ran;
              },
              use_awaitable);
        },
        asio::detached);
  }
  ctxexec_test::run_until_then_stop(*io, started);
  strand.reset();
  auto destroyed = std::async(std::launch::async, [&] { io.reset(); });
  gate.set_value();  // before or during the destruction: both are fine
  destroyed.get();
  EXPECT_EQ(ran.load(), 1);  // the queued call was aborted, never run
}

// abandon_on_cancel: the caller resumes and destroys its (request-scoped)
// limiter while the abandoned function still runs; the function's token
// goes back through state that outlives the limiter.
TEST_F(RunSyncTest, AbandonedFunctionMayOutliveItsLimiter) {
  asio::io_context io;
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::atomic<bool> finished{false};
  run_task(io, [&]() -> awaitable<void> {
    auto limiter = std::make_unique<ctxexec::capacity_limiter>(io, 2);
    asio::cancellation_signal cancel;
    bool done = false;
    ctxexec::run_sync_options options{.limiter = limiter.get(),
                                      .abandon_on_cancel = true};
    std::latch running(1);
    ctxexec::run_sync_with_context(
        options,
        [&, gate_open] {
          running.count_down();
          gate_open.wait();
          finished = true;
        },
        asio::bind_cancellation_slot(
            cancel.slot(),
            asio::bind_executor(co_await asio::this_coro::executor,
                                [&](std::exception_ptr) { done = true; })));
    co_await ctxexec::run_sync_with_context([&] { running.wait(); },
                                            use_awaitable);
    cancel.emit(asio::cancellation_type::total);  // not enough to abandon
    co_await asio::post(use_awaitable);
    EXPECT_FALSE(done);
    cancel.emit(asio::cancellation_type::terminal);
    co_await until(done);
    EXPECT_TRUE(done);
    limiter.reset();   // the caller is done with it
    gate.set_value();  // the function returns and releases its token
  });
  EXPECT_TRUE(finished.load());
}

}  // namespace

namespace {

// anyio 4.12 accepts a total of 0: offloading pauses until it is raised.
TEST_F(RunSyncTest, ZeroTokensPauseOffloading) {
  asio::io_context io;
  ctxexec::capacity_limiter& limiter = ctxexec::default_thread_limiter(io);
  limiter.set_total_tokens(0);
  int value = 0;
  ctxexec::run_sync_with_context(
      [] { return 8; },
      asio::bind_executor(io, [&](std::exception_ptr, int v) { value = v; }));
  io.poll();
  EXPECT_EQ(limiter.statistics().tasks_waiting, 1u);
  limiter.set_total_tokens(1);
  io.run();
  EXPECT_EQ(value, 8);
}

// run_sync_with_context borrows on behalf of each call, not of the task
// (anyio's to_thread.run_sync uses a fresh borrower per call): one task
// may have several calls in flight on a one-token limiter.
TEST_F(RunSyncTest, ConcurrentCallsFromOneTaskAreNotBorrowingTwice) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 1);
  int sum = 0;
  run_task(io, [&]() -> awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto [a, b] = co_await (ctxexec::run_sync_with_context(
                                limiter, [] { return 1; }, use_awaitable) &&
                            ctxexec::run_sync_with_context(
                                limiter, [] { return 2; }, use_awaitable));
    // And while the task itself holds a token of another limiter.
    ctxexec::capacity_limiter other(io, 2);
    co_await other.async_acquire(use_awaitable);
    ctxexec::limiter_permit permit(other, std::adopt_lock);
    const int c = co_await ctxexec::run_sync_with_context(
        other, [] { return 3; }, use_awaitable);
    sum = a + b + c;
  });
  EXPECT_EQ(sum, 6);
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
}

// anyio's sequential calls reuse one worker. The worker counts as idle
// before the caller can see the result, so the next call finds it; the
// idle timeout is long enough that it never exits meanwhile.
TEST_F(RunSyncTest, SequentialCallsReuseOneWorker) {
  constexpr int kCalls = 20;
  asio::io_context io;
  ctxexec::blocking_pool pool({.idle_timeout = std::chrono::hours(1)});
  std::vector<std::thread::id> workers;
  run_task(io, [&]() -> awaitable<void> {
    for (int i = 0; i < kCalls; ++i) {
      workers.push_back(co_await ctxexec::run_sync_with_context(
          {.pool = &pool}, [] { return std::this_thread::get_id(); },
          use_awaitable));
    }
  });
  ASSERT_EQ(workers.size(), static_cast<std::size_t>(kCalls));
  for (int i = 1; i < kCalls; ++i) {
    EXPECT_EQ(workers[i], workers[0]) << "call " << i << " used a new thread";
  }
  EXPECT_EQ(pool.statistics().threads, 1u);
}

// The worker that handed a result back polls for the caller's next call
// (linger) instead of going to sleep: with a linger of an hour, 20
// sequential calls never put it to sleep. Without the linger it sleeps
// after nearly every call, since the caller needs a thread wake-up and a
// resumption before it calls again.
TEST_F(RunSyncTest, TheWorkerLingersForTheCallersNextCall) {
  constexpr int kCalls = 20;
  asio::io_context io;
  ctxexec::blocking_pool pool(
      {.idle_timeout = std::chrono::hours(1), .linger = std::chrono::hours(1)});
  int done = 0;
  run_task(io, [&]() -> awaitable<void> {
    for (int i = 0; i < kCalls; ++i) {
      done += co_await ctxexec::run_sync_with_context(
          {.pool = &pool}, [] { return 1; }, use_awaitable);
    }
  });
  EXPECT_EQ(done, kCalls);
  const auto counts =
      ctxexec::detail::blocking_pool_access::impl(pool).statistics();
  EXPECT_EQ(counts.threads, 1u);
  EXPECT_EQ(counts.sleeps, 0u);
  pool.shutdown();  // stops the lingering worker at once
  EXPECT_EQ(pool.statistics().threads, 0u);
}

/// A one-thread pool whose only worker is held busy until release(): an
/// item submitted meanwhile waits in the queue, so a call is known not to
/// have started its function yet.
class busy_pool {
 public:
  busy_pool() {
    pool.submit([this] {
      running_.count_down();
      gate_open_.wait();
    });
    running_.wait();
  }
  ~busy_pool() { release(); }
  void release() {
    if (!released_) {
      released_ = true;
      gate_.set_value();
    }
  }

  ctxexec::blocking_pool pool{{.max_threads = 1}};

 private:
  std::latch running_{1};
  std::promise<void> gate_;
  std::shared_future<void> gate_open_ = gate_.get_future().share();
  bool released_ = false;
};

bool is_aborted(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const boost::system::system_error& error) {
    return error.code() == asio::error::operation_aborted;
  } catch (...) {
  }
  return false;
}

// anyio checks for cancellation before it starts the function. Here the
// call has its token and waits in the pool's queue when it is cancelled,
// with each type of cancellation: the function never runs, the caller
// gets operation_aborted and the token comes back at once.
TEST_F(RunSyncTest, CancelledBeforeItStartsNeverRunsTheFunction) {
  constexpr asio::cancellation_type kTypes[] = {
      asio::cancellation_type::terminal, asio::cancellation_type::partial,
      asio::cancellation_type::total};
  for (const asio::cancellation_type type : kTypes) {
    SCOPED_TRACE(static_cast<int>(type));
    asio::io_context io;
    ctxexec::capacity_limiter limiter(io, 2);
    busy_pool busy;
    std::atomic<bool> ran{false};
    asio::cancellation_signal cancel;
    std::exception_ptr error;
    int calls = 0;
    ctxexec::run_sync_with_context(
        {.limiter = &limiter, .pool = &busy.pool}, [&] { ran = true; },
        asio::bind_cancellation_slot(
            cancel.slot(), asio::bind_executor(io, [&](std::exception_ptr e) {
              error = e;
              ++calls;
            })));
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 1u);  // queued in the pool
    cancel.emit(type);
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);  // back at once
    busy.release();  // the worker now reaches the cancelled item
    io.run();
    busy.pool.shutdown();  // every queued item has been through a worker
    EXPECT_FALSE(ran.load());
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(is_aborted(error));
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
  }
}

// The same through a task: its terminal cancellation, emitted right after
// it made the call, reaches the call, and the task does not carry on.
TEST_F(RunSyncTest, ATaskCancelledRightAfterItsCallDoesNotCarryOn) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 2);
  busy_pool busy;
  std::atomic<bool> ran{false};
  bool carried_on = false;
  std::exception_ptr task_error;
  bool task_done = false;
  asio::cancellation_signal cancel;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ctxexec::run_sync_with_context(
            {.limiter = &limiter, .pool = &busy.pool}, [&] { ran = true; },
            use_awaitable);
        carried_on = true;
      },
      asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
        task_error = e;
        task_done = true;
      }));
  io.poll();  // the task runs up to the call, which waits in the queue
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 1u);
  cancel.emit(asio::cancellation_type::terminal);
  io.restart();
  io.poll();  // the signal reaches the call on the loop
  busy.release();
  io.restart();
  io.run();
  busy.pool.shutdown();
  EXPECT_FALSE(ran.load());
  EXPECT_FALSE(carried_on);
  EXPECT_TRUE(task_done);
  EXPECT_TRUE(is_aborted(task_error));
  EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
}

// A cancellation emitted right after the call races the worker that
// starts the function: exactly one wins, every time. Either the function
// ran and the call completes normally, or it never runs and the call is
// aborted; the token comes back either way.
TEST_F(RunSyncTest, CancellationRacingTheWorkerEitherRunsOrAborts) {
  constexpr int kRounds = 300;
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 1);
  ctxexec::blocking_pool pool;
  int aborted = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::atomic<bool> ran{false};
    asio::cancellation_signal cancel;
    std::exception_ptr error;
    int value = 0;
    int calls = 0;
    ctxexec::run_sync_with_context(
        {.limiter = &limiter, .pool = &pool},
        [&] {
          ran = true;
          return 1;
        },
        asio::bind_cancellation_slot(
            cancel.slot(),
            asio::bind_executor(io, [&](std::exception_ptr e, int v) {
              error = e;
              value = v;
              ++calls;
            })));
    cancel.emit(asio::cancellation_type::terminal);
    io.restart();
    io.run();
    ASSERT_EQ(calls, 1);
    if (is_aborted(error)) {
      ++aborted;
      EXPECT_EQ(value, 0);
    } else {
      EXPECT_FALSE(error);
      EXPECT_EQ(value, 1);
      EXPECT_TRUE(ran.load());
    }
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u);
  }
  pool.shutdown();  // every cancelled item has been through a worker
  std::cout << "[ run_sync ] " << aborted << " of " << kRounds
            << " calls cancelled before they started\n";
}

}  // namespace
