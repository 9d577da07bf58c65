// ctxexec/detail/context_impl.hpp
//
// The context object (a mutable cell holding a persistent map), its pool,
// and the per-thread "current context" pointer. Not part of the public API.
//
// Context objects are type-stable: their memory is recycled through
// per-thread free lists and a global pool and never returned to the system,
// and each reuse bumps a 40-bit generation. A (pointer, generation) pair
// therefore names one context object (until 2^40 reuses of one address),
// which is how tokens check identity and Asio executors find their context
// without holding a reference.
//
// One atomic word per object holds the handle count, the "entered" bit and
// the generation, so that entering is a single atomic operation, an object
// whose last handle is dropped while it is entered is freed when it is
// exited, and try_pin() can take a handle only on the generation it names.

#ifndef CTXEXEC_DETAIL_CONTEXT_IMPL_HPP
#define CTXEXEC_DETAIL_CONTEXT_IMPL_HPP

#include <ctxexec/detail/config.hpp>
#include <ctxexec/detail/hamt.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#if __has_include(<pthread.h>)
#include <pthread.h>
#define CTXEXEC_HAS_PTHREAD 1
#else
#define CTXEXEC_HAS_PTHREAD 0
#endif

namespace ctxexec::detail {

struct context_impl {
  // state: bits 0..22 count the handles (and pins), bit 23 is "entered on
  // some thread", bits 24..63 are the generation, bumped on each reuse.
  static constexpr std::uint64_t kCountMask = (std::uint64_t{1} << 23) - 1;
  static constexpr std::uint64_t kEntered = std::uint64_t{1} << 23;
  static constexpr std::uint64_t kLowMask = kCountMask | kEntered;
  static constexpr unsigned kGenerationShift = 24;

  std::atomic<std::uint64_t> state{0};
  detail::map vars;
  context_impl* next_free = nullptr;

  /// Names this use of the object, together with its address.
  std::uint64_t generation() const noexcept {
    return state.load(std::memory_order_relaxed) >> kGenerationShift;
  }
};

inline void free_context(context_impl* c) noexcept;

/// Adds a handle. The caller holds one.
inline void retain(context_impl* c) noexcept {
  c->state.fetch_add(1, std::memory_order_relaxed);
}

/// Drops a handle; frees the object with the last handle unless it is
/// entered, in which case exit() frees it.
inline void release(context_impl* c) noexcept {
  // Always a read-modify-write: try_pin() may take a handle at any moment
  // (executors name the object without owning it), so "the only handle" is
  // known only from the decrement itself.
  if ((c->state.fetch_sub(1, std::memory_order_acq_rel) &
       context_impl::kLowMask) == 1) {
    free_context(c);
  }
}

/// Takes a handle on `c` if it still is the object of `generation` and has
/// a handle, so that it cannot be freed meanwhile. Safe to call on a freed
/// or reused object, because context objects are never returned to the
/// system. Returns false (and takes nothing) otherwise.
inline bool try_pin(context_impl* c, std::uint64_t generation) noexcept {
  std::uint64_t s = c->state.load(std::memory_order_relaxed);
  do {
    if ((s >> context_impl::kGenerationShift) != generation ||
        (s & context_impl::kCountMask) == 0) {
      return false;
    }
  } while (!c->state.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed));
  return true;
}

/// Marks `c` entered. Returns false when it already was (on any thread).
inline bool try_enter(context_impl* c) noexcept {
  return (c->state.fetch_or(context_impl::kEntered, std::memory_order_acquire) &
          context_impl::kEntered) == 0;
}

/// Clears the entered bit; frees `c` if its last handle went away meanwhile.
inline void exit(context_impl* c) noexcept {
  if ((c->state.fetch_and(~context_impl::kEntered, std::memory_order_acq_rel) &
       context_impl::kLowMask) == context_impl::kEntered) {
    free_context(c);
  }
}

// ---------------------------------------------------------------------------
// Per-thread state. Only trivially constructible thread_locals are touched on
// the hot paths, so access is a plain TLS load with no guard or wrapper call.

