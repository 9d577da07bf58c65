#include <ctxexec/context_leak_check.hpp>

#include <ctxexec/context.hpp>
#include <ctxexec/context_var.hpp>

#include <gtest/gtest.h>

namespace {

using ctxexec::context_leak_check;
using ctxexec::context_var;

TEST(ContextLeakCheckTest, IntactWhenSetIsUndone) {
  context_var<int> v("v");
  context_leak_check check;
  EXPECT_TRUE(check.intact());
  auto t = v.set(1);
  EXPECT_FALSE(check.intact());
  v.reset(t);
  EXPECT_TRUE(check.intact());
}

TEST(ContextLeakCheckTest, DetectsAReplacedValueOfTheSameSize) {
  context_var<int> v("v");
  auto t0 = v.set(1);
  {
    context_leak_check check;
    auto t = v.set(2);  // same number of entries, different value
    EXPECT_FALSE(check.intact());
    v.reset(t);
    EXPECT_TRUE(check.intact());
  }
  v.reset(t0);
}

TEST(ContextLeakCheckTest, DetectsALeftoverValue) {
  context_var<int> v("v");
  ctxexec::context ctx;
  ctx.run([&] {
    context_leak_check check;
    (void)v.set(1);  // deliberately not reset
    EXPECT_FALSE(check.intact());
    check.dismiss();
  });
}

TEST(ContextLeakCheckTest, DetectsADifferentCurrentContext) {
  context_leak_check outer;
  ctxexec::context ctx;
  ctx.run([&] { EXPECT_FALSE(outer.intact()); });
  EXPECT_TRUE(outer.intact());
}

}  // namespace
