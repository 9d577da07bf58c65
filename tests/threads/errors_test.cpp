#include <ctxexec/threads/errors.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <type_traits>

namespace {

TEST(ThreadsErrorsTest, HierarchyMatchesTheirMeaning) {
  // Misuse is a logic_error; a state of the world is a runtime_error.
  static_assert(std::is_base_of_v<std::logic_error, ctxexec::limiter_error>);
  static_assert(
      std::is_base_of_v<std::logic_error, ctxexec::wrong_thread_error>);
  static_assert(std::is_base_of_v<std::runtime_error, ctxexec::shutdown_error>);
  static_assert(
      std::is_base_of_v<std::runtime_error, ctxexec::starvation_error>);
  const ctxexec::starvation_error e("msg");
  EXPECT_STREQ(e.what(), "msg");
}

}  // namespace
