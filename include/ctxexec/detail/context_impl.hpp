// ctxexec/detail/context_impl.hpp
//
// The context object (a mutable cell holding a persistent map), its pool,
// the per-thread "current context" pointer, and the protocol by which a
// context object is entered: by one thread at a time. Not part of the
// public API.
//
// Context objects are type-stable: their memory is recycled through
// per-thread free lists and a global pool and never returned to the system,
// and each reuse bumps a generation. A (pointer, generation) pair therefore
// names one context object, which is how tokens check identity and Asio
// executors find their context without holding a reference. An address
// whose generation cannot grow any more is retired (never reused), so a
// pair never comes back.
//
// One atomic word per object holds the handle count, the "entered" bit, the
// "waiters" bit and the generation, so that entering (and checking the
// generation) is a single compare-and-swap, exiting a single
// read-modify-write, and the thread that drops the last handle or exits
// last knows it must free the object.
//
// Exclusive entry: a context object is current on at most one thread at a
// time; only that thread changes its map. A flow that finds the object
// entered by another thread either waits for it (`enter_waiting`) or
// queues a `context_waiter` that the exiting thread wakes
// (`enter_or_queue`); the Asio integration re-submits such a waiter to its
// executor. Nothing is ever current on two threads at once.
//
// Reading from elsewhere: another thread may still take a snapshot of the
// map (`snapshot_of`), for printing or inspecting a context, without
// waiting. The entered thread marks each change of the map (`edit_scope`:
// two plain stores and a load around it, ordered by an asymmetric fence),
// and a reader announces itself and waits for any change in progress to
// end; changes made while a reader is announced take the stripe lock, under
// which the reader copies the map's root. The copy is immutable from then
// on: later changes see the root shared and copy their path.

#ifndef CTXEXEC_DETAIL_CONTEXT_IMPL_HPP
#define CTXEXEC_DETAIL_CONTEXT_IMPL_HPP

#include <ctxexec/detail/asymmetric_fence.hpp>
#include <ctxexec/detail/config.hpp>
#include <ctxexec/detail/hamt.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>

#if __has_include(<pthread.h>)
#include <pthread.h>
#define CTXEXEC_HAS_PTHREAD 1
#else
#define CTXEXEC_HAS_PTHREAD 0
#endif

/// CTXEXEC_DETAIL_GENERATION_BITS: the width of a context object's
/// generation (at most 38, the default). Tests make it small to reach the
/// retirement of an address.
#ifndef CTXEXEC_DETAIL_GENERATION_BITS
#define CTXEXEC_DETAIL_GENERATION_BITS 38
#endif

/// CTXEXEC_DETAIL_HANDLE_LIMIT: how many handles one context object may
/// have at once (at most 2^23, the default); one more ends the program.
/// Tests make it small.
#ifndef CTXEXEC_DETAIL_HANDLE_LIMIT
#define CTXEXEC_DETAIL_HANDLE_LIMIT (std::uint64_t{1} << 23)
#endif

namespace ctxexec::detail {

struct context_waiter;

struct context_impl {
  // state: bits 0..23 count the handles (and the waiters' references), bit
  // 24 is "entered on some thread", bit 25 "some flow waits for the exit",
  // bits 26 and up the generation, bumped on each reuse.
  static constexpr std::uint64_t kCountMask = (std::uint64_t{1} << 24) - 1;
  static constexpr std::uint64_t kEntered = std::uint64_t{1} << 24;
  static constexpr std::uint64_t kWaiters = std::uint64_t{1} << 25;
  static constexpr unsigned kGenerationShift = 26;
  static constexpr unsigned kGenerationBits = CTXEXEC_DETAIL_GENERATION_BITS;
  static_assert(kGenerationBits >= 2 && kGenerationBits <= 64 - 26,
                "CTXEXEC_DETAIL_GENERATION_BITS must be in [2, 38]");
  /// The last generation an address gets before it is retired.
  static constexpr std::uint64_t kLastGeneration =
      (std::uint64_t{1} << kGenerationBits) - 1;
  /// Handles beyond this many end the program. Half the count field, so
  /// that the increments of all threads racing past it cannot carry.
  static constexpr std::uint64_t kHandleLimit = CTXEXEC_DETAIL_HANDLE_LIMIT;
  static_assert(kHandleLimit >= 1 && kHandleLimit <= (kCountMask + 1) / 2,
                "CTXEXEC_DETAIL_HANDLE_LIMIT must be in [1, 2^23]");

