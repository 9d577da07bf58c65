// ctxexec/detail/asymmetric_fence.hpp
//
// An asymmetric fence, for a protocol whose one side runs constantly and
// whose other side runs rarely: the frequent side pays a compiler barrier,
// the rare side a system call that makes every thread of the process
// execute a full memory barrier (Linux's membarrier, private expedited), so
// that a store-then-load on either side cannot both miss the other's store.
// Where that call is unavailable (another system, an old kernel, or a
// ThreadSanitizer build, which cannot see it), both sides pay a full fence.
// Not part of the public API.
//
// Used by context objects: the thread that has one entered marks its edits
// of the map (light side); a thread that reads the map meanwhile announces
// itself (heavy side). See context_impl.hpp.

#ifndef CTXEXEC_DETAIL_ASYMMETRIC_FENCE_HPP
#define CTXEXEC_DETAIL_ASYMMETRIC_FENCE_HPP

#include <atomic>

#if defined(__linux__) && __has_include(<linux/membarrier.h>) && \
    __has_include(<sys/syscall.h>) && __has_include(<unistd.h>)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define CTXEXEC_DETAIL_HAS_MEMBARRIER 1
#else
#define CTXEXEC_DETAIL_HAS_MEMBARRIER 0
#endif

#if defined(__SANITIZE_THREAD__)
#define CTXEXEC_DETAIL_FENCE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTXEXEC_DETAIL_FENCE_TSAN 1
#endif
#endif

namespace ctxexec::detail {

/// Registers the process for expedited membarriers; true once it may use
/// them. False without the system call, or under ThreadSanitizer.
inline bool register_membarrier() noexcept {
#if CTXEXEC_DETAIL_HAS_MEMBARRIER && !defined(CTXEXEC_DETAIL_FENCE_TSAN)
  return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                 0) == 0;
#else
  return false;
#endif
}

/// Whether the light side may use a compiler barrier only. Read before its
/// dynamic initialisation (a static constructor of another file), it is
/// false, which is always safe: both sides then use full fences.
inline std::atomic<bool> membarrier_ready{register_membarrier()};

/// The frequent side's fence, between its store and its load.
inline void light_fence() noexcept {
  if (membarrier_ready.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

/// The rare side's fence, between its store and its load: every thread of
/// the process runs a full barrier before it returns.
inline void heavy_fence() noexcept {
#if CTXEXEC_DETAIL_HAS_MEMBARRIER && !defined(CTXEXEC_DETAIL_FENCE_TSAN)
  if (membarrier_ready.load(std::memory_order_relaxed) &&
      syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
    return;
  }
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_ASYMMETRIC_FENCE_HPP
