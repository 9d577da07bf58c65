// The limits of the context object's state word, in a build that makes them
// small (CTXEXEC_DETAIL_GENERATION_BITS=3, CTXEXEC_DETAIL_HANDLE_LIMIT=100),
// so that they are reached in a few steps: an address is retired after its
// last generation, and the handle beyond the limit ends the program.

#include <ctxexec/context.hpp>

#include <ctxexec/detail/context_impl.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

namespace {

namespace d = ctxexec::detail;

TEST(ContextLimitsTest, AnAddressIsUsedOncePerGenerationThenRetired) {
  // One thread's free list is LIFO: the same address comes back each time,
  // until it has used every generation.
  std::set<std::pair<const void*, std::uint64_t>> names;
  d::context_impl* first = d::allocate_context();
  const void* address = first;
  d::release(first);
  int uses = 1;
  for (int i = 0; i < 40; ++i) {
    d::context_impl* c = d::allocate_context();
    EXPECT_TRUE(names.insert({c, c->generation()}).second)
        << "a (pointer, generation) pair came back";
    if (c == address) ++uses;
    d::release(c);
  }
  // Generations 1 to 7 with 3 bits: the address served 7 times at most.
  EXPECT_LE(uses, 7);
  EXPECT_GE(uses, 6);
}

TEST(ContextLimitsTest, AStaleNameNeverReachesALaterObject) {
  ctxexec::context ctx;
  d::context_impl* c = d::context_access::impl(ctx);
  const std::uint64_t generation = c->generation();
  ctx = ctxexec::context();  // the named object dies
  for (int i = 0; i < 40; ++i) {
    ctxexec::context later;  // reuses addresses, wraps nothing
    EXPECT_FALSE(d::try_pin(c, generation));
  }
}

TEST(ContextLimitsDeathTest, TheHandleBeyondTheLimitEndsTheProgram) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ctxexec::context ctx;
        std::vector<ctxexec::context> copies(200, ctx);
      },
      "ctxexec: more than 100 handles to one context object");
}

}  // namespace
