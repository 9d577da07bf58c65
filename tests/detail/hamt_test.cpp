// Property test of the persistent map (detail/hamt.hpp) against std::map,
// with forced hash collisions and persistent snapshots.

#include <ctxexec/detail/hamt.hpp>

#include <ctxexec/context.hpp>
#include <ctxexec/context_var.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

namespace d = ctxexec::detail;

struct tracked {
  static inline std::atomic<long> live{0};
  explicit tracked(long x) : value(x) { ++live; }
  tracked(const tracked& o) : value(o.value) { ++live; }
  ~tracked() { --live; }
  long value;
};

using model = std::map<std::uint64_t, long>;

std::uint64_t pick_seed() {
  if (const char* s = std::getenv("CTXEXEC_HAMT_SEED")) {
    return std::strtoull(s, nullptr, 10);
  }
  return std::random_device{}();
}

// Checks the trie's structural invariants; returns the number of entries.
std::size_t check_node(const d::node* n, unsigned shift, bool is_root,
                       std::uint32_t prefix) {
  EXPECT_GE(n->refs.load(), 1u);
  EXPECT_GE(n->size, 1u);
  EXPECT_LE(n->size, n->capacity);
  if (n->collision) {
    EXPECT_GE(shift, d::kHashBits);
    const std::uint32_t h = n->data(0)->hash;
    for (std::uint32_t i = 0; i < n->size; ++i) {
      EXPECT_EQ(n->data(i)->hash, h);
    }
    if (!is_root) {
      EXPECT_GE(n->size, 2u) << "collision node not canonical";
    }
    return n->size;
  }
  EXPECT_EQ(n->datamap & n->nodemap, 0u);
  EXPECT_EQ(n->ndata, d::popcount32(n->datamap));
  EXPECT_EQ(n->size, d::popcount32(n->datamap) + d::popcount32(n->nodemap));
  if (!is_root) {
    EXPECT_FALSE(n->nodemap == 0 && d::popcount32(n->datamap) == 1)
        << "single-entry subnode was not inlined";
  }
  const std::uint32_t mask = shift == 0 ? 0 : ((std::uint32_t{1} << shift) - 1);
  std::size_t total = 0;
  std::uint32_t i = 0;
  for (unsigned frag = 0; frag < 32; ++frag) {
    const std::uint32_t bit = std::uint32_t{1} << frag;
    if (n->datamap & bit) {
      EXPECT_EQ(n->rank[frag], i + 1);
      const d::box* b = n->data(i++);
      EXPECT_EQ(b->hash & mask, prefix & mask);
      EXPECT_EQ(d::fragment_bit(b->hash, shift), bit);
      ++total;
    } else if (!(n->nodemap & bit)) {
      EXPECT_EQ(n->rank[frag], 0);
    }
  }
  std::uint32_t c = 0;
  for (unsigned frag = 0; frag < 32; ++frag) {
    const std::uint32_t bit = std::uint32_t{1} << frag;
    if (n->nodemap & bit) {
      EXPECT_EQ(n->rank[frag], (n->ndata + c + 1) | d::kRankChild);
      total += check_node(n->child(c++), shift + d::kBitsPerLevel, false,
                          prefix | (frag << shift));
    }
  }
  return total;
}

void expect_equal(const d::map& m, const model& expected) {
  ASSERT_EQ(m.size(), expected.size());
  if (m.root() != nullptr) {
    EXPECT_EQ(check_node(m.root(), 0, true, 0), expected.size());
  }
  std::size_t seen = 0;
  bool ok = true;
  auto visit = [&](const d::box* b) {
    ++seen;
    auto it = expected.find(b->key);
    ok = ok && it != expected.end() &&
         d::value_of<tracked>(b).value == it->second;
  };
  m.for_each(visit);
  EXPECT_TRUE(ok);
  EXPECT_EQ(seen, expected.size());
}

using hash_fn = std::uint32_t (*)(std::uint64_t);

