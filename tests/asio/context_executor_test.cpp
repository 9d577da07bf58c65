// Tests of ctxexec::context_executor: size, properties, no nesting, and
// executors that outlive their context object.

#include <ctxexec/asio/context_executor.hpp>

#include <ctxexec/asio.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

namespace asio = boost::asio;

class ContextExecutorTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<int> task_id("task_id", -1);

TEST_F(ContextExecutorTest, ContextExecutorIsSmallAndNeverNests) {
  asio::io_context io;
  using ex_t = ctxexec::context_executor<asio::io_context::executor_type>;
  static_assert(sizeof(ex_t) <= 24);
  ctxexec::context a;
  ctxexec::context b;
  auto ex = ctxexec::make_context_executor(io.get_executor(), a);
  auto again = ctxexec::make_context_executor(ex, b);
  static_assert(std::is_same_v<decltype(again), ex_t>);
  EXPECT_TRUE(again.get_context() == b);
  EXPECT_TRUE(ctxexec::unwrap(ex) == io.get_executor());
  EXPECT_TRUE(ex == ctxexec::make_context_executor(io.get_executor(), a));
  EXPECT_FALSE(ex == again);
  // Properties are forwarded, executors re-wrapped.
  auto never = asio::require(ex, asio::execution::blocking.never);
  EXPECT_TRUE(never.get_context() == a);
  EXPECT_EQ(&asio::query(ex, asio::execution::context), &io);
  asio::any_io_executor any = ex;
  EXPECT_TRUE(any.target<ex_t>() != nullptr);
  // A coroutine's any_io_executor is looked through, too.
  EXPECT_TRUE(ctxexec::unwrap(any) == asio::any_io_executor(io.get_executor()));
}

// An executor copy may outlive its context object: work run through it then
// runs in the executing thread's own context, never in a freed or reused
// object (context objects are recycled, so a reuse is likely here).
TEST_F(ContextExecutorTest, ExecutorOutlivingItsContextNeverDangles) {
  asio::io_context io;
  std::vector<int> seen;
  auto ctx = std::make_unique<ctxexec::context>();
  ctx->run([] { (void)task_id.set(1); });
  auto ex = ctxexec::make_context_executor(io.get_executor(), *ctx);
  asio::post(ex, [&] { seen.push_back(task_id.get()); });
  io.run();
  ctx.reset();  // the last handle: the object is recycled
  EXPECT_FALSE(ex.get_context().size() != 0);
  std::vector<ctxexec::context> fresh(8);  // likely reuse the object
  for (auto& f : fresh) f.run([] { (void)task_id.set(2); });
  asio::post(ex, [&] { seen.push_back(task_id.get()); });
  io.restart();
  io.run();
  EXPECT_EQ(seen, (std::vector<int>{1, -1}));
}

// Threads race to run work through executors whose context objects another
// thread keeps dropping and recreating (for TSan).
TEST_F(ContextExecutorTest, PinningRacesWithTheLastHandleGoingAway) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::atomic<long> wrong{0};
  std::atomic<long> ran{0};
  std::vector<std::thread> runners;
  for (int t = 0; t < 2; ++t) runners.emplace_back([&] { io.run(); });
  for (int round = 0; round < 500; ++round) {
    ctxexec::context ctx;
    ctx.run([&] { (void)task_id.set(round); });
    auto ex = ctxexec::make_context_executor(io.get_executor(), ctx);
    for (int k = 0; k < 4; ++k) {
      asio::post(ex, [&wrong, &ran, round] {
        const int v = task_id.get();
        if (v != round && v != -1) ++wrong;  // its own context, or none
        ++ran;
      });
    }
  }  // each ctx dies while its work may still be queued or running
  guard.reset();
  for (auto& th : runners) th.join();
  EXPECT_EQ(ran.load(), 2000);
  EXPECT_EQ(wrong.load(), 0);
}

// A stale executor dispatched inline from inside another context object
// that reuses its address must not run in that object.
TEST_F(ContextExecutorTest,
       StaleExecutorNeverRunsInTheObjectReusingItsAddress) {
  // On its own thread, whose root context the stale work may change.
  std::thread([] {
    auto ctx = std::make_unique<ctxexec::context>();
    auto ex = ctxexec::make_context_executor(asio::system_executor(), *ctx);
    ctx.reset();
    for (int i = 0; i < 16; ++i) {  // some new object reuses the address
      int seen = 0;
      int after = 0;
      ctxexec::context fresh;
      fresh.run([&] {
        auto g = task_id.scoped_set(42);
        asio::dispatch(ex, [&] {  // the system executor runs it inline
          seen = task_id.get();
          (void)task_id.set(7);  // lands in the thread's own context
        });
        after = task_id.get();
      });
      EXPECT_NE(seen, 42);  // never the reusing object's value
      EXPECT_EQ(after, 42);
    }
    EXPECT_EQ(task_id.get(), 7);  // the stale work's value: in the root
  }).join();
}

}  // namespace

