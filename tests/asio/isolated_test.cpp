// Isolated composition: each branch of ctxexec's && and || runs in its own
// copy of the context; Asio's own operators share the parent's object.

#include <ctxexec/asio/isolated.hpp>

#include <ctxexec/asio.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <chrono>
#include <string>
#include <tuple>
#include <variant>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

class IsolatedTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<int> who("who", -1);

// Sets `who` to `id`, yields, and reports what it sees before and after.
awaitable<std::pair<int, int>> branch(int id) {
  const int at_start = who.get();
  auto tok = who.set(id);
  co_await asio::post(use_awaitable);
  co_return std::pair<int, int>{at_start, who.get()};
}

TEST_F(IsolatedTest, IsolatedChildKeepsItsValues) {
  asio::io_context io;
  int after = 0;
  std::pair<int, int> seen;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto tok = who.set(1);
        seen = co_await ctxexec::isolated(branch(2));
        after = who.get();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(seen, (std::pair<int, int>{1, 2}));
  EXPECT_EQ(after, 1);
}

TEST_F(IsolatedTest, AndRunsEachBranchInItsOwnCopy) {
  asio::io_context io;
  std::pair<int, int> a, b;
  int after = 0;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        using namespace ctxexec::awaitable_operators;
        auto tok = who.set(1);
        std::tie(a, b) = co_await (branch(10) && branch(20));
        after = who.get();
      },
      asio::detached);
  io.run();
  // Each starts from the parent's value and keeps its own.
  EXPECT_EQ(a, (std::pair<int, int>{1, 10}));
  EXPECT_EQ(b, (std::pair<int, int>{1, 20}));
  EXPECT_EQ(after, 1);
}

TEST_F(IsolatedTest, OrCancelsTheLoserPromptly) {
  asio::io_context io;
  bool loser_cancelled = false;
  int winner = 0;
  auto slow = [&]() -> awaitable<int> {
    auto tok = who.set(99);
    asio::steady_timer t(co_await asio::this_coro::executor,
                         std::chrono::hours(1));
    try {
      co_await t.async_wait(use_awaitable);
    } catch (const boost::system::system_error& e) {
      loser_cancelled = e.code() == asio::error::operation_aborted;
      throw;
    }
    co_return 0;
  };
  auto fast = []() -> awaitable<int> {
    co_await asio::post(use_awaitable);
    co_return who.get();
  };
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        using namespace ctxexec::awaitable_operators;
        auto tok = who.set(5);
        auto r = co_await (slow() || fast());
        winner = std::get<1>(r);
      },
      asio::detached);
  io.run();  // returns only if the one-hour wait was cancelled
  EXPECT_TRUE(loser_cancelled);
  EXPECT_EQ(winner, 5);  // the fast branch saw the parent's value, not 99
}

TEST_F(IsolatedTest, AsiosOwnOperatorsShareTheParentsContext) {
  asio::io_context io;
  std::pair<int, int> a, b;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        auto tok = who.set(1);
        std::tie(a, b) = co_await (branch(10) && branch(20));
      },
      asio::detached);
  io.run();
  // Documented sharing: the second branch starts after the first set its
  // value in the same (parent's) context object, and the first then sees
  // the second's.
  EXPECT_EQ(b.first, 10);
  EXPECT_EQ(a.second, 20);
}

}  // namespace
