#include <ctxexec/detail/refcount.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

namespace {

using ctxexec::detail::add_ref;
using ctxexec::detail::drop_ref;

TEST(RefcountTest, OnlyTheLastDropReportsLast) {
  std::atomic<std::uint32_t> refs{1};
  add_ref(refs);
  add_ref(refs);
  EXPECT_EQ(refs.load(), 3u);
  EXPECT_FALSE(drop_ref(refs));
  EXPECT_FALSE(drop_ref(refs));
  EXPECT_TRUE(drop_ref(refs));
}

}  // namespace
