#include <ctxexec/threads/blocking_pool.hpp>

#include <ctxexec/context_var.hpp>
#include <ctxexec/threads/capacity_limiter.hpp>
#include "context_fixture.hpp"
#include "sharing.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

ctxexec::context_var<int> pool_var("pool_var");
ctxexec::context_var<int> pool_other("pool_other");

class BlockingPoolTest : public ctxexec_test::ContextFixture {};

/// Waits until `pred()` holds, for at most `limit`: for effects that take
/// time by design (an idle timeout), never as synchronisation.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST_F(BlockingPoolTest, ItemRunsInItsContextAndTheWorkerReturnsToEmpty) {
  ctxexec::blocking_pool pool({.max_threads = 1});  // one worker: same thread
  auto guard = pool_var.scoped_set(7);
  std::promise<int> seen;
  std::promise<std::thread::id> worker;
  pool.submit(ctxexec::copy_context(), [&] {
    seen.set_value(pool_var.get());
    (void)pool_other.set(1);  // stays in the item's copy
    worker.set_value(std::this_thread::get_id());
  });
  EXPECT_EQ(seen.get_future().get(), 7);
  const auto worker_id = worker.get_future().get();
  EXPECT_NE(worker_id, std::this_thread::get_id());

  std::promise<bool> empty;
  std::promise<std::thread::id> same_worker;
  pool.submit([&] {  // no context: the worker's own
    empty.set_value(ctxexec::copy_context().size() == 0);
    same_worker.set_value(std::this_thread::get_id());
  });
  EXPECT_TRUE(empty.get_future().get());
  EXPECT_EQ(same_worker.get_future().get(), worker_id);
  EXPECT_EQ(pool_other.try_get(), nullptr);  // nothing flowed back
}

// An item whose context object another thread has entered waits for it to
// be exited, then runs in it: a pool thread may block; ending the process
// would not do.
TEST_F(BlockingPoolTest, ItemWaitsForAContextEnteredElsewhere) {
  ctxexec::context_var<int> tag("tag", 0);
  ctxexec::context ctx;
  ctxexec_test::holder_thread holder(ctx, tag);
  std::promise<int> seen;
  ctxexec::blocking_pool pool;
  pool.submit(ctx, [&] { seen.set_value(tag.get()); });
  holder.wait_for_a_waiter();
  holder.release();
  EXPECT_EQ(seen.get_future().get(), 2);
  pool.shutdown();
}

TEST_F(BlockingPoolTest, ThreadsStartOnDemandAndItemsRunConcurrently) {
  ctxexec::blocking_pool pool;
  constexpr int kItems = 6;
  std::latch all_started(kItems);
  std::latch release(1);
  for (int i = 0; i < kItems; ++i) {
    pool.submit([&] {
      all_started.count_down();
      release.wait();
    });
  }
  all_started.wait();  // would hang if items were serialised
  const auto s = pool.statistics();
  EXPECT_EQ(s.threads, static_cast<std::size_t>(kItems));
  EXPECT_EQ(s.running, static_cast<std::size_t>(kItems));
  EXPECT_EQ(s.queued, 0u);
  release.count_down();
  pool.shutdown();
  EXPECT_EQ(pool.statistics().threads, 0u);
}

TEST_F(BlockingPoolTest, IdleWorkerIsReused) {
  ctxexec::blocking_pool pool;
  for (int i = 0; i < 20; ++i) {
    std::promise<void> done;
    pool.submit([&] { done.set_value(); });
    done.get_future().wait();
    // The worker may not be waiting yet; it never needs a second thread
    // for strictly sequential items once it is.
    ASSERT_TRUE(eventually([&] { return pool.statistics().running == 0; }));
  }
  EXPECT_LE(pool.statistics().threads, 2u);
}

TEST_F(BlockingPoolTest, IdleTimeoutShrinksThePool) {
  ctxexec::blocking_pool pool({.idle_timeout = 20ms});
  constexpr int kItems = 3;
  std::latch all_started(kItems);
  for (int i = 0; i < kItems; ++i) {
    pool.submit([&] { all_started.arrive_and_wait(); });
  }
  all_started.wait();
  EXPECT_EQ(pool.statistics().threads, static_cast<std::size_t>(kItems));
  EXPECT_TRUE(eventually([&] { return pool.statistics().threads == 0; }))
      << "threads: " << pool.statistics().threads;
  // The pool still works after shrinking to nothing.
  std::promise<int> out;
  pool.submit([&] { out.set_value(5); });
  EXPECT_EQ(out.get_future().get(), 5);
}

