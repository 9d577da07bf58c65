// Tests of ctxexec::capacity_limiter, limiter_permit and
// default_thread_limiter: token accounting, FIFO order, completion through
// the handler's executor, cancellation (also racing a grant), resizing, and
// a randomized multi-threaded stress (seed printed; replay it with
// CTXEXEC_LIMITER_SEED).

#include <ctxexec/threads/capacity_limiter.hpp>

#include <ctxexec/asio.hpp>
#include <ctxexec/threads/detail/mutex.hpp>
#include "context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using ctxexec::capacity_limiter;
using ctxexec::limiter_permit;

class CapacityLimiterTest : public ctxexec_test::ContextFixture {};

const error_code aborted_ec = asio::error::operation_aborted;

std::uint64_t pick_seed() {
  if (const char* s = std::getenv("CTXEXEC_LIMITER_SEED")) {
    return std::strtoull(s, nullptr, 10);
  }
  return std::random_device{}();
}

void expect_statistics(const capacity_limiter& limiter, std::size_t borrowed,
                       std::size_t total, std::size_t waiting) {
  const ctxexec::limiter_statistics s = limiter.statistics();
  EXPECT_EQ(s.borrowed_tokens, borrowed);
  EXPECT_EQ(s.total_tokens, total);
  EXPECT_EQ(s.tasks_waiting, waiting);
}

// Counts the calls and keeps the last error of one handler.
struct outcome {
  int calls = 0;
  error_code ec;
  auto handler() {
    return [this](error_code e) {
      ++calls;
      ec = e;
    };
  }
};

static_assert(!std::is_copy_constructible_v<capacity_limiter>);
static_assert(!std::is_move_constructible_v<capacity_limiter>);
static_assert(!std::is_copy_constructible_v<limiter_permit>);
static_assert(std::is_nothrow_move_constructible_v<limiter_permit>);
static_assert(std::is_nothrow_move_assignable_v<limiter_permit>);

TEST_F(CapacityLimiterTest, DefaultThreadLimiterHasFortyTokensPerContext) {
  asio::io_context io;
  asio::io_context other;
  capacity_limiter& a = ctxexec::default_thread_limiter(io);
  EXPECT_EQ(a.total_tokens(), 40u);
  EXPECT_EQ(capacity_limiter::default_total_tokens, 40u);
  EXPECT_EQ(&ctxexec::default_thread_limiter(io), &a);
  EXPECT_NE(&ctxexec::default_thread_limiter(other), &a);
  EXPECT_EQ(a.get_executor(),
            capacity_limiter::executor_type(io.get_executor()));

  // Resized through the shared object; seen by every caller.
  a.set_total_tokens(3);
  EXPECT_EQ(ctxexec::default_thread_limiter(io).statistics().total_tokens, 3u);
  EXPECT_EQ(ctxexec::default_thread_limiter(other).total_tokens(), 40u);

  asio::thread_pool pool(1);
  EXPECT_EQ(ctxexec::default_thread_limiter(pool).get_executor(),
            capacity_limiter::executor_type(pool.get_executor()));
  pool.join();

  // Any other execution context: the system executor.
  struct plain_context : asio::execution_context {};
  plain_context plain;
  EXPECT_NE(ctxexec::default_thread_limiter(plain)
                .get_executor()
                .target<asio::system_executor>(),
            nullptr);
}

TEST_F(CapacityLimiterTest, TryAcquireReleaseAndStatistics) {
  asio::io_context io;
  capacity_limiter limiter(io, 2);
  expect_statistics(limiter, 0, 2, 0);
  EXPECT_TRUE(limiter.try_acquire());
  expect_statistics(limiter, 1, 2, 0);
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_FALSE(limiter.try_acquire());
  expect_statistics(limiter, 2, 2, 0);
  limiter.release();
  expect_statistics(limiter, 1, 2, 0);
  limiter.release();
  expect_statistics(limiter, 0, 2, 0);
  EXPECT_THROW(limiter.release(), ctxexec::limiter_error);
  expect_statistics(limiter, 0, 2, 0);
  EXPECT_TRUE(limiter.try_acquire());  // unchanged by the failed release

  EXPECT_EQ(capacity_limiter(io.get_executor()).total_tokens(), 40u);
}

TEST_F(CapacityLimiterTest, WaitersAreServedInFifoOrderAndNeverOvertaken) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  ASSERT_TRUE(limiter.try_acquire());
  std::vector<int> order;
  for (int i = 0; i < 8; ++i) {
    limiter.async_acquire([&, i](error_code ec) {
      EXPECT_FALSE(ec);
      order.push_back(i);
      limiter.release();
    });
  }
  expect_statistics(limiter, 1, 1, 8);
  EXPECT_FALSE(limiter.try_acquire());
  limiter.release();  // goes to waiter 0, not to a newcomer
  EXPECT_FALSE(limiter.try_acquire());
  expect_statistics(limiter, 1, 1, 7);
  io.poll();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  expect_statistics(limiter, 0, 1, 0);
}

