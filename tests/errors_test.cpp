#include <ctxexec/errors.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <type_traits>

namespace {

TEST(ErrorsTest, HierarchyMatchesPythonCounterparts) {
  static_assert(std::is_base_of_v<std::out_of_range, ctxexec::lookup_error>);
  static_assert(std::is_base_of_v<std::invalid_argument, ctxexec::token_error>);
  static_assert(std::is_base_of_v<std::logic_error, ctxexec::context_error>);
  const ctxexec::token_error e(ctxexec::token_errc::different_var, "msg");
  EXPECT_EQ(e.code(), ctxexec::token_errc::different_var);
  EXPECT_STREQ(e.what(), "msg");
}

TEST(ErrorsTest, HeaderErrorIsAnInvalidArgument) {
  static_assert(
      std::is_base_of_v<std::invalid_argument, ctxexec::header_error>);
  const ctxexec::header_error e("tracestate: invalid key");
  EXPECT_STREQ(e.what(), "tracestate: invalid key");
}

}  // namespace
