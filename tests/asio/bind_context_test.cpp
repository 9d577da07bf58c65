// Tests of ctxexec::bind_context: snapshots, explicit contexts, associators.

#include <ctxexec/asio/bind_context.hpp>

#include <ctxexec/asio.hpp>
#include <ctxexec/context_leak_check.hpp>
#include "../context_fixture.hpp"
#include "../run_loop.hpp"
#include "../sharing.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

namespace {

namespace asio = boost::asio;

class BindContextTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<int> task_id("task_id", -1);

TEST_F(BindContextTest, BindContextSnapshotsAtBindTime) {
  asio::io_context io;
  int seen = 0;
  auto t = task_id.set(11);
  auto h = ctxexec::bind_context([&] { seen = task_id.get(); });
  task_id.reset(t);
  asio::post(io, std::move(h));
  io.run();
  EXPECT_EQ(seen, 11);
}

TEST_F(BindContextTest, BindContextForwardsAssociatedExecutorAndAllocator) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  auto bound = ctxexec::bind_context(asio::bind_executor(strand, [] {}));
  EXPECT_TRUE(asio::get_associated_executor(bound) == strand);
  using alloc = asio::associated_allocator_t<decltype(bound)>;
  EXPECT_TRUE((std::is_same_v<alloc, std::allocator<void>>));
  asio::cancellation_signal signal;
  auto with_slot =
      ctxexec::bind_context(asio::bind_cancellation_slot(signal.slot(), [] {}));
  EXPECT_TRUE(asio::get_associated_cancellation_slot(with_slot) ==
              signal.slot());
}

TEST_F(BindContextTest, HandlerThrowingOutOfRunLeavesTheRootContext) {
  asio::io_context io;
  ctxexec::context ctx;
  ctx.run([] { (void)task_id.set(1); });
  ctxexec::context_leak_check before;
  asio::post(io, ctxexec::bind_context(ctx, [] {
               EXPECT_EQ(task_id.get(), 1);
               throw std::runtime_error("handler failed");
             }));
  int after = 0;
  asio::post(io, [&] { after = task_id.get(); });
  EXPECT_THROW(io.run(), std::runtime_error);
  EXPECT_TRUE(before.intact());
  EXPECT_EQ(task_id.get(), -1);
  io.restart();
  io.run();  // the remaining handler runs in the root context
  EXPECT_EQ(after, -1);
}

// A binder whose context object another thread has entered waits for it to
// be exited, then runs in it.
TEST_F(BindContextTest, BinderOfABusyContextWaitsForItsExit) {
  ctxexec::context_var<int> tag("tag", 0);
  ctxexec::context ctx;
  ctxexec_test::holder_thread holder(ctx, tag);
  int seen = 0;
  std::thread waiter(
      [&] { ctxexec::bind_context(ctx, [&] { seen = tag.get(); })(); });
  holder.wait_for_a_waiter();
  holder.release();
  waiter.join();
  EXPECT_EQ(seen, 2);
}

// Handlers bound to one context object and run by several threads at once
// take turns in it: no data race, no freed value read, and what each one
// set and reset leaves the object as it was.
TEST_F(BindContextTest, HandlersBoundToOneContextOnManyThreadsNeverRace) {
  constexpr int kHandlers = 4000;
  constexpr int kThreads = 4;
  ctxexec::context_var<std::string> tag("tag");
  ctxexec::context ctx;
  ctx.run([&] { (void)tag.set(ctxexec_test::flow_value("init", 0)); });
  asio::io_context io(kThreads);
  std::atomic<long> runs{0};
  std::atomic<long> bad{0};
  for (int i = 0; i < kHandlers; ++i) {
    asio::post(io, ctxexec::bind_context(ctx, [&, i] {
                 const std::string* before = tag.try_get();
                 if (before == nullptr ||
                     !ctxexec_test::is_flow_value(*before, {"init"}, 1)) {
                   ++bad;  // another handler's value: it ran at the same time
                 }
                 auto guard =
                     tag.scoped_set(ctxexec_test::flow_value("binder", i));
                 if (*tag.try_get() != ctxexec_test::flow_value("binder", i))
                   ++bad;
                 ++runs;
               }));
  }
  ctxexec_test::run_on_threads(io, kThreads);
  EXPECT_EQ(runs.load(), kHandlers);
  EXPECT_EQ(bad.load(), 0);
  ctx.run([&] { EXPECT_EQ(tag.get(), ctxexec_test::flow_value("init", 0)); });
}

}  // namespace
