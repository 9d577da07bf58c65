// ctxexec/detail/refcount.hpp: reference-count steps shared by value boxes,
// trie nodes and context objects. Not part of the public API.
//
// Increments are always atomic read-modify-writes: the caller may be
// borrowing a reference that others borrow at the same time (a path copy
// retains the slots of a shared node), and only read-modify-writes keep the
// release sequence that the final acquire load synchronises with. A release
// skips the locked instruction when the count is 1: then the caller's
// reference is the only one, no other thread can reach the count, and the
// acquire load orders the free after every earlier release.

#ifndef CTXEXEC_DETAIL_REFCOUNT_HPP
#define CTXEXEC_DETAIL_REFCOUNT_HPP

#include <atomic>
#include <cstdint>

namespace ctxexec::detail {

/// Takes one more reference. Some reference must be held meanwhile.
inline void add_ref(std::atomic<std::uint32_t>& refs) noexcept {
  refs.fetch_add(1, std::memory_order_relaxed);
}

/// Drops one reference. Returns true when it was the last one, and the
/// caller must then destroy the object.
inline bool drop_ref(std::atomic<std::uint32_t>& refs) noexcept {
  return refs.load(std::memory_order_acquire) == 1 ||
         refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_REFCOUNT_HPP
