// Tests of ctxexec::context_executor: size, properties, no nesting, and
// executors that outlive their context object.

#include <ctxexec/asio/context_executor.hpp>

#include <ctxexec/asio.hpp>
#include "../context_fixture.hpp"
#include "../run_loop.hpp"
#include "../sharing.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <latch>
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

// Plain handlers through a task's own executor (as every timer or socket
// callback built from `co_await this_coro::executor` is) run in the task's
// context object: never on two threads at once with the task, and a value
// the task set is still there after its own co_await.
TEST_F(ContextExecutorTest, PlainHandlersThroughTheTasksExecutorNeverRace) {
  constexpr int kIterations = 3000;
  constexpr int kThreads = 3;
  ctxexec::context_var<std::string> tag("tag");
  asio::io_context io(kThreads);
  std::atomic<long> reads{0};
  std::atomic<long> bad{0};
  std::atomic<long> lost{0};
  auto valid = [&] {
    ++reads;
    const std::string* v = tag.try_get();
    return v != nullptr &&
           ctxexec_test::is_flow_value(*v, {"task", "handler"}, kIterations);
  };
  ctxexec::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // Stays while the handlers may run: the task waits for them below.
        auto base = tag.scoped_set(ctxexec_test::flow_value("task", 0));
        for (int i = 0; i < kIterations; ++i) {
          auto guard = tag.scoped_set(ctxexec_test::flow_value("task", i));
          asio::post(ex, [&] {  // a reader
            if (!valid()) ++bad;
          });
          asio::post(ex, [&, i] {  // a writer, which resets what it set
            auto g = tag.scoped_set(ctxexec_test::flow_value("handler", i));
            if (!valid()) ++bad;
          });
          co_await asio::post(ex, asio::use_awaitable);
          if (*tag.try_get() != ctxexec_test::flow_value("task", i)) ++lost;
        }
        while (reads.load() < 2 * kIterations) {
          co_await asio::post(ex, asio::use_awaitable);
        }
      },
      asio::detached);
  ctxexec_test::run_on_threads(io, kThreads);
  EXPECT_EQ(reads.load(), 2 * kIterations);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(lost.load(), 0);
}

template <class MakeExecutor>
void expect_work_waits_its_turn(MakeExecutor make_executor) {
  ctxexec::context_var<int> tag("tag", 0);
  asio::io_context io(1);
  ctxexec::context ctx;
  ctxexec_test::holder_thread holder(ctx, tag);
  int seen = 0;
  bool after_holder = false;
  asio::post(make_executor(io, ctx), [&] {
    seen = tag.get();
    after_holder = holder.done();
    (void)tag.set(3);  // in ctx itself
  });
  std::thread loop([&] { io.run(); });
  holder.wait_for_a_waiter();
  holder.release();
  loop.join();  // io.run() returns once the work has run
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(after_holder);
  ctx.run([&] { EXPECT_EQ(tag.get(), 3); });
}

TEST_F(ContextExecutorTest, WorkForABusyContextIsResubmittedWhenItIsExited) {
  expect_work_waits_its_turn([](asio::io_context& io, ctxexec::context& ctx) {
    return ctxexec::make_context_executor(io.get_executor(), ctx);
  });
}

TEST_F(ContextExecutorTest, WorkForABusyContextOnAStrandWaitsOnItsThread) {
  expect_work_waits_its_turn([](asio::io_context& io, ctxexec::context& ctx) {
    return ctxexec::make_context_executor(asio::make_strand(io), ctx);
  });
}

TEST_F(ContextExecutorTest, WorkForABusyContextOverAnyExecutorWaitsToo) {
  expect_work_waits_its_turn([](asio::io_context& io, ctxexec::context& ctx) {
    return ctxexec::make_context_executor(
        asio::any_io_executor(io.get_executor()), ctx);
  });
}

// Work for a context object that this very thread has entered (not
// current: another context runs inside it) runs in it at once: waiting
// would wait for itself.
TEST_F(ContextExecutorTest, WorkForAnObjectThisThreadHasEnteredRunsInIt) {
  ctxexec::context_var<int> tag("tag", 0);
  ctxexec::context outer;
  ctxexec::context inner;
  auto ex = ctxexec::make_context_executor(asio::system_executor(), outer);
  int seen = -1;
  outer.run([&] {
    (void)tag.set(1);
    inner.run([&] {
      asio::dispatch(ex, [&] {  // inline, on this thread
        seen = tag.get();
        (void)tag.set(2);
      });
      EXPECT_EQ(tag.get(), 0);  // inner is current again
    });
    EXPECT_EQ(tag.get(), 2);
  });
  EXPECT_EQ(seen, 1);
}

// Work that arrives for a context object that no longer exists runs in a
// fresh, empty context: what it sets reaches nobody, neither the next such
// work nor the thread's plain handlers.
TEST_F(ContextExecutorTest, WorkForAGoneContextRunsInAFreshEmptyContext) {
  ctxexec::context_var<std::string> tag("tag");
  asio::io_context io(1);
  auto ctx = std::make_unique<ctxexec::context>();
  auto ex = ctxexec::make_context_executor(io.get_executor(), *ctx);
  ctx.reset();
  std::vector<std::string> seen;
  auto look = [&] {
    const std::string* v = tag.try_get();
    seen.push_back(v != nullptr ? *v : "<none>");
  };
  asio::post(ex, [&] {
    look();
    (void)tag.set("orphan-write");
  });
  asio::post(ex, look);
  asio::post(io, look);
  std::thread([&] { io.run(); }).join();  // a thread whose root is fresh
  EXPECT_EQ(seen, (std::vector<std::string>{"<none>", "<none>", "<none>"}));
}

// A stale executor dispatched inline from inside another context object
// that reuses its address must not run in that object, nor leave anything
// behind in the thread's own context.
TEST_F(ContextExecutorTest,
       StaleExecutorNeverRunsInTheObjectReusingItsAddress) {
  // On its own thread, whose root context the stale work must not change.
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
          (void)task_id.set(7);  // lands in a fresh context of its own
        });
        after = task_id.get();
      });
      EXPECT_EQ(seen, -1);  // an empty context: the default
      EXPECT_EQ(after, 42);
    }
    EXPECT_EQ(task_id.get(), -1);  // the root never saw the stale work
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

// A moved-from adaptor is safe to compare, assign to and destroy, as Asio's
// own strand is; it names no context and runs on no thread.
TEST_F(StrandContextExecutorTest, MovedFromIsSafeToCompareAssignAndDestroy) {
  asio::io_context io;
  using strand_t = asio::strand<asio::io_context::executor_type>;
  using ex_t = ctxexec::context_executor<strand_t>;
  ctxexec::context ctx;
  ex_t ex = ctxexec::make_context_executor(asio::make_strand(io), ctx);
  ex_t a = ex;
  ex_t b = std::move(a);
  EXPECT_TRUE(a == a);
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(b == a);
  EXPECT_TRUE(b == ex);
  ex_t c = std::move(b);
  EXPECT_TRUE(a == b);  // both moved-from, like two moved-from strands
  EXPECT_FALSE(a.running_in_this_thread());
  ctxexec::context none = a.get_context();  // an empty handle
  EXPECT_THROW(none.run([] {}), ctxexec::context_error);
  a = c;
  EXPECT_TRUE(a == ex);
  b = std::move(c);
  EXPECT_TRUE(b == ex);
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
