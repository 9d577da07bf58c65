// Tests of ctxexec::detail::mutex, mutex_lock and condition_variable. In the
// tsan preset they prove that TSan sees the mutex's happens-before edges:
// the guarded data below is plain (non-atomic) and would be reported as
// racing otherwise (mutex_tsan_negative_test shows that it is).

#include <ctxexec/threads/detail/mutex.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using ctxexec::detail::condition_variable;
using ctxexec::detail::mutex;
using ctxexec::detail::mutex_lock;

// Annotated state, as a class using the mutex declares it: -Wthread-safety
// checks every access below.
struct guarded_counter {
  mutex mu;
  condition_variable cv;
  long value ABSL_GUARDED_BY(mu) = 0;
  bool ready ABSL_GUARDED_BY(mu) = false;
  int waiters ABSL_GUARDED_BY(mu) = 0;
};

TEST(MutexTest, CounterGuardedByTheMutexIsExact) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 20000;
  guarded_counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < kIncrements; ++i) {
        mutex_lock lock(c.mu);
        ++c.value;
      }
    });
  }
  for (auto& t : threads) t.join();
  mutex_lock lock(c.mu);
  EXPECT_EQ(c.value, long{kThreads} * kIncrements);
}

// std::lock_guard carries no thread-safety attributes, so the analysis
// cannot follow it.
void set_under_lock_guard(guarded_counter& c,
                          long v) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::lock_guard<mutex> lock(c.mu);
  c.value = v;
}

TEST(MutexTest, WorksWithStdLockGuardAndTryLock) {
  guarded_counter c;
  set_under_lock_guard(c, 1);
  // Held by another thread: try_lock fails there.
  c.mu.lock();
  bool other_got_it = false;
  std::thread([&] {
    if (c.mu.try_lock()) {
      other_got_it = true;
      c.mu.unlock();
    }
  }).join();
  c.mu.unlock();
  EXPECT_FALSE(other_got_it);
  ASSERT_TRUE(c.mu.try_lock());
  c.mu.assert_held();
  EXPECT_EQ(c.value, 1);
  c.mu.unlock();
}

// A hand-off through the condition: the reader touches the writer's plain
// data only after waking. TSan sees the order only through the wrapper.
TEST(MutexTest, WaitWithPredicateSeesTheNotifiersWrites) {
  guarded_counter c;
  std::thread writer([&c] {
    mutex_lock lock(c.mu);
    c.value = 42;
    c.ready = true;
    c.cv.notify_one();
  });
  long seen;
  {
    mutex_lock lock(c.mu);
    c.cv.wait(c.mu,
              [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.ready; });
    seen = c.value;
    c.value = 43;  // a write after the writer's: ordered, no race
  }
  writer.join();
  EXPECT_EQ(seen, 42);
}

TEST(MutexTest, NotifyAllWakesEveryWaiter) {
  constexpr int kWaiters = 4;
  guarded_counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < kWaiters; ++t) {
    threads.emplace_back([&c] {
      mutex_lock lock(c.mu);
      ++c.waiters;
      c.cv.notify_all();  // tells the main thread one more waits
      c.cv.wait(c.mu,
                [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.ready; });
      ++c.value;
    });
  }
  {
    mutex_lock lock(c.mu);
    c.cv.wait(c.mu, [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) {
      return c.waiters == kWaiters;
    });
    c.ready = true;
  }
  c.cv.notify_all();
  for (auto& t : threads) t.join();
  mutex_lock lock(c.mu);
  EXPECT_EQ(c.value, kWaiters);
}

TEST(MutexTest, TimedWaitsTimeOutWithoutANotification) {
  guarded_counter c;
  mutex_lock lock(c.mu);
  const auto start = std::chrono::steady_clock::now();
  // Without a predicate: false means timed out (a spurious wake-up may
  // return true, so only the predicate forms are asserted strictly).
  (void)c.cv.wait_for(c.mu, std::chrono::milliseconds(1));
  EXPECT_FALSE(c.cv.wait_for(
      c.mu, std::chrono::milliseconds(20),
      [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.ready; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(20));
  EXPECT_FALSE(c.cv.wait_until(
      c.mu, std::chrono::steady_clock::now(),
      [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.ready; }));
}

TEST(MutexTest, TimedWaitReturnsTrueOnceThePredicateHolds) {
  guarded_counter c;
  std::thread notifier([&c] {
    mutex_lock lock(c.mu);
    c.ready = true;
    c.value = 7;
    c.cv.notify_one();
  });
  {
    mutex_lock lock(c.mu);
    // Generous: the notifier always comes, the bound only stops a hang.
    EXPECT_TRUE(c.cv.wait_for(
        c.mu, std::chrono::minutes(5),
        [&c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.ready; }));
    EXPECT_EQ(c.value, 7);
  }
  notifier.join();
}

}  // namespace
