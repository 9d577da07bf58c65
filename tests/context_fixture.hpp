// tests/context_fixture.hpp: the base fixture of the ctxexec tests. Every
// test checks that it leaves the thread's context as it found it.

#ifndef CTXEXEC_TESTS_CONTEXT_FIXTURE_HPP
#define CTXEXEC_TESTS_CONTEXT_FIXTURE_HPP

#include <ctxexec/context_leak_check.hpp>

#include <gtest/gtest.h>

#include <optional>

namespace ctxexec_test {

class ContextFixture : public ::testing::Test {
 protected:
  void SetUp() override { check_.emplace(); }
  void TearDown() override {
    EXPECT_TRUE(check_->intact())
        << "the test left the thread's context changed";
    check_->dismiss();
    check_.reset();
  }

 private:
  std::optional<ctxexec::context_leak_check> check_;
};

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_CONTEXT_FIXTURE_HPP