TEST_F(CapacityLimiterTest, CompletionIsNeverInline) {
  asio::io_context io;
  capacity_limiter limiter(io, 2);
  bool inside_call = false;  // true during calls that must not complete
  auto recorded_outside = [&inside_call](outcome& o, const char* call) {
    return [&o, &inside_call, call](error_code ec) {
      EXPECT_FALSE(inside_call) << "completed inside " << call;
      o.handler()(ec);
    };
  };
  // A free token: granted at once, delivered later.
  outcome first;
  inside_call = true;
  limiter.async_acquire(recorded_outside(first, "async_acquire"));
  inside_call = false;
  EXPECT_EQ(first.calls, 0);
  expect_statistics(limiter, 1, 2, 0);  // granted, not yet delivered

  // A queued waiter: granted by release(), not run inside it.
  ASSERT_TRUE(limiter.try_acquire());
  outcome second;
  limiter.async_acquire(recorded_outside(second, "release()"));
  inside_call = true;
  limiter.release();
  inside_call = false;
  EXPECT_EQ(second.calls, 0);
  io.poll();
  EXPECT_EQ(first.calls, 1);
  EXPECT_FALSE(first.ec);
  EXPECT_EQ(second.calls, 1);
  EXPECT_FALSE(second.ec);
  expect_statistics(limiter, 2, 2, 0);
}

TEST_F(CapacityLimiterTest, WorksWithEveryCompletionToken) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);

  // use_future: its handler's executor is the system executor, so the
  // future becomes ready there. The bound only turns a hang into a failure.
  constexpr auto kBound = std::chrono::seconds(60);
  std::future<void> fut = limiter.async_acquire(asio::use_future);
  ASSERT_EQ(fut.wait_for(kBound), std::future_status::ready);
  EXPECT_NO_THROW(fut.get());
  limiter.release();

  // deferred: nothing happens until the operation is launched.
  auto op = limiter.async_acquire(asio::deferred);
  expect_statistics(limiter, 0, 1, 0);
  outcome deferred_then_callback;
  std::move(op)(deferred_then_callback.handler());
  expect_statistics(limiter, 1, 1, 0);
  io.restart();
  io.poll();
  EXPECT_EQ(deferred_then_callback.calls, 1);
  EXPECT_FALSE(deferred_then_callback.ec);
  limiter.release();

  // use_awaitable, and deferred awaited in a coroutine.
  int acquired = 0;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await limiter.async_acquire(use_awaitable);
        ++acquired;
        limiter.release();
        co_await limiter.async_acquire(asio::deferred)(use_awaitable);
        ++acquired;
        limiter.release();
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.restart();
  io.poll();
  EXPECT_EQ(acquired, 2);

  // An aborted use_future operation reports through the future.
  ASSERT_TRUE(limiter.try_acquire());
  asio::cancellation_signal signal;
  std::future<void> aborted = limiter.async_acquire(
      asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  signal.emit(asio::cancellation_type::terminal);
  ASSERT_EQ(aborted.wait_for(kBound), std::future_status::ready);
  try {
    aborted.get();
    ADD_FAILURE() << "the cancelled future holds a value";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), aborted_ec);
  }
  limiter.release();
  expect_statistics(limiter, 0, 1, 0);
}

// Counts what the limiter allocates through a handler's allocator.
struct allocation_counts {
  int allocations = 0;
  int live = 0;
};