/// The context object current on this thread; nullptr until the thread's own
/// (root) context is first needed, which is then empty.
inline thread_local context_impl* tl_current = nullptr;
/// Bumped whenever another context object becomes current on this thread,
/// which invalidates every entry of the lookup cache at once.
inline thread_local std::uint64_t tl_epoch = 1;

/// A per-thread cache of recent lookups, indexed by the variable's hash:
/// CPython keeps one such entry inside each ContextVar. An entry is valid
/// while its epoch is current; set() and reset() refresh their own
/// variable's entry, because they change no other variable's box.
struct lookup_cache_entry {
  std::uint64_t epoch;
  std::uint64_t key;
  const box* value;  // nullptr: the variable has no value
};
inline constexpr std::uint32_t kLookupCacheSize = 64;
inline thread_local lookup_cache_entry tl_lookup_cache[kLookupCacheSize] = {};

inline lookup_cache_entry& cache_entry(std::uint32_t hash) noexcept {
  return tl_lookup_cache[hash & (kLookupCacheSize - 1)];
}

/// Makes `c` the current context object of this thread.
inline void set_current(context_impl* c) noexcept {
  tl_current = c;
  ++tl_epoch;
}

/// This thread's root context, once created.
inline thread_local context_impl* tl_root = nullptr;
/// Free list of recycled context objects.
inline thread_local context_impl* tl_free = nullptr;
inline thread_local std::uint32_t tl_free_count = 0;
/// Set while this thread's exit cleanup is registered.
inline thread_local bool tl_hooked = false;

/// Makes `prev` current again when a scope ends. A scope that began before
/// the thread's root context existed saved nullptr, which means the root:
/// if the root was created meanwhile, it is current again, not lost.
inline void restore_current(context_impl* prev) noexcept {
  set_current(prev != nullptr ? prev : tl_root);
}

inline constexpr std::uint32_t kLocalFreeLimit = 64;

/// The process-wide pool that thread free lists overflow into. Never
/// destroyed, so threads that outlive static destruction stay safe.
struct global_pool {
  std::mutex mutex;
  context_impl* head = nullptr;

  static global_pool& instance() {
    static global_pool* pool = new global_pool;
    return *pool;
  }
};

inline void cleanup_thread_state() noexcept;

#if CTXEXEC_HAS_PTHREAD
/// Thread exit cleanup runs as a pthread key destructor: glibc runs those
/// after every C++ thread_local destructor, and runs them again (up to
/// PTHREAD_DESTRUCTOR_ITERATIONS times) when the key is set anew, so a
/// context created by a thread_local's destructor is freed too. The main
/// thread runs no key destructors at exit(); what it holds stays reachable
/// from its thread-locals until the process ends.
inline void on_thread_exit(void*) noexcept { cleanup_thread_state(); }

inline pthread_key_t thread_exit_key() noexcept {
  static const pthread_key_t key = [] {
    pthread_key_t k;
    if (pthread_key_create(&k, &on_thread_exit) != 0) std::abort();
    return k;
  }();
  return key;
}

[[gnu::noinline]] inline void register_thread_exit_hook() noexcept {
  tl_hooked = true;
  pthread_setspecific(thread_exit_key(), &tl_hooked);
}
#else
struct thread_exit_hook {
  ~thread_exit_hook() { cleanup_thread_state(); }
};

[[gnu::noinline]] inline void register_thread_exit_hook() noexcept {
  tl_hooked = true;
  static thread_local thread_exit_hook hook;
  (void)hook;
}
#endif

/// Makes sure this thread's exit cleanup will run.
inline void hook_thread_exit() noexcept {
  if (!tl_hooked) register_thread_exit_hook();
}

inline context_impl* allocate_context_slow() {
  {
    global_pool& pool = global_pool::instance();
    std::lock_guard<std::mutex> lock(pool.mutex);
    if (context_impl* c = pool.head) {
      pool.head = c->next_free;
      return c;
    }
  }
  return new context_impl;
}

