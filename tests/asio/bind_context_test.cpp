// Tests of ctxexec::bind_context: snapshots, explicit contexts, associators.

#include <ctxexec/asio/bind_context.hpp>

#include <ctxexec/asio.hpp>
#include <ctxexec/context_leak_check.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <stdexcept>
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

}  // namespace
