#include <ctxexec/context_var.hpp>

#include <ctxexec/context.hpp>
#include "context_fixture.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using ctxexec::context;
using ctxexec::context_var;
using ctxexec::copy_context;
using ctxexec::lookup_error;
using ctxexec::token;
using ctxexec::token_errc;
using ctxexec::token_error;

class ContextVarTest : public ctxexec_test::ContextFixture {};

// Misuse that must not compile.
static_assert(!std::is_copy_constructible_v<context_var<int>>);
static_assert(!std::is_move_constructible_v<context_var<int>>);
static_assert(!std::is_copy_assignable_v<context_var<int>>);
static_assert(!std::is_copy_constructible_v<token<int>>);
static_assert(std::is_nothrow_move_constructible_v<token<int>>);
static_assert(!std::is_move_constructible_v<ctxexec::set_guard<int>>);
template <class Var, class Tok>
concept resettable = requires(Var& v, Tok& t) {
  v.reset(t);
};
static_assert(resettable<context_var<int>, token<int>>);
static_assert(!resettable<context_var<int>, token<long>>);

template <class F>
token_errc reset_error(F&& f) {
  try {
    f();
  } catch (const token_error& e) {
    return e.code();
  }
  ADD_FAILURE() << "reset did not throw token_error";
  return token_errc{};
}

TEST_F(ContextVarTest, NameIsKept) {
  context_var<int> v("request_id");
  EXPECT_EQ(v.name(), "request_id");
}

TEST_F(ContextVarTest, GetWithoutValueOrDefaultThrowsLookupError) {
  context_var<int> v("user_id");
  try {
    (void)v.get();
    FAIL() << "get() did not throw";
  } catch (const lookup_error& e) {
    EXPECT_NE(std::string(e.what()).find("user_id"), std::string::npos);
  }
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, GetFallsBackToDefault) {
  context_var<std::string> v("tenant", "none");
  EXPECT_EQ(v.get(), "none");
  ASSERT_NE(v.try_get(), nullptr);
  EXPECT_EQ(*v.try_get(), "none");
  auto t = v.set("acme");
  EXPECT_EQ(v.get(), "acme");
  v.reset(t);
  EXPECT_EQ(v.get(), "none");
}

TEST_F(ContextVarTest, ValueOrIgnoresTheDefault) {
  context_var<int> v("v", 1);
  EXPECT_EQ(v.value_or(9), 9);
  auto t = v.set(2);
  EXPECT_EQ(v.value_or(9), 2);
  v.reset(t);
}

TEST_F(ContextVarTest, ResetRestoresPreviousValue) {
  context_var<int> v("v");
  auto t1 = v.set(1);
  auto t2 = v.set(2);
  EXPECT_EQ(v.get(), 2);
  ASSERT_NE(t2.old_value(), nullptr);
  EXPECT_EQ(*t2.old_value(), 1);
  v.reset(t2);
  EXPECT_EQ(v.get(), 1);
  v.reset(t1);
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, ResetOfMissingRemovesTheVarFromTheContext) {
  context_var<int> v("v", 5);
  auto t = v.set(1);
  EXPECT_EQ(t.old_value(), nullptr);  // Token.MISSING
  EXPECT_TRUE(copy_context().contains(v));
  v.reset(t);
  EXPECT_FALSE(copy_context().contains(v));
  EXPECT_EQ(v.get(), 5);
}

TEST_F(ContextVarTest, ResetOutOfOrderFollowsPython) {
  // Python: t1 = v.set(1); t2 = v.set(2); v.reset(t1) -> v unset;
  // v.reset(t2) -> v == 1. Runs in its own context, which keeps the value.
  context_var<int> v("v");
  context ctx;
  ctx.run([&] {
    auto t1 = v.set(1);
    auto t2 = v.set(2);
    v.reset(t1);
    EXPECT_EQ(v.try_get(), nullptr);
    v.reset(t2);
    EXPECT_EQ(v.get(), 1);
  });
  ASSERT_NE(ctx.find(v), nullptr);
  EXPECT_EQ(*ctx.find(v), 1);
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, TokenReportsVarOldValueAndUse) {
  context_var<int> v("v");
  auto t1 = v.set(10);
  auto t2 = v.set(20);
  EXPECT_EQ(&t2.var(), &v);
  EXPECT_FALSE(t2.used());
  v.reset(t2);
  EXPECT_TRUE(t2.used());
  // The old value stays readable after reset, as in Python.
  ASSERT_NE(t2.old_value(), nullptr);
  EXPECT_EQ(*t2.old_value(), 10);
  v.reset(t1);
}