/// Returns a context object with one handle, not entered, an empty map and
/// a generation never used before for this address.
inline context_impl* allocate_context() {
  context_impl* c = tl_free;
  if (c != nullptr) {
    tl_free = c->next_free;
    --tl_free_count;
  } else {
    c = allocate_context_slow();
  }
  // A dead object has a count of 0, which try_pin() never changes, so a
  // plain store cannot lose a concurrent update. It releases the object's
  // reset state to a try_pin() that reads it.
  const std::uint64_t generation = c->generation() + 1;
  c->state.store((generation << context_impl::kGenerationShift) | 1,
                 std::memory_order_release);
  return c;
}

inline void free_context(context_impl* c) noexcept {
  c->vars = detail::map();
  if (tl_free_count < kLocalFreeLimit) {
    hook_thread_exit();  // the list must reach the global pool at exit
    c->next_free = tl_free;
    tl_free = c;
    ++tl_free_count;
    return;
  }
  global_pool& pool = global_pool::instance();
  std::lock_guard<std::mutex> lock(pool.mutex);
  c->next_free = pool.head;
  pool.head = c;
}

/// The current context, creating the thread's root context on first use.
inline context_impl* current_for_write() {
  context_impl* c = tl_current;
  if (c != nullptr) return c;
  hook_thread_exit();  // the root must be freed at thread exit
  c = allocate_context();
  c->state.fetch_or(context_impl::kEntered, std::memory_order_relaxed);
  tl_root = c;
  set_current(c);
  return c;
}

/// Frees the thread's root context and hands its free list to the global
/// pool. Later use of ctxexec on this thread registers the cleanup again.
inline void cleanup_thread_state() noexcept {
  tl_hooked = false;
  if (context_impl* root = tl_root) {
    tl_root = nullptr;
    if (tl_current == root) set_current(nullptr);
    exit(root);
    release(root);  // may run value destructors, which may use ctxexec
  }
  context_impl* head = tl_free;
  tl_free = nullptr;
  tl_free_count = 0;
  if (head != nullptr) {
    context_impl* tail = head;
    while (tail->next_free != nullptr) tail = tail->next_free;
    global_pool& pool = global_pool::instance();
    std::lock_guard<std::mutex> lock(pool.mutex);
    tail->next_free = pool.head;
    pool.head = head;
  }
}

/// Makes a context object current for a scope without marking it entered:
/// how a task's context is made current on each of its resumptions. Does
/// nothing when the object is already current.
class adopt_scope {
 public:
  explicit adopt_scope(context_impl* c) noexcept
      : prev_(tl_current), switched_(c != prev_) {
    if (switched_) set_current(c);
  }
  adopt_scope(const adopt_scope&) = delete;
  adopt_scope& operator=(const adopt_scope&) = delete;
  ~adopt_scope() {
    if (switched_) restore_current(prev_);
  }

 private:
  context_impl* prev_;
  bool switched_;
};

/// Holds a pin on a context object with the object current, for a scope.
class pinned_scope {
 public:
  explicit pinned_scope(context_impl* c) noexcept : c_(c), prev_(tl_current) {
    set_current(c);
  }
  pinned_scope(const pinned_scope&) = delete;
  pinned_scope& operator=(const pinned_scope&) = delete;
  ~pinned_scope() {
    restore_current(prev_);  // first: the release may free the object
    release(c_);
  }

 private:
  context_impl* c_;
  context_impl* prev_;
};

/// Makes `c` current for a scope (after try_enter succeeded) and undoes it on
/// scope exit, also by exception.
class enter_scope {
 public:
  explicit enter_scope(context_impl* c) noexcept : c_(c), prev_(tl_current) {
    set_current(c);
  }
  enter_scope(const enter_scope&) = delete;
  enter_scope& operator=(const enter_scope&) = delete;
  ~enter_scope() {
    CTXEXEC_ASSERT(tl_current == c_ &&
                   "cannot exit context: thread state references a different "
                   "context object");
    restore_current(prev_);
    exit(c_);
  }

 private:
  context_impl* c_;
  context_impl* prev_;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_CONTEXT_IMPL_HPP
