#include <ctxexec/context.hpp>

#include <ctxexec/context_var.hpp>
#include "context_fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using ctxexec::context;
using ctxexec::context_error;
using ctxexec::context_var;
using ctxexec::copy_context;
using ctxexec::token_errc;
using ctxexec::token_error;

class ContextTest : public ctxexec_test::ContextFixture {};

struct unprintable {
  int x;
};

TEST_F(ContextTest, NewContextIsEmpty) {
  context_var<int> v("v");
  auto t = v.set(1);
  context ctx;
  EXPECT_EQ(ctx.size(), 0u);
  EXPECT_FALSE(ctx.contains(v));
  ctx.run([&] { EXPECT_EQ(v.try_get(), nullptr); });
  v.reset(t);
}

TEST_F(ContextTest, CopyIsASnapshotInBothDirections) {
  context_var<int> v("v");
  context_var<int> w("w");
  auto t = v.set(1);
  context snap = copy_context();
  auto t2 = v.set(2);  // the original changes after the copy
  ASSERT_NE(snap.find(v), nullptr);
  EXPECT_EQ(*snap.find(v), 1);
  snap.run([&] {
    EXPECT_EQ(v.get(), 1);
    (void)w.set(5);  // the copy changes
    (void)v.set(3);
  });
  EXPECT_EQ(v.get(), 2);
  EXPECT_EQ(w.try_get(), nullptr);
  EXPECT_EQ(*snap.find(v), 3);
  EXPECT_EQ(*snap.find(w), 5);
  v.reset(t2);
  v.reset(t);
}

TEST_F(ContextTest, RunMakesTheContextCurrentAndRestores) {
  context_var<int> v("v", 0);
  context ctx;
  ctx.run([&] { (void)v.set(7); });
  EXPECT_EQ(v.get(), 0);
  EXPECT_EQ(ctx.run([&] { return v.get(); }), 7);  // the next run sees it
  EXPECT_EQ(ctx.size(), 1u);
}