// Over a strand of an io_context the adaptor is 16 bytes (it shares a
// binding of the strand and the context among its copies) and keeps every
// strand and context guarantee.
class StrandContextExecutorTest : public ctxexec_test::ContextFixture {};

TEST_F(StrandContextExecutorTest, FitsTheSmallBufferAndKeepsItsProperties) {
  asio::io_context io;
  using strand_t = asio::strand<asio::io_context::executor_type>;
  using ex_t = ctxexec::context_executor<strand_t>;
  static_assert(sizeof(ex_t) <= 24);
  strand_t strand = asio::make_strand(io);
  ctxexec::context a;
  ctxexec::context b;
  ex_t ex = ctxexec::make_context_executor(strand, a);
  EXPECT_TRUE(ex.get_inner_executor() == strand);
  EXPECT_TRUE(ctxexec::unwrap(ex) == strand);
  EXPECT_TRUE(ex.get_context() == a);
  ex_t copy = ex;
  EXPECT_TRUE(copy == ex);
  EXPECT_TRUE(ex == ctxexec::make_context_executor(strand, a));  // own binding
  EXPECT_FALSE(ex == ctxexec::make_context_executor(strand, b));
  EXPECT_FALSE(ex == ctxexec::make_context_executor(asio::make_strand(io), a));
  // Properties: forwarded, re-wrapped with the same strand and context.
  auto never = asio::require(ex, asio::execution::blocking.never);
  EXPECT_EQ(asio::query(never, asio::execution::blocking),
            asio::execution::blocking.never);
  EXPECT_TRUE(never.get_inner_executor() ==
              asio::require(strand, asio::execution::blocking.never));
  EXPECT_TRUE(never.get_context() == a);
  auto tracked = asio::prefer(ex, asio::execution::outstanding_work.tracked);
  EXPECT_EQ(asio::query(tracked, asio::execution::outstanding_work),
            asio::execution::outstanding_work.tracked);
  EXPECT_TRUE(tracked.get_context() == a);
  EXPECT_EQ(&asio::query(ex, asio::execution::context), &io);
  asio::any_io_executor any = ex;
  EXPECT_TRUE(any.target<ex_t>() != nullptr);
  EXPECT_TRUE(ctxexec::unwrap(any) == asio::any_io_executor(strand));
  // A moved-from adaptor may be destroyed or assigned to.
  ex_t moved = std::move(copy);
  copy = moved;
  EXPECT_TRUE(copy == ex);
}

TEST_F(StrandContextExecutorTest, SerialisesAndRunsInTheContextOnManyThreads) {
  asio::io_context io(4);
  auto strand = asio::make_strand(io);
  ctxexec::context ctx = ctxexec::copy_context();
  ctx.run([] { (void)task_id.set(5); });
  auto ex = ctxexec::make_context_executor(strand, ctx);
  std::atomic<int> inside{0};
  int counter = 0;  // unsynchronised: the strand is the synchronisation
  std::atomic<int> wrong{0};
  for (int i = 0; i < 2000; ++i) {
    // Alternate the property variants the binding keeps.
    auto target = (i % 2 == 0) ? asio::any_io_executor(ex)
                               : asio::any_io_executor(asio::require(
                                     ex, asio::execution::blocking.never));
    asio::post(target, [&] {
      if (inside.fetch_add(1) != 0) ++wrong;
      if (task_id.get() != 5 || !ex.running_in_this_thread()) ++wrong;
      ++counter;
      inside.fetch_sub(1);
    });
  }
  EXPECT_FALSE(ex.running_in_this_thread());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 2000);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(task_id.get(), -1);
}

TEST_F(StrandContextExecutorTest, OutlivingItsContextNeverDangles) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  auto ctx = std::make_unique<ctxexec::context>(ctxexec::copy_context());
  ctx->run([] { (void)task_id.set(9); });
  auto ex = ctxexec::make_context_executor(strand, *ctx);
  ctx.reset();  // the executor (and its binding) outlive the context object
  EXPECT_EQ(ex.get_context().size(), 0u);  // an empty handle
  int seen = 0;
  asio::post(ex, [&] { seen = task_id.get(); });
  io.run();
  EXPECT_EQ(seen, -1);  // the thread's own context, not a dangling one
}