TEST_F(ContextVarTest, ResetTwiceThrowsAlreadyUsed) {
  context_var<int> v("v");
  auto t = v.set(1);
  v.reset(t);
  try {
    v.reset(t);
    FAIL() << "second reset did not throw";
  } catch (const token_error& e) {
    EXPECT_EQ(e.code(), token_errc::already_used);
    EXPECT_NE(std::string(e.what()).find("has already been used once"),
              std::string::npos);
  }
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, ResetWithAnotherVarsTokenThrowsAndChangesNothing) {
  context_var<int> a("a");
  context_var<int> b("b");
  auto ta = a.set(1);
  auto tb = b.set(2);
  try {
    a.reset(tb);
    FAIL() << "reset did not throw";
  } catch (const token_error& e) {
    EXPECT_EQ(e.code(), token_errc::different_var);
    EXPECT_NE(
        std::string(e.what()).find("was created by a different ContextVar"),
        std::string::npos);
  }
  EXPECT_FALSE(tb.used());
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(b.get(), 2);
  b.reset(tb);
  a.reset(ta);
}

TEST_F(ContextVarTest, ResetInAnotherContextThrows) {
  context_var<int> v("v");
  auto t = v.set(1);
  context ctx = copy_context();  // same contents, different object
  ctx.run([&] {
    try {
      v.reset(t);
      FAIL() << "reset did not throw";
    } catch (const token_error& e) {
      EXPECT_EQ(e.code(), token_errc::different_context);
      EXPECT_NE(
          std::string(e.what()).find("was created in a different Context"),
          std::string::npos);
    }
  });
  EXPECT_FALSE(t.used());
  v.reset(t);
}

TEST_F(ContextVarTest, ResetOnAnotherThreadThrows) {
  context_var<int> v("v");
  auto t = v.set(1);
  std::thread([&] {
    EXPECT_EQ(reset_error([&] { v.reset(t); }), token_errc::different_context);
  }).join();
  v.reset(t);
}

TEST_F(ContextVarTest, ChecksRunInPythonsOrder) {
  context_var<int> a("a");
  context_var<int> b("b");
  auto tb = b.set(1);
  b.reset(tb);
  // Used and of another var: "used" wins.
  EXPECT_EQ(reset_error([&] { a.reset(tb); }), token_errc::already_used);
  auto tb2 = b.set(2);
  // Another var and another context: "var" wins.
  copy_context().run([&] {
    EXPECT_EQ(reset_error([&] { a.reset(tb2); }), token_errc::different_var);
  });
  b.reset(tb2);
}

TEST_F(ContextVarTest, MovedFromTokenCountsAsUsed) {
  context_var<int> v("v");
  auto t = v.set(1);
  token<int> moved = std::move(t);
  EXPECT_TRUE(t.used());  // NOLINT(bugprone-use-after-move): documented
  EXPECT_EQ(reset_error([&] { v.reset(t); }), token_errc::already_used);
  v.reset(moved);
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, ScopedSetResetsAtScopeExit) {
  context_var<int> v("v", 0);
  {
    auto g1 = v.scoped_set(1);
    EXPECT_EQ(v.get(), 1);
    {
      auto g2 = v.scoped_set(2);
      EXPECT_EQ(v.get(), 2);
      ASSERT_NE(g2.token().old_value(), nullptr);
      EXPECT_EQ(*g2.token().old_value(), 1);
    }
    EXPECT_EQ(v.get(), 1);
  }
  EXPECT_EQ(v.get(), 0);
  EXPECT_FALSE(copy_context().contains(v));
}

TEST_F(ContextVarTest, ScopedSetResetsWhenUnwinding) {
  context_var<int> v("v");
  try {
    auto g = v.scoped_set(1);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, ScopedSetExplicitResetIsNotRepeated) {
  context_var<int> v("v");
  {
    auto g = v.scoped_set(1);
    g.reset();
    EXPECT_EQ(v.try_get(), nullptr);
    EXPECT_TRUE(g.token().used());
    EXPECT_THROW(g.reset(), token_error);
  }
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, GuardDestroyedElsewhereResetsInItsOwnContext) {
  context_var<int> v("v");
  std::unique_ptr<ctxexec::set_guard<int>> g;
  context ctx;
  ctx.run([&] { g.reset(new ctxexec::set_guard<int>(v.scoped_set(1))); });
  EXPECT_TRUE(ctx.contains(v));
  g.reset();  // not in ctx: the reset still lands in ctx
  EXPECT_FALSE(ctx.contains(v));
  EXPECT_EQ(v.try_get(), nullptr);

  auto gone = std::make_unique<context>();
  gone->run([&] { g.reset(new ctxexec::set_guard<int>(v.scoped_set(2))); });
  gone.reset();  // the guard's context object no longer exists
  g.reset();     // nothing to restore, and no crash
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, ReferenceStaysValidUntilTheNextSet) {
  context_var<std::string> v("v");
  context_var<std::string> other("other");
  auto t = v.set(std::string(64, 'x'));  // heap-allocated string payload
  const std::string& ref = v.get();
  // Reads, copies and runs of other contexts keep the reference valid.
  auto snapshot = copy_context();
  EXPECT_EQ(other.try_get(), nullptr);
  snapshot.run([] {});
  EXPECT_EQ(ref, std::string(64, 'x'));
  // While a token still holds the value, it survives even a reset.
  auto t2 = v.set("y");
  v.reset(t2);
  EXPECT_EQ(ref, std::string(64, 'x'));
  v.reset(t);
}

#if defined(__SANITIZE_ADDRESS__)
#define CTXEXEC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTXEXEC_TEST_ASAN 1
#endif
#endif

#ifdef CTXEXEC_TEST_ASAN
// Under ASan, prove that the documented limit is real: after a set and
// reset, the value a reference named can be gone.
TEST(ContextVarDeathTest, ReferenceDanglesAfterReplacementUnderAsan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        context_var<std::string> v("v");
        const std::string* p;
        {
          auto t = v.set(std::string(64, 'x'));
          p = &v.get();
          auto t2 = v.set("y");
          v.reset(t2);
          v.reset(t);
        }
        volatile char c = (*p)[0];
        (void)c;
      },
      "heap-use-after-free");
}
#endif