TEST_F(ContextTest, RunRestoresOnException) {
  context_var<int> v("v");
  context ctx;
  EXPECT_THROW(ctx.run([&] {
    (void)v.set(1);
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_EQ(v.try_get(), nullptr);
  EXPECT_EQ(*ctx.find(v), 1);
  // It was exited: it can be entered again.
  EXPECT_NO_THROW(ctx.run([] {}));
}

TEST_F(ContextTest, RunForwardsArgumentsAndReturnsReferences) {
  context ctx;
  int x = 1;
  int& r = ctx.run([](int& a, int b) -> int& { return a += b; }, x, 2);
  EXPECT_EQ(&r, &x);
  EXPECT_EQ(x, 3);
  auto p = ctx.run([](std::unique_ptr<int> q) { return q; },
                   std::make_unique<int>(4));
  EXPECT_EQ(*p, 4);
}

TEST_F(ContextTest, EnteringAnEnteredContextThrows) {
  context ctx;
  ctx.run([&] {
    try {
      ctx.run([] { ADD_FAILURE() << "entered twice"; });
      FAIL() << "nested run did not throw";
    } catch (const context_error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("cannot enter context: ", 0), 0u) << what;
      EXPECT_NE(what.find("is already entered"), std::string::npos) << what;
    }
  });
  // A copy of the handle names the same object, so it is refused too.
  context alias = ctx;
  ctx.run([&] { EXPECT_THROW(alias.run([] {}), context_error); });
}

TEST_F(ContextTest, NestedRunsOfDifferentContexts) {
  context_var<int> v("v");
  context a;
  context b;
  a.run([&] {
    (void)v.set(1);
    b.run([&] {
      EXPECT_EQ(v.try_get(), nullptr);
      (void)v.set(2);
      context inner = copy_context();
      EXPECT_EQ(*inner.find(v), 2);
    });
    EXPECT_EQ(v.get(), 1);
  });
  EXPECT_EQ(*a.find(v), 1);
  EXPECT_EQ(*b.find(v), 2);
}

TEST_F(ContextTest, HandlesCompareByIdentity) {
  context a;
  context b = a;
  context c;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_FALSE(copy_context() == copy_context());
  context moved = std::move(b);
  EXPECT_TRUE(moved == a);
}

TEST_F(ContextTest, TokenContextCheckIsIdentityNotContents) {
  context_var<int> v("v");
  context a;
  context b;
  ctxexec::token<int>* tp = nullptr;
  std::unique_ptr<ctxexec::token<int>> tok;
  a.run([&] { tok = std::make_unique<ctxexec::token<int>>(v.set(1)); });
  tp = tok.get();
  b.run([&] {
    (void)v.set(1);  // same contents as a
    try {
      v.reset(*tp);
      FAIL();
    } catch (const token_error& e) {
      EXPECT_EQ(e.code(), token_errc::different_context);
    }
  });
  a.run([&] { v.reset(*tp); });  // back in a, the reset works
  EXPECT_FALSE(a.contains(v));
}

TEST_F(ContextTest, TokenOfARecycledContextObjectIsRejected) {
  context_var<int> v("v");
  std::unique_ptr<ctxexec::token<int>> tok;
  {
    context gone;
    gone.run([&] { tok = std::make_unique<ctxexec::token<int>>(v.set(1)); });
  }
  // Context objects are recycled; whichever object the next ones reuse,
  // none of them is the token's.
  for (int i = 0; i < 100; ++i) {
    context next;
    next.run([&] {
      try {
        v.reset(*tok);
        FAIL() << "reset accepted a token of a destroyed context";
      } catch (const token_error& e) {
        EXPECT_EQ(e.code(), token_errc::different_context);
      }
    });
  }
}

TEST_F(ContextTest, FindContainsAndSizeIgnoreDefaults) {
  context_var<int> with_default("d", 5);
  context_var<int> plain("p");
  context ctx;
  EXPECT_EQ(ctx.find(with_default), nullptr);
  EXPECT_FALSE(ctx.contains(with_default));
  ctx.run([&] { (void)plain.set(1); });
  EXPECT_TRUE(ctx.contains(plain));
  EXPECT_EQ(ctx.size(), 1u);
}

TEST_F(ContextTest, ForEachAndStreamingPrintEntries) {
  context_var<int> id("request_id");
  context_var<std::string> user("user");
  context_var<unprintable> opaque("opaque");
  context ctx;
  ctx.run([&] {
    (void)id.set(42);
    (void)user.set("ann");
    (void)opaque.set(unprintable{1});
  });
  std::vector<std::pair<std::string, std::string>> seen;
  ctx.for_each([&](std::string_view name, std::string_view value) {
    seen.emplace_back(name, value);
  });
  std::sort(seen.begin(), seen.end());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"opaque", "<unprintable>"}, {"request_id", "42"}, {"user", "ann"}};
  EXPECT_EQ(seen, expected);
  std::ostringstream os;
  os << context();
  EXPECT_EQ(os.str(), "{}");
}

TEST_F(ContextTest, MovedFromHandleIsEmptyAndRefusesToRun) {
  context a;
  context b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): documented
  EXPECT_THROW(a.run([] {}), context_error);
  EXPECT_NO_THROW(b.run([] {}));
}

TEST_F(ContextTest, DroppingTheLastHandleInsideRunIsSafe) {
  context_var<std::string> v("v");
  auto ctx = std::make_unique<context>();
  ctx->run([&] {
    (void)v.set(std::string(100, 'z'));
    ctx.reset();  // the object stays alive until run() exits it
    EXPECT_EQ(v.get(), std::string(100, 'z'));
  });
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextTest, NewThreadsStartEmpty) {
  context_var<int> v("v");
  auto t = v.set(1);
  std::thread([&] {
    EXPECT_EQ(v.try_get(), nullptr);
    EXPECT_EQ(copy_context().size(), 0u);
    (void)v.set(2);  // the thread's own root context
    EXPECT_EQ(v.get(), 2);
  }).join();
  EXPECT_EQ(v.get(), 1);
  v.reset(t);
}

TEST_F(ContextTest, CopyInsideRunCopiesTheRunningContext) {
  context_var<int> v("v");
  context ctx;
  context inner_copy = ctx.run([&] {
    (void)v.set(9);
    return copy_context();
  });
  EXPECT_FALSE(inner_copy == ctx);
  EXPECT_EQ(*inner_copy.find(v), 9);
}

}  // namespace
