// Tests of ctxexec::detail::current_borrower: who borrows a limiter token.

#include <ctxexec/threads/detail/borrower.hpp>

#include <ctxexec/context.hpp>
#include "context_fixture.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace {

using ctxexec::detail::borrower_id;
using ctxexec::detail::current_borrower;

class BorrowerTest : public ctxexec_test::ContextFixture {};

TEST_F(BorrowerTest, RootContextIsAnonymousAndEachContextObjectABorrower) {
  EXPECT_TRUE(current_borrower().anonymous());  // this thread's root
  std::thread([] { EXPECT_TRUE(current_borrower().anonymous()); }).join();

  ctxexec::context ctx = ctxexec::copy_context();
  borrower_id first;
  ctx.run([&] { first = current_borrower(); });
  EXPECT_FALSE(first.anonymous());
  borrower_id again;
  ctx.run([&] { again = current_borrower(); });
  EXPECT_EQ(again, first);  // the same object: the same borrower

  borrower_id other;
  ctxexec::copy_context().run([&] { other = current_borrower(); });
  EXPECT_FALSE(other.anonymous());
  EXPECT_NE(other, first);
  EXPECT_TRUE(current_borrower().anonymous());
}

// Context objects are recycled: a new one at a recycled address is a new
// borrower, because the generation differs.
TEST_F(BorrowerTest, ARecycledContextObjectIsANewBorrower) {
  borrower_id before;
  ctxexec::copy_context().run([&] { before = current_borrower(); });
  bool recycled = false;
  for (int i = 0; i < 1000 && !recycled; ++i) {
    ctxexec::copy_context().run([&] {
      const borrower_id now = current_borrower();
      if (now.object == before.object) {
        recycled = true;
        EXPECT_NE(now.generation, before.generation);
        EXPECT_NE(now, before);
      }
    });
  }
  EXPECT_TRUE(recycled) << "no context object was reused";
}

}  // namespace