template <class T>
struct counting_allocator {
  using value_type = T;
  allocation_counts* counts;
  explicit counting_allocator(allocation_counts* c) noexcept : counts(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept
      : counts(other.counts) {}
  T* allocate(std::size_t n) {
    ++counts->allocations;
    ++counts->live;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    --counts->live;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counts == other.counts;
  }
};

TEST_F(CapacityLimiterTest, UsesTheHandlersExecutorAndAllocator) {
  asio::io_context io;
  asio::io_context handler_io;
  capacity_limiter limiter(io, 1);
  allocation_counts counts;
  bool ran = false;
  limiter.async_acquire(asio::bind_executor(
      handler_io, asio::bind_allocator(
                      counting_allocator<void>(&counts), [&](error_code ec) {
                        EXPECT_FALSE(ec);
                        EXPECT_TRUE(
                            handler_io.get_executor().running_in_this_thread());
                        // Freed before the upcall, as Asio does.
                        EXPECT_EQ(counts.live, 0);
                        ran = true;
                      })));
  EXPECT_GE(counts.allocations, 1);
  io.poll();
  EXPECT_TRUE(io.stopped()) << "the operation counted work on io";
  EXPECT_FALSE(ran);
  handler_io.poll();
  EXPECT_TRUE(ran);
  EXPECT_EQ(counts.live, 0);
}

TEST_F(CapacityLimiterTest, AWaiterKeepsRunFromReturning) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  ASSERT_TRUE(limiter.try_acquire());
  outcome waiter;
  limiter.async_acquire(waiter.handler());
  std::promise<void> running;
  asio::post(io, [&] { running.set_value(); });
  std::thread runner([&] { io.run(); });
  running.get_future().wait();
  // run() still runs: the queued waiter counts as work.
  limiter.release();
  runner.join();
  EXPECT_EQ(waiter.calls, 1);
  EXPECT_FALSE(waiter.ec);
}

ctxexec::context_var<int> task_id("limiter_task_id", -1);

TEST_F(CapacityLimiterTest, ATaskResumesInItsOwnContext) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  ASSERT_TRUE(limiter.try_acquire());
  int seen = 0;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto guard = task_id.scoped_set(7);
        co_await limiter.async_acquire(use_awaitable);
        seen = task_id.get();
        limiter.release();
      },
      asio::detached);
  asio::post(io, [&] { limiter.release(); });  // runs in the root context
  io.poll();
  EXPECT_EQ(seen, 7);
  expect_statistics(limiter, 0, 1, 0);
}

TEST_F(CapacityLimiterTest, StatisticsStayExactUnderLoad) {
  constexpr std::size_t kTotal = 5;
  constexpr int kTasks = 200;
  constexpr int kRounds = 10;
  constexpr int kThreads = 4;
  asio::io_context io(kThreads);
  capacity_limiter limiter(io, kTotal);
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> finished{0};
  for (int t = 0; t < kTasks; ++t) {
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          for (int r = 0; r < kRounds; ++r) {
            co_await limiter.async_acquire(use_awaitable);
            limiter_permit permit(limiter, std::adopt_lock);
            const int now = ++inside;
            int seen = max_inside.load();
            while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
            }
            const ctxexec::limiter_statistics s = limiter.statistics();
            EXPECT_GE(s.borrowed_tokens, 1u);
            EXPECT_LE(s.borrowed_tokens, s.total_tokens);
            EXPECT_EQ(s.total_tokens, kTotal);
            co_await asio::post(ex, use_awaitable);  // hold it a while
            --inside;
          }
          ++finished;
        },
        [](std::exception_ptr e) { EXPECT_FALSE(e); });
  }
  std::vector<std::thread> threads;
  for (int i = 1; i < kThreads; ++i) threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  EXPECT_EQ(finished.load(), kTasks);
  EXPECT_LE(max_inside.load(), static_cast<int>(kTotal));
  EXPECT_GE(max_inside.load(), 1);
  expect_statistics(limiter, 0, kTotal, 0);
}

