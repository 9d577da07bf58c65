#include <ctxexec/detail/var_key.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

namespace {

namespace d = ctxexec::detail;

TEST(VarKeyTest, IdsAreUniqueAndNamesAreRegisteredWhileAlive) {
  std::set<std::uint64_t> ids;
  std::uint64_t gone_id = 0;
  {
    d::var_key a("a");
    d::var_key b("b");
    ids = {a.id(), b.id()};
    EXPECT_EQ(ids.size(), 2u);
    EXPECT_EQ(d::var_registry::instance().name(a.id()), "a");
    gone_id = a.id();
  }
  EXPECT_FALSE(d::var_registry::instance().name(gone_id).has_value());
  d::var_key c("c");  // ids are never reused
  EXPECT_EQ(ids.count(c.id()), 0u);
}

TEST(VarKeyTest, ForcedHashIsKept) {
  d::var_key k("k", 0xABCDu);
  EXPECT_EQ(k.hash(), 0xABCDu);
  d::var_key spread("s");
  EXPECT_EQ(spread.hash(), d::mix_hash(spread.id()));
}

}  // namespace