  std::atomic<std::uint64_t> state{0};
  /// The thread that entered the object (its thread tag), while entered.
  std::atomic<const void*> owner{nullptr};
  /// The entered thread is changing the map outside the stripe lock.
  std::atomic<bool> editing{false};
  /// Threads taking a snapshot of the map while another has it entered.
  std::atomic<std::uint32_t> readers{0};
  detail::map vars;
  context_impl* next_free = nullptr;
  /// Flows waiting for the object to be exited; guarded by its stripe lock.
  context_waiter* waiters = nullptr;

  /// Names this use of the object, together with its address.
  std::uint64_t generation() const noexcept {
    return state.load(std::memory_order_relaxed) >> kGenerationShift;
  }
};

/// A flow waiting for a context object to be exited. The exiting thread
/// calls `wake` once, without any lock held; the waiter then owns one
/// handle to the object (taken when it was queued) and must release it.
struct context_waiter {
  void (*wake)(context_waiter*) noexcept = nullptr;
  context_waiter* next = nullptr;
  /// For a thread blocked in enter_waiting(): set under the stripe lock.
  bool* woken = nullptr;
};

inline void free_context(context_impl* c) noexcept;

[[noreturn, gnu::cold, gnu::noinline]] inline void handle_overflow() noexcept {
  std::fprintf(stderr,
               "ctxexec: more than %llu handles to one context object (copies "
               "of one ctxexec::context, binders and queued work); aborting\n",
               static_cast<unsigned long long>(context_impl::kHandleLimit));
  std::abort();
}

/// Adds a handle. The caller holds one, or has the object entered.
inline void retain(context_impl* c) noexcept {
  if ((c->state.fetch_add(1, std::memory_order_relaxed) &
       context_impl::kCountMask) >= context_impl::kHandleLimit) {
    handle_overflow();
  }
}

/// Drops a handle; frees the object with the last handle unless it is
/// entered, in which case exit() frees it.
inline void release(context_impl* c) noexcept {
  // Always a read-modify-write: a flow that names the object may enter it
  // at any moment, so "the only handle" is known only from the decrement.
  if ((c->state.fetch_sub(1, std::memory_order_acq_rel) &
       (context_impl::kCountMask | context_impl::kEntered)) == 1) {
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
    if ((s & context_impl::kCountMask) >= context_impl::kHandleLimit) {
      handle_overflow();
    }
  } while (!c->state.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed));
  return true;
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
/// This thread's identity, by address: what `context_impl::owner` holds.
inline thread_local char tl_thread_tag = 0;

inline const void* this_thread_tag() noexcept { return &tl_thread_tag; }

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
  /// Retired objects: kept (stale names may still read them), never reused.
  context_impl* retired = nullptr;

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
  for (;;) {
    context_impl* c = tl_free;
    if (c != nullptr) {
      tl_free = c->next_free;
      --tl_free_count;
    } else {
      c = allocate_context_slow();
    }
    const std::uint64_t generation = c->generation();
    if (generation >= context_impl::kLastGeneration) {
      // Retired: its next generation would repeat a (pointer, generation)
      // pair that a stale executor or token may still hold. Its memory is
      // kept (such holders may still read the state word) and never reused.
      global_pool& pool = global_pool::instance();
      std::lock_guard<std::mutex> lock(pool.mutex);
      c->next_free = pool.retired;
      pool.retired = c;
      continue;
    }
    // A dead object has a count of 0 and is not entered, which no other
    // thread changes, so a plain store cannot lose a concurrent update. It
    // releases the object's reset state to a thread that enters it.
    c->state.store(((generation + 1) << context_impl::kGenerationShift) | 1,
                   std::memory_order_release);
    return c;
  }
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
  c->owner.store(this_thread_tag(), std::memory_order_relaxed);
  tl_root = c;
  set_current(c);
  return c;
}

// ---------------------------------------------------------------------------
// Entering and exiting.