TEST_F(CapacityLimiterTest, TenThousandCancelledWaitersLeaveNothingBehind) {
  constexpr int kWaiters = 10000;
  const std::uint64_t seed = pick_seed();
  std::cout << "[ limiter ] cancellation order seed " << seed << "\n";
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::vector<asio::cancellation_signal> signals(kWaiters);
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  ASSERT_TRUE(limiter.try_acquire());
  std::vector<outcome> outcomes(kWaiters);
  for (int i = 0; i < kWaiters; ++i) {
    limiter.async_acquire(
        asio::bind_cancellation_slot(signals[i].slot(), outcomes[i].handler()));
  }
  outcome last;  // queued behind them all, never cancelled
  limiter.async_acquire(last.handler());
  expect_statistics(limiter, 1, 1, kWaiters + 1);
  std::vector<int> order(kWaiters);
  for (int i = 0; i < kWaiters; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  constexpr asio::cancellation_type kTypes[] = {
      asio::cancellation_type::terminal, asio::cancellation_type::partial,
      asio::cancellation_type::total};
  for (int i = 0; i < kWaiters; ++i) signals[order[i]].emit(kTypes[i % 3]);
  expect_statistics(limiter, 1, 1, 1);
  limiter.release();  // to `last`: the cancelled ones left the queue
  expect_statistics(limiter, 1, 1, 0);
  io.poll();
  for (int i = 0; i < kWaiters; ++i) {
    ASSERT_EQ(outcomes[i].calls, 1) << "waiter " << i;
    ASSERT_EQ(outcomes[i].ec, aborted_ec) << "waiter " << i;
  }
  EXPECT_EQ(last.calls, 1);
  EXPECT_FALSE(last.ec);
  limiter.release();
  expect_statistics(limiter, 0, 1, 0);
  // Emitting again, after completion, changes nothing.
  for (auto& s : signals) s.emit(asio::cancellation_type::terminal);
  expect_statistics(limiter, 0, 1, 0);
  EXPECT_TRUE(limiter.try_acquire());
}

TEST_F(CapacityLimiterTest, CancellingAGrantedWaiterPassesTheTokenOn) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  ASSERT_TRUE(limiter.try_acquire());
  asio::cancellation_signal a_signal;
  outcome a, b, c;
  limiter.async_acquire(
      asio::bind_cancellation_slot(a_signal.slot(), a.handler()));
  limiter.async_acquire(b.handler());
  limiter.release();  // granted to a, not yet delivered
  expect_statistics(limiter, 1, 1, 1);
  a_signal.emit(asio::cancellation_type::total);  // a gives it to b
  expect_statistics(limiter, 1, 1, 0);
  a_signal.emit(asio::cancellation_type::terminal);  // twice: no effect
  expect_statistics(limiter, 1, 1, 0);
  io.poll();
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(a.ec, aborted_ec);
  EXPECT_EQ(b.calls, 1);
  EXPECT_FALSE(b.ec);
  expect_statistics(limiter, 1, 1, 0);  // b holds it

  // With nobody waiting, it goes back to the pool.
  asio::cancellation_signal c_signal;
  limiter.async_acquire(
      asio::bind_cancellation_slot(c_signal.slot(), c.handler()));
  limiter.release();
  expect_statistics(limiter, 1, 1, 0);
  c_signal.emit(asio::cancellation_type::partial);
  expect_statistics(limiter, 0, 1, 0);
  io.restart();
  io.poll();
  EXPECT_EQ(c.calls, 1);
  EXPECT_EQ(c.ec, aborted_ec);
  EXPECT_TRUE(limiter.try_acquire());
  limiter.release();
}

// release() on the main thread races a cancellation. In two rounds of
// three the signal is emitted on the io thread, queued before any
// completion: the waiter is aborted whether or not the token reached it,
// and a second waiter behind it gets the token. In the third the signal is
// emitted on yet another thread, racing the completion too: either outcome
// is fine. Tokens are conserved in every round.
TEST_F(CapacityLimiterTest, CancellationRacingReleaseOnAnotherThread) {
  constexpr int kRounds = 1500;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  capacity_limiter limiter(io, 1);
  int late_granted = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_TRUE(limiter.try_acquire());
    const int mode = round % 3;
    asio::cancellation_signal signal;
    std::promise<error_code> first_result;
    std::promise<error_code> second_result;
    std::promise<void> queued;
    asio::post(io, [&] {
      limiter.async_acquire(
          asio::bind_cancellation_slot(signal.slot(), [&](error_code ec) {
            if (!ec) limiter.release();
            first_result.set_value(ec);
          }));
      if (mode == 1) {
        limiter.async_acquire([&](error_code ec) {
          if (!ec) limiter.release();
          second_result.set_value(ec);
        });
      }
      if (mode != 2) {
        asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
      }
      queued.set_value();
    });
    queued.get_future().wait();
    std::thread emitter;
    if (mode == 2) {
      emitter =
          std::thread([&] { signal.emit(asio::cancellation_type::total); });
    }
    limiter.release();
    const error_code first = first_result.get_future().get();
    if (mode == 2) {
      emitter.join();
      late_granted += first ? 0 : 1;
      if (first) {
        EXPECT_EQ(first, aborted_ec);
      }
    } else {
      EXPECT_EQ(first, aborted_ec);
    }
    if (mode == 1) {
      EXPECT_EQ(second_result.get_future().get(), error_code());
    }
    // Wait until the io thread is done with the round: the counts are final.
    std::promise<void> drained;
    asio::post(io, [&] { drained.set_value(); });
    drained.get_future().wait();
    expect_statistics(limiter, 0, 1, 0);
  }
  work.reset();
  io_thread.join();
  std::cout << "[ limiter ] " << late_granted << " of " << kRounds / 3
            << " late cancellations lost to the grant\n";
}

