#include <ctxexec/detail/config.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>

namespace {

TEST(ConfigTest, PopcountMatchesTheStandardOne) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t x = rng();
    ASSERT_EQ(ctxexec::detail::popcount32(x),
              static_cast<unsigned>(std::popcount(x)))
        << x;
  }
  EXPECT_EQ(ctxexec::detail::popcount32(0), 0u);
  EXPECT_EQ(ctxexec::detail::popcount32(0xFFFFFFFFu), 32u);
}

}  // namespace
