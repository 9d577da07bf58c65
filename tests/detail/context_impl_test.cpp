#include <ctxexec/detail/context_impl.hpp>

#include <gtest/gtest.h>

#include <cstdint>

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
  EXPECT_EQ(c->state.load() & d::context_impl::kCountMask, 0u);
  EXPECT_NE(c->state.load() & d::context_impl::kEntered, 0u);
  d::exit(c);  // frees it
}

// A (pointer, generation) pair must never name two objects: an address
// whose generation cannot grow any more is retired, never handed out again.
// Here an object on the free list is given the last generation there is, as
// 2^N reuses would.
TEST(ContextImplTest, AnAddressIsRetiredBeforeItsGenerationWraps) {
  d::context_impl* c = d::allocate_context();
  d::release(c);  // on this thread's free list, at the head
  const std::uint64_t last_generation =
      ~std::uint64_t{0} >> d::context_impl::kGenerationShift;
  c->state.store(last_generation << d::context_impl::kGenerationShift);
  d::context_impl* next = d::allocate_context();
  EXPECT_NE(next, c);
  EXPECT_NE(next->generation(), 0u);
  d::release(next);
  for (int i = 0; i < 100; ++i) {  // and never again
    d::context_impl* again = d::allocate_context();
    EXPECT_NE(again, c);
    d::release(again);
  }
}

// Handle counts cannot overflow into the other fields of the state word:
// the handle beyond the limit ends the program with a clear message.
TEST(ContextImplDeathTest, HandlesBeyondTheLimitEndTheProgramWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        d::context_impl* c = d::allocate_context();
        for (std::uint64_t i = 0; i <= d::context_impl::kCountMask; ++i) {
          d::retain(c);
        }
      },
      "ctxexec: more than [0-9]+ handles to one context object");
}

}  // namespace