TEST_F(CapacityLimiterTest, RaisingTheTotalWakesExactlyTheNewTokens) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  ASSERT_TRUE(limiter.try_acquire());
  std::vector<outcome> waiters(5);
  for (auto& w : waiters) limiter.async_acquire(w.handler());
  expect_statistics(limiter, 1, 1, 5);
  limiter.set_total_tokens(4);
  expect_statistics(limiter, 4, 4, 2);
  io.poll();  // run() would wait for the queued ones
  int granted = 0;
  for (auto& w : waiters) granted += w.calls;
  EXPECT_EQ(granted, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(waiters[i].calls, 1);  // FIFO

  // Lowering: borrowers finish; no grant until fewer than 2 are borrowed.
  limiter.set_total_tokens(2);
  expect_statistics(limiter, 4, 2, 2);
  limiter.release();
  expect_statistics(limiter, 3, 2, 2);
  limiter.release();
  expect_statistics(limiter, 2, 2, 2);
  limiter.release();
  expect_statistics(limiter, 2, 2, 1);  // one waiter got the freed token
  io.restart();
  io.poll();
  EXPECT_EQ(waiters[3].calls, 1);
  EXPECT_EQ(waiters[4].calls, 0);
  EXPECT_FALSE(limiter.try_acquire());
}

TEST_F(CapacityLimiterTest, DestroyingTheLimiterAbortsItsWaiters) {
  asio::io_context io;
  auto limiter = std::make_unique<capacity_limiter>(io, 2);
  ASSERT_TRUE(limiter->try_acquire());
  outcome granted;
  limiter->async_acquire(granted.handler());  // granted, not delivered
  asio::cancellation_signal signal;
  std::vector<outcome> queued(2);
  limiter->async_acquire(
      asio::bind_cancellation_slot(signal.slot(), queued[0].handler()));
  limiter->async_acquire(queued[1].handler());
  int coroutine_ec = 0;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto [ec] =
            co_await limiter->async_acquire(asio::as_tuple(use_awaitable));
        coroutine_ec = ec == aborted_ec ? 1 : 2;
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.poll();  // the coroutine now waits too
  expect_statistics(*limiter, 2, 2, 3);
  limiter.reset();
  EXPECT_EQ(queued[0].calls, 0);  // completions are posted, not run inline
  io.restart();
  io.poll();
  EXPECT_EQ(granted.calls, 1);
  EXPECT_FALSE(granted.ec);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(queued[i].calls, 1);
    EXPECT_EQ(queued[i].ec, aborted_ec);
  }
  EXPECT_EQ(coroutine_ec, 1);
  // A signal emitted after the limiter is gone finds nothing to cancel.
  signal.emit(asio::cancellation_type::terminal);
}

TEST_F(CapacityLimiterTest, DestroyingTheContextDestroysWaitersUnrun) {
  int calls = 0;
  {
    asio::io_context io;
    capacity_limiter& limiter = ctxexec::default_thread_limiter(io);
    limiter.set_total_tokens(1);
    ASSERT_TRUE(limiter.try_acquire());
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await limiter.async_acquire(use_awaitable);
          ++calls;
        },
        asio::detached);
    limiter.async_acquire([&](error_code) { ++calls; });
    io.poll();
    expect_statistics(limiter, 1, 1, 2);
  }  // the frame and the handler are destroyed: LSan checks nothing leaks
  EXPECT_EQ(calls, 0);
  {
    asio::io_context io;
    capacity_limiter limiter(io, 1);
    limiter.async_acquire([&](error_code) { ++calls; });  // granted
  }  // the limiter goes first, then the io_context with the completion
  EXPECT_EQ(calls, 0);
}

TEST_F(CapacityLimiterTest, PermitReleasesOnDestruction) {
  asio::io_context io;
  capacity_limiter limiter(io, 2);
  {
    std::optional<limiter_permit> p = limiter_permit::try_acquire(limiter);
    ASSERT_TRUE(p.has_value());
    EXPECT_TRUE(p->owns_token());
    EXPECT_EQ(p->limiter(), &limiter);
    std::optional<limiter_permit> q = limiter_permit::try_acquire(limiter);
    ASSERT_TRUE(q.has_value());
    EXPECT_FALSE(limiter_permit::try_acquire(limiter).has_value());
    expect_statistics(limiter, 2, 2, 0);

    limiter_permit moved(std::move(*q));
    EXPECT_FALSE(q->owns_token());
    EXPECT_EQ(q->limiter(), nullptr);
    expect_statistics(limiter, 2, 2, 0);
    moved.release();
    EXPECT_FALSE(moved.owns_token());
    expect_statistics(limiter, 1, 2, 0);
    EXPECT_THROW(moved.release(), ctxexec::limiter_error);
    expect_statistics(limiter, 1, 2, 0);

    // Move-assigning onto a permit that holds a token releases it first.
    ASSERT_TRUE(limiter.try_acquire());
    limiter_permit adopted(limiter, std::adopt_lock);
    expect_statistics(limiter, 2, 2, 0);
    adopted = std::move(*p);
    expect_statistics(limiter, 1, 2, 0);
    EXPECT_TRUE(adopted.owns_token());
    EXPECT_FALSE(p->owns_token());
  }
  expect_statistics(limiter, 0, 2, 0);

  limiter_permit empty;
  EXPECT_FALSE(empty.owns_token());
  EXPECT_EQ(empty.limiter(), nullptr);
  EXPECT_THROW(empty.release(), ctxexec::limiter_error);

  // A permit's destruction hands its token to the first waiter.
  limiter.set_total_tokens(1);
  outcome waiter;
  {
    auto p = limiter_permit::try_acquire(limiter);
    ASSERT_TRUE(p.has_value());
    limiter.async_acquire(waiter.handler());
    expect_statistics(limiter, 1, 1, 1);
  }
  expect_statistics(limiter, 1, 1, 0);
  io.poll();
  EXPECT_EQ(waiter.calls, 1);
  EXPECT_FALSE(waiter.ec);
}