void run_property(std::uint64_t seed, hash_fn hash, int ops, int keys) {
  SCOPED_TRACE("seed=" + std::to_string(seed) +
               " (rerun with CTXEXEC_HAMT_SEED)");
  std::mt19937_64 rng(seed);
  {
    d::map m;
    model expected;
    std::vector<std::pair<d::map, model>> snapshots;
    for (int op = 0; op < ops; ++op) {
      const std::uint64_t key = 1 + rng() % keys;
      const std::uint32_t h = hash(key);
      const int kind = static_cast<int>(rng() % 100);
      if (kind < 45) {
        const long value = static_cast<long>(rng() % 1000);
        auto* b = new d::typed_box<tracked>(key, h, value);
        d::box* old = m.set(b);
        auto it = expected.find(key);
        if (it == expected.end()) {
          ASSERT_EQ(old, nullptr) << "op " << op;
        } else {
          ASSERT_NE(old, nullptr) << "op " << op;
          ASSERT_EQ(d::value_of<tracked>(old).value, it->second);
          d::release(old);
        }
        expected[key] = value;
      } else if (kind < 80) {
        d::box* removed = m.erase(key, h);
        auto it = expected.find(key);
        if (it == expected.end()) {
          ASSERT_EQ(removed, nullptr) << "op " << op;
        } else {
          ASSERT_NE(removed, nullptr) << "op " << op;
          ASSERT_EQ(d::value_of<tracked>(removed).value, it->second);
          d::release(removed);
          expected.erase(it);
        }
      } else if (kind < 96) {
        const d::box* b = m.find(key, h);
        auto it = expected.find(key);
        ASSERT_EQ(b != nullptr, it != expected.end()) << "op " << op;
        if (b != nullptr) {
          ASSERT_EQ(d::value_of<tracked>(b).value, it->second);
        }
      } else if (kind < 99) {
        if (snapshots.size() < 32) {
          snapshots.emplace_back(m, expected);
        } else {
          snapshots.erase(snapshots.begin() + rng() % snapshots.size());
        }
      } else {
        expect_equal(m, expected);
        if (!snapshots.empty()) {
          const auto& s = snapshots[rng() % snapshots.size()];
          expect_equal(s.first, s.second);
        }
      }
      ASSERT_EQ(m.size(), expected.size());
    }
    expect_equal(m, expected);
    for (const auto& s : snapshots) expect_equal(s.first, s.second);
    // Empty it completely, then check the snapshots once more.
    for (const auto& [key, value] : model(expected)) {
      d::box* removed = m.erase(key, hash(key));
      ASSERT_NE(removed, nullptr);
      d::release(removed);
    }
    EXPECT_EQ(m.size(), 0u);
    EXPECT_EQ(m.root(), nullptr);
    for (const auto& s : snapshots) expect_equal(s.first, s.second);
  }
  EXPECT_EQ(tracked::live.load(), 0) << "values leaked or double-freed";
}

std::uint32_t spread(std::uint64_t k) { return d::mix_hash(k); }
// Every key in one of 5 full-hash buckets: long collision lists.
std::uint32_t few_buckets(std::uint64_t k) {
  return 0x9e3779b9u * static_cast<std::uint32_t>(k % 5);
}
// Keys agree on the low 30 bits and differ only in the top 2: the deepest
// bitmap level, then collisions.
std::uint32_t deep(std::uint64_t k) {
  return 0x15555555u | (static_cast<std::uint32_t>(k % 8) << 30);
}
// Partial prefixes: a mix of shallow and deep splits.
std::uint32_t prefixes(std::uint64_t k) {
  const std::uint32_t h = d::mix_hash(k);
  return (k % 3 == 0) ? (h & 0x3FF) : (k % 3 == 1 ? (h & 0xFFFFF) : h);
}

struct hash_shape {
  const char* name;
  hash_fn hash;
};

// Stable names in test listings (ctest names contain the printed value).
void PrintTo(const hash_shape& shape, std::ostream* os) { *os << shape.name; }

class HamtPropertyTest : public ::testing::TestWithParam<hash_shape> {};

TEST_P(HamtPropertyTest, MatchesStdMap) {
  const std::uint64_t seed = pick_seed();
  std::cout << "[ hamt ] " << GetParam().name << " seed " << seed << "\n";
  run_property(seed, GetParam().hash, 100000, 3000);
}

INSTANTIATE_TEST_SUITE_P(HashShapes, HamtPropertyTest,
                         ::testing::Values(hash_shape{"Spread", &spread},
                                           hash_shape{"FewBuckets",
                                                      &few_buckets},
                                           hash_shape{"Deep", &deep},
                                           hash_shape{"Prefixes", &prefixes}),
                         [](const ::testing::TestParamInfo<hash_shape>& info) {
                           return std::string(info.param.name);
                         });

TEST(HamtTest, CopyIsConstantTimeAndShared) {
  d::map m;
  for (std::uint64_t k = 1; k <= 100; ++k) {
    d::box* old = m.set(new d::typed_box<tracked>(k, spread(k), 1));
    ASSERT_EQ(old, nullptr);
  }
  d::map copy = m;
  EXPECT_EQ(copy.root(), m.root());  // same root: nothing was copied
  d::box* old = copy.set(new d::typed_box<tracked>(1, spread(1), 2));
  ASSERT_NE(old, nullptr);
  d::release(old);
  EXPECT_NE(copy.root(), m.root());  // the path was copied on write
  EXPECT_EQ(d::value_of<tracked>(m.find(1, spread(1))).value, 1);
  EXPECT_EQ(d::value_of<tracked>(copy.find(1, spread(1))).value, 2);
}

TEST(HamtTest, CollidingContextVarsStayDistinct) {
  // Public-API check with forced hashes: every var lands in one collision
  // node, and each still keeps its own value.
  std::vector<std::unique_ptr<ctxexec::context_var<int>>> vars;
  for (int i = 0; i < 50; ++i) {
    vars.emplace_back(
        new ctxexec::context_var<int>(d::context_var_access::with_hash<int>(
            0xABCDEFu, "v" + std::to_string(i))));
  }
  ctxexec::context ctx;
  ctx.run([&] {
    std::vector<ctxexec::token<int>> toks;
    for (int i = 0; i < 50; ++i) toks.push_back(vars[i]->set(i));
    for (int i = 0; i < 50; ++i) ASSERT_EQ(vars[i]->get(), i);
    for (int i = 0; i < 50; i += 2) vars[i]->reset(toks[i]);
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(vars[i]->try_get() == nullptr, i % 2 == 0);
    }
  });
  EXPECT_EQ(ctx.size(), 25u);
}

}  // namespace