/// Marks `c` (held by a handle) entered by this thread. Returns false when
/// it already was entered, on any thread; nothing changes then.
inline bool try_enter(context_impl* c) noexcept {
  if ((c->state.fetch_or(context_impl::kEntered, std::memory_order_seq_cst) &
       context_impl::kEntered) != 0) {
    return false;
  }
  c->owner.store(this_thread_tag(), std::memory_order_relaxed);
  return true;
}

/// What an attempt to enter a context object found.
enum class entry {
  entered,      ///< this thread has it entered now
  same_thread,  ///< this thread had it entered already (not current)
  queued,       ///< entered by another thread: the waiter will be woken
  gone,         ///< the object of that generation no longer exists
};

/// Enters the object named by (`c`, `generation`), held by nobody: one
/// compare-and-swap. Returns entered, gone, or queued meaning "busy" (no
/// waiter is queued: use enter_or_queue()).
inline entry try_enter_named(context_impl* c,
                             std::uint64_t generation) noexcept {
  std::uint64_t s = c->state.load(std::memory_order_relaxed);
  do {
    if ((s >> context_impl::kGenerationShift) != generation ||
        (s & context_impl::kCountMask) == 0) {
      return entry::gone;
    }
    if ((s & context_impl::kEntered) != 0) return entry::queued;
  } while (!c->state.compare_exchange_weak(s, s | context_impl::kEntered,
                                           std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
  c->owner.store(this_thread_tag(), std::memory_order_relaxed);
  return entry::entered;
}

/// The locks of the slow paths (waiting, waking), striped by address: each
/// guards the waiter lists of the objects that hash to it, and wakes the
/// threads blocked on them. Never destroyed.
struct entry_stripe {
  std::mutex mutex;
  std::condition_variable woken;
};

inline entry_stripe& stripe_of(const context_impl* c) noexcept {
  static constexpr std::size_t kStripes = 64;
  static entry_stripe* const stripes = new entry_stripe[kStripes];
  return stripes[(std::hash<const void*>{}(c) >> 4) % kStripes];
}

/// Any generation: for callers that hold a handle (the object cannot be
/// gone).
inline constexpr std::uint64_t kHeldGeneration = ~std::uint64_t{0};

/// enter_or_queue() with the stripe lock held. `take_handle`: a queued
/// waiter takes a handle (false when it already holds one from an earlier
/// turn).
inline entry enter_or_queue_locked(context_impl* c, std::uint64_t generation,
                                   context_waiter* w,
                                   bool take_handle) noexcept {
  std::uint64_t s = c->state.load(std::memory_order_relaxed);
  for (;;) {
    if (generation != kHeldGeneration &&
        ((s >> context_impl::kGenerationShift) != generation ||
         (s & context_impl::kCountMask) == 0)) {
      return entry::gone;
    }
    if ((s & context_impl::kEntered) == 0) {
      if (c->state.compare_exchange_weak(s, s | context_impl::kEntered,
                                         std::memory_order_seq_cst,
                                         std::memory_order_relaxed)) {
        c->owner.store(this_thread_tag(), std::memory_order_relaxed);
        return entry::entered;
      }
      continue;
    }
    if (c->owner.load(std::memory_order_relaxed) == this_thread_tag()) {
      return entry::same_thread;
    }
    if ((s & context_impl::kCountMask) == 0) {
      return entry::gone;  // entered and dying: freed when exited
    }
    if (take_handle &&
        (s & context_impl::kCountMask) >= context_impl::kHandleLimit) {
      handle_overflow();
    }
    // Marked while it is still entered, so that its exit sees the mark.
    const std::uint64_t marked =
        (s | context_impl::kWaiters) + (take_handle ? 1 : 0);
    if (c->state.compare_exchange_weak(s, marked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      w->next = nullptr;
      context_waiter** tail = &c->waiters;
      while (*tail != nullptr) tail = &(*tail)->next;
      *tail = w;  // FIFO
      return entry::queued;
    }
  }
}

/// Enters `c` (named by `generation`, or held: kHeldGeneration). If another
/// thread has it entered, queues `w`, which holds a handle from then on and
/// is woken when that thread exits it.
inline entry enter_or_queue(context_impl* c, std::uint64_t generation,
                            context_waiter* w) noexcept {
  entry_stripe& stripe = stripe_of(c);
  std::lock_guard<std::mutex> lock(stripe.mutex);
  return enter_or_queue_locked(c, generation, w, true);
}

/// Wakes the waiters of `c`, which its exiting thread found marked.
[[gnu::noinline]] inline void wake_waiters(context_impl* c) noexcept {
  entry_stripe& stripe = stripe_of(c);
  context_waiter* to_wake = nullptr;  // reversed: FIFO order restored below
  bool blocked = false;
  {
    std::lock_guard<std::mutex> lock(stripe.mutex);
    context_waiter* w = c->waiters;
    c->waiters = nullptr;
    c->state.fetch_and(~context_impl::kWaiters, std::memory_order_relaxed);
    while (w != nullptr) {
      context_waiter* next = w->next;
      if (w->woken != nullptr) {
        // A blocked thread: it may return (and its waiter die) as soon as
        // the lock is released, so it is never touched after this.
        *w->woken = true;
        blocked = true;
      } else {
        w->next = to_wake;
        to_wake = w;
      }
      w = next;
    }
  }
  if (blocked) stripe.woken.notify_all();
  context_waiter* fifo = nullptr;
  while (to_wake != nullptr) {
    context_waiter* next = to_wake->next;
    to_wake->next = fifo;
    fifo = to_wake;
    to_wake = next;
  }
  while (fifo != nullptr) {
    context_waiter* next = fifo->next;  // `fifo` may be gone after wake
    fifo->wake(fifo);
    fifo = next;
  }
}

/// Clears the entered bit; wakes the flows that wait for it; frees `c` if
/// its last handle went away meanwhile.
inline void exit(context_impl* c) noexcept {
  c->owner.store(nullptr, std::memory_order_relaxed);
  const std::uint64_t old =
      c->state.fetch_and(~context_impl::kEntered, std::memory_order_acq_rel);
  if ((old & context_impl::kWaiters) != 0) {
    wake_waiters(c);  // they hold handles: `c` is not freed here
  } else if ((old & (context_impl::kCountMask | context_impl::kEntered)) ==
             context_impl::kEntered) {
    free_context(c);
  }
}

/// Enters `c` (named by `generation`, or held: kHeldGeneration), blocking
/// the calling thread while another thread has it entered. Returns entered,
/// same_thread or gone; never queued.
[[gnu::noinline]] inline entry enter_waiting(context_impl* c,
                                             std::uint64_t generation) {
  entry_stripe& stripe = stripe_of(c);
  bool woken = false;
  context_waiter w;
  w.woken = &woken;
  bool holds_handle = false;
  entry result;
  {
    std::unique_lock<std::mutex> lock(stripe.mutex);
    for (;;) {
      result = enter_or_queue_locked(c, generation, &w, !holds_handle);
      if (result != entry::queued) break;
      holds_handle = true;
      stripe.woken.wait(lock, [&] { return woken; });
      woken = false;
    }
  }
  if (holds_handle) release(c);  // entered (or same thread): stays alive
  return result;
}

// ---------------------------------------------------------------------------
// Changes of the map, and snapshots of it from other threads.

/// The context object whose map this thread is changing, if any.
inline thread_local context_impl* tl_editing = nullptr;

/// Brackets a change of `c->vars` by the thread that has `c` current. A
/// change made inside another change of the same map (a value's destructor
/// run by a release in it) is covered by the outer one.
class edit_scope {
 public:
  explicit edit_scope(context_impl* c) noexcept
      : context_(c), prev_(tl_editing) {
    if (prev_ == c) return;  // nested: the outer scope covers it
    tl_editing = c;
    c->editing.store(true, std::memory_order_relaxed);
    light_fence();
    // Sequentially consistent (a plain load on x86): a reader that found
    // the object not entered, and so issued no heavy fence, is seen here;
    // and what a reader that left read happens before this change.
    if (c->readers.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
      lock_slow();
    }
  }
  edit_scope(const edit_scope&) = delete;
  edit_scope& operator=(const edit_scope&) = delete;
  ~edit_scope() {
    if (prev_ == context_) return;
    if (locked_) [[unlikely]] {
      stripe_of(context_).mutex.unlock();
    } else {
      context_->editing.store(false, std::memory_order_release);
    }
    tl_editing = prev_;
  }

 private:
  [[gnu::noinline]] void lock_slow() noexcept {
    context_->editing.store(false, std::memory_order_relaxed);
    stripe_of(context_).mutex.lock();
    locked_ = true;
  }

  context_impl* context_;
  context_impl* prev_;
  bool locked_ = false;
};

/// A copy of the map of `c` (held by a handle), which another thread may
/// have entered and be changing: it waits for no more than a change in
/// progress to end. It never enters the object, so it never makes a
/// `run()` elsewhere fail.
[[gnu::noinline]] inline map snapshot_of(context_impl* c) {
  entry_stripe& stripe = stripe_of(c);
  std::lock_guard<std::mutex> lock(stripe.mutex);
  c->readers.fetch_add(1, std::memory_order_seq_cst);
  // Not entered: a thread that enters from now on sees this reader at its
  // first change (entering and that load are sequentially consistent), and
  // what the last one changed happens before its exit, which this load
  // reads. Entered: its current change may have missed the reader, so every
  // thread runs a full barrier, and a change in progress is waited out.
  if ((c->state.load(std::memory_order_seq_cst) & context_impl::kEntered) !=
      0) {
    heavy_fence();
    while (c->editing.load(std::memory_order_acquire)) {
      std::this_thread::yield();  // a change in progress: a few nanoseconds
    }
  }
  map copy = c->vars;  // changes from now on take the lock, or copy paths
  c->readers.fetch_sub(1, std::memory_order_release);
  return copy;
}

// ---------------------------------------------------------------------------
// Scopes.

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

/// Makes a context object current for a scope without entering it: for an
/// object this thread has entered already (or its own root). Does nothing
/// when the object is already current.
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

/// Makes `c` current for a scope (after this thread entered it) and exits
/// it on scope exit, also by exception.
class enter_scope {
 public:
  explicit enter_scope(context_impl* c) noexcept
      : context_(c), prev_(tl_current) {
    set_current(c);
  }
  enter_scope(const enter_scope&) = delete;
  enter_scope& operator=(const enter_scope&) = delete;
  ~enter_scope() {
    CTXEXEC_ASSERT(tl_current == context_ &&
                   "cannot exit context: thread state references a different "
                   "context object");
    restore_current(prev_);  // first: the exit may free the object
    exit(context_);
  }

 private:
  context_impl* context_;
  context_impl* prev_;
};

/// Makes `c` (held by a handle, or nullptr for "leave the current context
/// alone") current for a scope: entered for it, waiting while another
/// thread has it entered; or adopted, when this thread has it entered
/// already; or left as it is, when it is current already.
class held_scope {
 public:
  explicit held_scope(context_impl* c) : context_(c), prev_(tl_current) {
    if (c == nullptr || c == prev_) return;
    const entry e =
        try_enter(c) ? entry::entered : enter_waiting(c, kHeldGeneration);
    mode_ = e == entry::entered ? mode::entered : mode::adopted;
    set_current(c);
  }
  held_scope(const held_scope&) = delete;
  held_scope& operator=(const held_scope&) = delete;
  ~held_scope() {
    if (mode_ == mode::none) return;
    restore_current(prev_);  // first: the exit may free the object
    if (mode_ == mode::entered) exit(context_);
  }

 private:
  enum class mode : unsigned char { none, entered, adopted };
  context_impl* context_;
  context_impl* prev_;
  mode mode_ = mode::none;
};

/// Runs `f` with the object named by (`c`, `generation`) current, entering
/// it for the call, waiting while another thread has it entered; or, when
/// it is current on this thread already (or entered by it), without
/// entering. Returns false, without calling `f`, when the object is gone.
template <class F>
bool run_in_waiting(context_impl* c, std::uint64_t generation, F&& f) {
  if (c == tl_current) {
    if (c->generation() != generation) {
      return false;  // the named object is gone; this one reuses its address
    }
    std::forward<F>(f)();
    return true;
  }
  entry e = try_enter_named(c, generation);
  if (e == entry::queued) e = enter_waiting(c, generation);
  switch (e) {
    case entry::entered: {
      enter_scope scope(c);
      std::forward<F>(f)();
      return true;
    }
    case entry::same_thread: {
      adopt_scope scope(c);
      std::forward<F>(f)();
      return true;
    }
    default:
      return false;
  }
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_CONTEXT_IMPL_HPP