TEST_F(ContextVarTest, MoveOnlyValues) {
  context_var<std::unique_ptr<int>> v("owned");
  auto t = v.set(std::make_unique<int>(42));
  ASSERT_NE(v.get(), nullptr);
  EXPECT_EQ(*v.get(), 42);
  v.reset(t);
  EXPECT_EQ(v.try_get(), nullptr);
}

TEST_F(ContextVarTest, ValuesAreDestroyedWhenNoContextHoldsThem) {
  auto payload = std::make_shared<int>(1);
  std::weak_ptr<int> watch = payload;
  context_var<std::shared_ptr<int>> v("v");
  {
    context ctx;
    ctx.run([&] { (void)v.set(std::move(payload)); });
    EXPECT_FALSE(watch.expired());
  }
  EXPECT_TRUE(watch.expired());
}

TEST_F(ContextVarTest, ManyVarsSetAndResetInReverse) {
  std::vector<std::unique_ptr<context_var<int>>> vars;
  std::vector<token<int>> tokens;
  for (int i = 0; i < 2000; ++i) {
    vars.push_back(std::make_unique<context_var<int>>("v" + std::to_string(i)));
    tokens.push_back(vars.back()->set(i));
  }
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(vars[i]->get(), i);
  EXPECT_EQ(copy_context().size(), 2000u);
  for (int i = 1999; i >= 0; --i) vars[i]->reset(tokens[i]);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(vars[i]->try_get(), nullptr);
}

TEST_F(ContextVarTest, DestroyedVarsEntriesAreUnreachable) {
  context ctx;
  auto first = std::make_unique<context_var<int>>("gone");
  ctx.run([&] { (void)first->set(1); });
  first.reset();
  // A new variable, perhaps at the same address, never sees the old value.
  context_var<int> fresh("fresh");
  EXPECT_FALSE(ctx.contains(fresh));
  ctx.run([&] { EXPECT_EQ(fresh.try_get(), nullptr); });
  std::vector<std::string> names;
  ctx.for_each([&](std::string_view name, std::string_view) {
    names.emplace_back(name);
  });
  EXPECT_EQ(names, std::vector<std::string>{"<destroyed>"});
}

// The per-thread lookup cache must never serve a value the current context
// does not hold.
TEST_F(ContextVarTest, LookupCacheFollowsContextSwitches) {
  context_var<int> v("v", -1);
  auto t = v.set(1);
  EXPECT_EQ(v.get(), 1);  // now cached
  context other;
  other.run([&] {
    EXPECT_EQ(v.get(), -1);
    (void)v.set(2);
    EXPECT_EQ(v.get(), 2);
  });
  EXPECT_EQ(v.get(), 1);
  // Another thread changes `other`; this thread must see it on re-entry.
  std::thread([&] { other.run([&] { (void)v.set(3); }); }).join();
  other.run([&] { EXPECT_EQ(v.get(), 3); });
  EXPECT_EQ(v.get(), 1);
  v.reset(t);
  EXPECT_EQ(v.get(), -1);
}

TEST_F(ContextVarTest, LookupCacheKeepsVarsThatShareASlotApart) {
  // Equal hashes share a cache slot (and a trie collision node).
  using access = ctxexec::detail::context_var_access;
  context_var<int> a = access::with_hash<int>(64, "a");
  context_var<int> b = access::with_hash<int>(64, "b");
  context_var<int> c = access::with_hash<int>(128, "c");
  auto ta = a.set(1);
  auto tb = b.set(2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.get(), 1);
    EXPECT_EQ(b.get(), 2);
    EXPECT_EQ(c.try_get(), nullptr);
  }
  auto tc = c.set(3);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(c.get(), 3);
  a.reset(ta);
  EXPECT_EQ(a.try_get(), nullptr);
  EXPECT_EQ(b.get(), 2);
  c.reset(tc);
  b.reset(tb);
  EXPECT_EQ(b.try_get(), nullptr);
}

TEST_F(ContextVarTest, LookupCacheSeesSetsOfOtherVarsAfterCopy) {
  context_var<int> v("v");
  auto t = v.set(1);
  context snap = copy_context();
  EXPECT_EQ(v.get(), 1);
  auto t2 = v.set(2);  // path copy: the cached box must not be served
  EXPECT_EQ(v.get(), 2);
  snap.run([&] { EXPECT_EQ(v.get(), 1); });
  v.reset(t2);
  EXPECT_EQ(v.get(), 1);
  v.reset(t);
}

}  // namespace
