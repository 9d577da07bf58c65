// Allocation-failure injection for the persistent map and for set/reset:
// any allocation may throw std::bad_alloc, after which the map, its
// snapshots and the current context must be exactly as before, with nothing
// leaked (checked by LSan in the asan preset). Its own binary, because it
// replaces the global operator new.

#include <ctxexec/detail/hamt.hpp>

#include <ctxexec/context.hpp>
#include <ctxexec/context_var.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <new>
#include <random>
#include <utility>
#include <vector>

namespace {

// Allocations left before the injected failure; negative: never fail.
thread_local long allocations_until_failure = -1;

}  // namespace

void* operator new(std::size_t n) {
  if (allocations_until_failure >= 0 && allocations_until_failure-- == 0) {
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace d = ctxexec::detail;
using model = std::map<std::uint64_t, long>;

// Few full-hash buckets: the trie gets deep paths and collision nodes.
std::uint32_t clustered(std::uint64_t key) {
  return static_cast<std::uint32_t>(key % 7) * 0x01010101u;
}

bool same(const d::map& m, const model& expected) {
  if (m.size() != expected.size()) return false;
  for (const auto& [key, value] : expected) {
    const d::box* b = m.find(key, clustered(key));
    if (b == nullptr || d::value_of<long>(b) != value) return false;
  }
  return true;
}

TEST(HamtAllocFailureTest, FailedEditsLeaveMapAndSnapshotsUnchanged) {
  const std::uint64_t seed = std::random_device{}();
  std::cout << "[ alloc-failure ] seed " << seed << "\n";
  std::mt19937_64 rng(seed);
  long injected = 0;
  long inconsistent = 0;
  for (int round = 0; round < 200; ++round) {
    d::map m;
    model expected;
    std::vector<std::pair<d::map, model>> snapshots;
    for (int op = 0; op < 300; ++op) {
      const std::uint64_t key = 1 + rng() % 60;
      if (rng() % 10 == 0) {
        snapshots.emplace_back(m, expected);
        if (snapshots.size() > 4) snapshots.erase(snapshots.begin());
      }
      const bool is_set = rng() % 2 == 0;
      auto* b = new d::typed_box<long>(key, clustered(key), long{op});
      allocations_until_failure = static_cast<long>(rng() % 4);
      try {
        if (is_set) {
          d::box* old = m.set(b);
          b = nullptr;
          allocations_until_failure = -1;
          if (old != nullptr) d::release(old);
          expected[key] = op;
        } else {
          d::box* removed = m.erase(key, clustered(key));
          allocations_until_failure = -1;
          if (removed != nullptr) d::release(removed);
          expected.erase(key);
        }
      } catch (const std::bad_alloc&) {
        allocations_until_failure = -1;
        ++injected;
      }
      if (b != nullptr) d::release(b);  // not taken over by the map
      if (!same(m, expected)) ++inconsistent;
      for (const auto& s : snapshots) {
        if (!same(s.first, s.second)) ++inconsistent;
      }
    }
  }
  std::cout << "[ alloc-failure ] injected " << injected << "\n";
  EXPECT_GT(injected, 1000);  // the injection really happened
  EXPECT_EQ(inconsistent, 0);
}

TEST(HamtAllocFailureTest, FailedSetLeavesTheContextUnchanged) {
  ctxexec::context_var<std::string> v("v");
  ctxexec::context ctx;
  ctx.run([&] {
    auto t = v.set("before");
    for (long n = 0; n < 3; ++n) {
      allocations_until_failure = n;
      try {
        auto t2 = v.set(std::string(100, 'x'));
        allocations_until_failure = -1;
        v.reset(t2);
      } catch (const std::bad_alloc&) {
        allocations_until_failure = -1;
      }
      EXPECT_EQ(v.get(), "before");
    }
    v.reset(t);
  });
  EXPECT_EQ(ctx.size(), 0u);
}

}  // namespace