TEST_F(BlockingPoolTest, ShutdownRunsQueuedAndRunningItemsThenJoins) {
  ctxexec::blocking_pool pool({.max_threads = 1});
  std::latch running(1);
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::atomic<int> ran{0};
  pool.submit([&] {
    running.count_down();
    gate_open.wait();
    ++ran;
  });
  running.wait();
  pool.submit([&] { ++ran; });  // queued behind the running one
  pool.submit([&] { ++ran; });
  EXPECT_EQ(pool.statistics().queued, 2u);
  auto stopped = std::async(std::launch::async, [&] { pool.shutdown(); });
  // shutdown() cannot finish while an item runs.
  EXPECT_EQ(stopped.wait_for(0s), std::future_status::timeout);
  gate.set_value();
  stopped.get();
  EXPECT_EQ(ran.load(), 3);  // nothing dropped
  const auto s = pool.statistics();
  EXPECT_EQ(s.threads, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_THROW(pool.submit([] {}), ctxexec::shutdown_error);
  pool.shutdown();  // idempotent
}

TEST_F(BlockingPoolTest, ShutdownFromAWorkerIsAnError) {
  ctxexec::blocking_pool pool;
  std::promise<bool> threw;
  pool.submit([&] {
    try {
      pool.shutdown();
      threw.set_value(false);
    } catch (const ctxexec::wrong_thread_error&) {
      threw.set_value(true);
    }
  });
  EXPECT_TRUE(threw.get_future().get());
}

TEST_F(BlockingPoolTest, RunningInThisThread) {
  ctxexec::blocking_pool pool;
  ctxexec::blocking_pool other;
  EXPECT_FALSE(pool.running_in_this_thread());
  std::promise<std::pair<bool, bool>> out;
  pool.submit([&] {
    out.set_value(
        {pool.running_in_this_thread(), other.running_in_this_thread()});
  });
  const auto [mine, theirs] = out.get_future().get();
  EXPECT_TRUE(mine);
  EXPECT_FALSE(theirs);
}

TEST_F(BlockingPoolTest, WarmPathRunsEveryItem) {
  ctxexec::blocking_pool pool({.spin = 5ms});
  std::atomic<int> sum{0};
  std::vector<std::promise<void>> done(200);
  for (int i = 0; i < 200; ++i) {
    pool.submit([&, i] {
      sum += i;
      done[i].set_value();
    });
    if (i % 2 == 0) done[i].get_future().wait();  // catch pollers mid-spin
  }
  for (int i = 1; i < 200; i += 2) done[i].get_future().wait();
  EXPECT_EQ(sum.load(), 199 * 200 / 2);
}

TEST_F(BlockingPoolTest, DefaultPoolIsOnePerExecutionContext) {
  boost::asio::io_context a;
  boost::asio::io_context b;
  EXPECT_EQ(&ctxexec::default_blocking_pool(a),
            &ctxexec::default_blocking_pool(a));
  EXPECT_NE(&ctxexec::default_blocking_pool(a),
            &ctxexec::default_blocking_pool(b));
  EXPECT_EQ(ctxexec::default_blocking_pool(a).options().idle_timeout,
            std::chrono::steady_clock::duration(10s));
  EXPECT_EQ(ctxexec::default_blocking_pool(a).options().spin,
            std::chrono::steady_clock::duration::zero());
  EXPECT_EQ(ctxexec::default_blocking_pool(a).options().linger,
            std::chrono::steady_clock::duration(50us));
  ctxexec::default_blocking_pool(a).set_spin(50us);  // the warm path, later
  EXPECT_EQ(ctxexec::default_blocking_pool(a).options().spin,
            std::chrono::steady_clock::duration(50us));
}

}  // namespace

namespace {

TEST_F(BlockingPoolTest, ItemsWithoutAContextNeverSeeEachOthersValues) {
  ctxexec::blocking_pool pool({.max_threads = 1});  // the same worker
  std::promise<void> first;
  pool.submit([&] {
    (void)pool_var.set(42);  // into the item's fresh context
    first.set_value();
  });
  first.get_future().wait();
  std::promise<bool> second;
  pool.submit([&] { second.set_value(pool_var.try_get() == nullptr); });
  EXPECT_TRUE(second.get_future().get());
}

// A poller must not hold shutdown() up for its whole polling time (an hour
// here: the test would time out).
TEST_F(BlockingPoolTest, ShutdownStopsAPollingWorker) {
  ctxexec::blocking_pool pool({.spin = std::chrono::hours(1)});
  std::promise<void> done;
  pool.submit([&] { done.set_value(); });
  done.get_future().wait();
  pool.shutdown();
  EXPECT_EQ(pool.statistics().threads, 0u);
}

TEST_F(BlockingPoolTest,
       DefaultLimiterKeepsTheLoopsExecutorWhateverComesFirst) {
  boost::asio::io_context io;
  ctxexec::default_blocking_pool(io).set_spin(50us);  // the pool first
  auto ex = ctxexec::default_thread_limiter(io).get_executor();
  EXPECT_NE(ex.target<boost::asio::io_context::executor_type>(), nullptr);
}

}  // namespace

namespace {

// The last owner of a pool lets go of it inside one of its own items (an
// io_context destroyed from an item does this to its default pool): the
// pool cannot join itself, so it stops accepting items and its workers
// finish and exit on their own.
TEST_F(BlockingPoolTest, DestroyedFromItsOwnWorkerFinishesDetached) {
  auto pool = std::make_shared<ctxexec::blocking_pool>();
  std::latch released(1);
  std::promise<bool> destroyed;
  pool->submit([&, owner = pool]() mutable {
    released.wait();
    owner.reset();  // the last reference: ~blocking_pool on its own worker
    destroyed.set_value(true);
  });
  pool.reset();
  released.count_down();
  EXPECT_TRUE(destroyed.get_future().get());
}

TEST_F(BlockingPoolTest, StatisticsPrintAsOneLine) {
  ctxexec::blocking_pool pool;
  std::ostringstream os;
  os << pool.statistics();
  EXPECT_EQ(os.str(), "threads=0 idle=0 running=0 queued=0");
}

}  // namespace