// Many coroutines on several threads acquire and release; some cancel
// before their completion could be delivered (they must be aborted), some
// at a random later moment (either outcome); another thread keeps changing
// the total. Every acquire completes exactly once and nothing is lost: the
// test ends when io.run() returns, and a watchdog stops it (failing) if a
// wakeup was lost.
TEST_F(CapacityLimiterTest, RandomizedStressWithCancellationAndResizing) {
  constexpr int kTasks = 300;
  constexpr int kRounds = 40;
  constexpr int kThreads = 3;
  constexpr std::size_t kMaxTotal = 6;
  const std::uint64_t seed = pick_seed();
  std::cout << "[ limiter ] stress seed " << seed
            << " (replay: CTXEXEC_LIMITER_SEED=" << seed << ")\n";
  RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("seed=" + std::to_string(seed));

  asio::io_context io(kThreads);
  capacity_limiter limiter(io, 3);
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<long> completions{0};
  std::atomic<long> granted{0};
  std::atomic<long> aborted{0};
  std::atomic<int> tasks_done{0};
  std::atomic<bool> stop_resizing{false};

  constexpr asio::cancellation_type kTypes[] = {
      asio::cancellation_type::terminal, asio::cancellation_type::partial,
      asio::cancellation_type::total};
  auto task = [&](std::uint64_t task_seed) -> awaitable<void> {
    std::mt19937_64 rng(task_seed);
    auto ex = co_await asio::this_coro::executor;  // the task's strand
    for (int r = 0; r < kRounds; ++r) {
      const int mode = static_cast<int>(rng() % 4);  // 0, 1: no cancel
      const asio::cancellation_type type = kTypes[rng() % 3];
      auto signal = std::make_shared<asio::cancellation_signal>();
      if (mode == 2) {
        // Queued on the strand ahead of any completion: always wins.
        asio::post(ex, [signal, type] { signal->emit(type); });
      } else if (mode == 3) {
        auto timer = std::make_shared<asio::steady_timer>(
            ex, std::chrono::microseconds(rng() % 300));
        timer->async_wait([signal, timer, type](error_code) {
          signal->emit(type);  // before or after the completion
        });
      }
      auto [ec] = co_await limiter.async_acquire(asio::bind_cancellation_slot(
          signal->slot(), asio::as_tuple(use_awaitable)));
      ++completions;
      if (!ec) {
        ++granted;
        EXPECT_NE(mode, 2) << "an early cancellation lost";
        limiter_permit permit(limiter, std::adopt_lock);
        const int now = ++inside;
        int seen = max_inside.load();
        while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
        }
        if (rng() % 2 == 0) co_await asio::post(ex, use_awaitable);
        --inside;
      } else {
        ++aborted;
        EXPECT_EQ(ec, aborted_ec);
        EXPECT_GE(mode, 2) << "aborted without a cancellation";
      }
    }
    ++tasks_done;
  };
  for (int t = 0; t < kTasks; ++t) {
    asio::co_spawn(asio::make_strand(io), task(seed + 1 + t),
                   [](std::exception_ptr e) { EXPECT_FALSE(e); });
  }

  std::thread resizer([&] {
    std::mt19937_64 rng(seed);
    while (!stop_resizing.load()) {
      limiter.set_total_tokens(1 + rng() % kMaxTotal);
      std::this_thread::yield();
    }
  });

  ctxexec::detail::mutex mu;
  ctxexec::detail::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    ctxexec::detail::mutex_lock lock(mu);
    if (!cv.wait_for(
            mu, std::chrono::minutes(2),
            [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return finished; })) {
      const auto s = limiter.statistics();
      ADD_FAILURE() << "the stress did not finish (lost wakeup?): borrowed "
                    << s.borrowed_tokens << " total " << s.total_tokens
                    << " waiting " << s.tasks_waiting;
      io.stop();
    }
  });

  std::vector<std::thread> runners;
  for (int i = 1; i < kThreads; ++i) runners.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : runners) t.join();
  stop_resizing = true;
  resizer.join();
  {
    ctxexec::detail::mutex_lock lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();

  EXPECT_EQ(tasks_done.load(), kTasks);
  EXPECT_EQ(completions.load(), long{kTasks} * kRounds);
  EXPECT_EQ(granted.load() + aborted.load(), completions.load());
  EXPECT_LE(max_inside.load(), static_cast<int>(kMaxTotal));
  const ctxexec::limiter_statistics s = limiter.statistics();
  EXPECT_EQ(s.borrowed_tokens, 0u);
  EXPECT_EQ(s.tasks_waiting, 0u);
  std::cout << "[ limiter ] " << granted.load() << " granted, "
            << aborted.load() << " aborted\n";
}

}  // namespace

