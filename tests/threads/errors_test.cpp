#include <ctxexec/threads/errors.hpp>

#include <gtest/gtest.h>

#include <boost/system/error_code.hpp>

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

TEST(ThreadsErrorsTest, LimiterErrorsAreErrorCodesWithAnyiosWording) {
  const boost::system::error_code ec = ctxexec::limiter_errc::already_borrowing;
  EXPECT_EQ(ec.category(), ctxexec::limiter_category());
  EXPECT_STREQ(ec.category().name(), "ctxexec.limiter");
  EXPECT_EQ(ec.message(),
            "this borrower is already holding one of this CapacityLimiter's "
            "tokens");
  EXPECT_EQ(ec, ctxexec::limiter_errc::already_borrowing);
  EXPECT_NE(ec, ctxexec::limiter_errc::not_borrowing);
  EXPECT_EQ(make_error_code(ctxexec::limiter_errc::not_borrowing).message(),
            "this borrower isn't holding any of this CapacityLimiter's tokens");
  const ctxexec::limiter_error e(ctxexec::limiter_errc::not_borrowing, "msg");
  EXPECT_EQ(e.code(), ctxexec::limiter_errc::not_borrowing);
  EXPECT_STREQ(e.what(), "msg");
}

}  // namespace
