// ctxexec/detail/refcount.hpp: reference-count steps shared by value boxes,
// trie nodes and context objects. Not part of the public API.
//
// Both steps skip the locked instruction when the caller's reference is the
// only one: then no other thread can reach the count. A retain stores 2; a
// release sees 1 with an acquire load, which orders the free after every
// other thread's earlier release.

#ifndef CTXEXEC_DETAIL_REFCOUNT_HPP
#define CTXEXEC_DETAIL_REFCOUNT_HPP

#include <atomic>
#include <cstdint>

namespace ctxexec::detail {

/// Takes one more reference. The caller must already hold one.
inline void add_ref(std::atomic<std::uint32_t>& refs) noexcept {
  if (refs.load(std::memory_order_relaxed) == 1) {
    refs.store(2, std::memory_order_relaxed);
  } else {
    refs.fetch_add(1, std::memory_order_relaxed);
  }
}

/// Drops one reference. Returns true when it was the last one, and the
/// caller must then destroy the object.
inline bool drop_ref(std::atomic<std::uint32_t>& refs) noexcept {
  return refs.load(std::memory_order_acquire) == 1 ||
         refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_REFCOUNT_HPP