namespace {

// anyio 4.12: a total of 0 is valid, in the constructor and the setter:
// nothing new is granted until the total is raised (how one pauses).
TEST_F(CapacityLimiterTest, ZeroTokensGrantNothingUntilRaised) {
  asio::io_context io;
  capacity_limiter limiter(io, 0);
  expect_statistics(limiter, 0, 0, 0);
  EXPECT_FALSE(limiter.try_acquire());
  outcome first;
  limiter.async_acquire(first.handler());
  io.poll();
  EXPECT_EQ(first.calls, 0);
  expect_statistics(limiter, 0, 0, 1);
  limiter.set_total_tokens(1);  // resumes granting, in FIFO order
  expect_statistics(limiter, 1, 1, 0);
  io.restart();
  io.poll();
  EXPECT_EQ(first.calls, 1);
  EXPECT_FALSE(first.ec);

  // Lowered to 0 while a token is borrowed: the borrower keeps it, and
  // what it releases is not granted again until the total is raised.
  outcome second;
  limiter.async_acquire(second.handler());
  limiter.set_total_tokens(0);
  limiter.release();
  expect_statistics(limiter, 0, 0, 1);
  io.restart();
  io.poll();
  EXPECT_EQ(second.calls, 0);
  limiter.set_total_tokens(2);
  io.restart();
  io.poll();
  EXPECT_EQ(second.calls, 1);
  EXPECT_FALSE(second.ec);
  expect_statistics(limiter, 1, 2, 0);
  limiter.release();
  EXPECT_EQ(capacity_limiter(io.get_executor(), 0).total_tokens(), 0u);
}

// anyio raises at once when a borrower that holds a token asks the same
// limiter again; with one token the second request would otherwise wait
// for the borrower's own token forever. A ctxexec task is one borrower.
TEST_F(CapacityLimiterTest, BorrowingTwiceInOneTaskFailsAtOnce) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  error_code second;
  error_code while_waiting;
  bool done = false;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await limiter.async_acquire(use_awaitable);
        limiter_permit permit(limiter, std::adopt_lock);
        auto [ec] =
            co_await limiter.async_acquire(asio::as_tuple(use_awaitable));
        second = ec;
        expect_statistics(limiter, 1, 1, 0);  // nothing queued or taken
        try {
          (void)limiter.try_acquire();
          ADD_FAILURE() << "try_acquire() by a borrower that holds a token";
        } catch (const ctxexec::limiter_error& e) {
          EXPECT_EQ(e.code(), ctxexec::limiter_errc::already_borrowing);
        }
        EXPECT_THROW((void)limiter_permit::try_acquire(limiter),
                     ctxexec::limiter_error);
        permit.release();
        // Once its token is back, the task may borrow again.
        co_await limiter.async_acquire(use_awaitable);
        limiter.release();
        done = true;
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.poll();  // a refused request completes at once: nothing waits
  EXPECT_TRUE(done);
  EXPECT_EQ(second, ctxexec::limiter_errc::already_borrowing);
  expect_statistics(limiter, 0, 1, 0);

  // A task waiting for a token is a borrower too: a second request made
  // meanwhile (the first through a callback) is refused.
  ASSERT_TRUE(limiter.try_acquire());  // this thread's root context
  outcome queued;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        limiter.async_acquire(queued.handler());
        auto [ec] =
            co_await limiter.async_acquire(asio::as_tuple(use_awaitable));
        while_waiting = ec;
        expect_statistics(limiter, 1, 1, 1);
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.restart();
  io.poll();
  EXPECT_EQ(while_waiting, ctxexec::limiter_errc::already_borrowing);
  EXPECT_EQ(queued.calls, 0);
  limiter.release();  // to the queued callback
  io.restart();
  io.poll();
  EXPECT_EQ(queued.calls, 1);
  EXPECT_FALSE(queued.ec);
  limiter.release();
  expect_statistics(limiter, 0, 1, 0);
}

