#include <ctxexec/detail/context_impl.hpp>

#include <gtest/gtest.h>

namespace {

namespace d = ctxexec::detail;

TEST(ContextImplTest, RecycledObjectsGetANewGeneration) {
  d::context_impl* c = d::allocate_context();
  const std::uint64_t generation = c->generation();
  d::release(c);
  d::context_impl* again = d::allocate_context();  // the local free list
  EXPECT_EQ(again, c);
  EXPECT_NE(again->generation(), generation);
  d::release(again);
}

TEST(ContextImplTest, EnteringIsExclusiveAndExitFreesAnOrphan) {
  d::context_impl* c = d::allocate_context();
  ASSERT_TRUE(d::try_enter(c));
  EXPECT_FALSE(d::try_enter(c));
  d::release(c);  // last handle dropped while entered: not freed yet
  EXPECT_EQ(c->state.load() & d::context_impl::kLowMask,
            d::context_impl::kEntered);
  d::exit(c);  // frees it
}

}  // namespace
