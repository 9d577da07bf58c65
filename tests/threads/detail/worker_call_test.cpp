// Tests of ctxexec::detail::worker_call: the per-call state a
// run_sync_with_context function carries (its token's limiter, and the
// from_thread::run tasks cancelled with it).

#include <ctxexec/threads/detail/worker_call.hpp>

#include <ctxexec/context.hpp>
#include "context_fixture.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace {

using ctxexec::detail::worker_call;

class WorkerCallTest : public ctxexec_test::ContextFixture {};

struct counted_task final : worker_call::task {
  int cancels = 0;
  void cancel() override { ++cancels; }
};

TEST_F(WorkerCallTest, CancellingTheCallCancelsItsTasksAndLaterOnes) {
  const int limiter = 0;
  worker_call call(&limiter);
  EXPECT_EQ(call.limiter(), &limiter);
  auto running = std::make_shared<counted_task>();
  auto finished = std::make_shared<counted_task>();
  EXPECT_TRUE(call.add(running));
  EXPECT_TRUE(call.add(finished));
  call.remove(finished.get());  // completed: not cancelled any more
  call.cancel_tasks();
  EXPECT_EQ(running->cancels, 1);
  EXPECT_EQ(finished->cancels, 0);
  auto later = std::make_shared<counted_task>();
  EXPECT_FALSE(call.add(later));  // its starter cancels it itself
  call.cancel_tasks();            // each task is cancelled once
  EXPECT_EQ(running->cancels, 1);
}

TEST_F(WorkerCallTest, TheCurrentCallIsTheActiveOneOfTheContext) {
  EXPECT_EQ(ctxexec::detail::current_worker_call(), nullptr);
  auto call = std::make_shared<worker_call>(nullptr);
  ctxexec::copy_context().run([&] {
    (void)ctxexec::detail::worker_call_var().set(call);
    EXPECT_EQ(ctxexec::detail::current_worker_call(), call);
    call->finish();  // the function returned: code it reached holds nothing
    EXPECT_FALSE(call->active());
    EXPECT_EQ(ctxexec::detail::current_worker_call(), nullptr);
  });
  EXPECT_EQ(ctxexec::detail::current_worker_call(), nullptr);
}

}  // namespace