// What counts as a borrower: each task's context object, each
// context::run() scope; not a thread's root context, which every plain
// callback on the thread shares.
TEST_F(CapacityLimiterTest, EveryTaskAndContextIsItsOwnBorrower) {
  asio::io_context io;
  capacity_limiter limiter(io, 3);
  std::size_t peak = 0;
  auto task = [&]() -> awaitable<void> {
    co_await limiter.async_acquire(use_awaitable);
    limiter_permit permit(limiter, std::adopt_lock);
    peak = std::max(peak, limiter.statistics().borrowed_tokens);
    co_await asio::post(io, use_awaitable);
  };
  ctxexec::co_spawn(io, task, asio::detached);
  ctxexec::co_spawn(io, task, asio::detached);
  io.run();
  EXPECT_EQ(peak, 2u);  // both held one at once
  expect_statistics(limiter, 0, 3, 0);

  // Nested context::run() scopes are borrowers of their own.
  ctxexec::copy_context().run([&] {
    ASSERT_TRUE(limiter.try_acquire());
    EXPECT_THROW((void)limiter.try_acquire(), ctxexec::limiter_error);
    ctxexec::copy_context().run([&] {
      ASSERT_TRUE(limiter.try_acquire());
      limiter.release();
    });
    limiter.release();
  });

  // A plain asio::co_spawn coroutine runs in the thread's root context,
  // like every plain callback: not checked, it may hold several tokens.
  bool plain_done = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await limiter.async_acquire(use_awaitable);
        co_await limiter.async_acquire(use_awaitable);
        EXPECT_TRUE(limiter.try_acquire());
        expect_statistics(limiter, 3, 3, 0);
        for (int i = 0; i < 3; ++i) limiter.release();
        plain_done = true;
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.restart();
  io.run();
  EXPECT_TRUE(plain_done);
  expect_statistics(limiter, 0, 3, 0);
}

// A token that goes back some other way than its borrower's own release()
// never leaves the borrower refused: through a permit moved to another
// task, through release() in a plain callback, or by cancellation.
TEST_F(CapacityLimiterTest, ATokenReturnedElsewhereMayBeBorrowedAgain) {
  asio::io_context io;
  capacity_limiter limiter(io, 1);
  std::vector<error_code> outcomes;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        // A permit handed to another task, released there.
        co_await limiter.async_acquire(use_awaitable);
        limiter_permit permit(limiter, std::adopt_lock);
        ctxexec::co_spawn(
            io,
            [p = std::move(permit)]() mutable -> awaitable<void> {
              p.release();
              co_return;
            },
            asio::detached);
        auto [a] =
            co_await limiter.async_acquire(asio::as_tuple(use_awaitable));
        outcomes.push_back(a);

        // Released by a plain callback, in the loop thread's root context.
        asio::post(io, [&] { limiter.release(); });
        co_await asio::post(io, use_awaitable);  // after the callback
        auto [b] =
            co_await limiter.async_acquire(asio::as_tuple(use_awaitable));
        outcomes.push_back(b);

        // A cancelled request leaves nothing behind.
        asio::cancellation_signal cancel;
        limiter.async_acquire(asio::bind_cancellation_slot(
            cancel.slot(), [&](error_code ec) { outcomes.push_back(ec); }));
        cancel.emit(asio::cancellation_type::terminal);
        co_await asio::post(io, use_awaitable);
        limiter.release();
        auto [c] =
            co_await limiter.async_acquire(asio::as_tuple(use_awaitable));
        outcomes.push_back(c);
        limiter.release();
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.run();
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_FALSE(outcomes[0]);
  EXPECT_FALSE(outcomes[1]);
  EXPECT_EQ(outcomes[2], ctxexec::limiter_errc::already_borrowing);
  EXPECT_FALSE(outcomes[3]);
  expect_statistics(limiter, 0, 1, 0);
}

TEST_F(CapacityLimiterTest, StatisticsPrintAsOneLine) {
  asio::io_context io;
  ctxexec::capacity_limiter limiter(io, 3);
  ASSERT_TRUE(limiter.try_acquire());
  std::ostringstream os;
  os << limiter.statistics();
  EXPECT_EQ(os.str(), "borrowed=1/3 waiting=0");
  limiter.release();
}

}  // namespace
