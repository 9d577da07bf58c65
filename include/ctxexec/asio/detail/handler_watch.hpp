// ctxexec/asio/detail/handler_watch.hpp
//
// Not API. What a `loop_monitor`'s watchdog reads to see a handler that
// blocks its thread: one `watch_slot` per thread that runs a monitored
// io_context, written by that thread around every handler that runs in a
// context (a step of a ctxexec task, a function through a
// context_executor, a `bind_context` handler) with a few plain stores, and
// read by the watchdog thread.
//
// Cost while no monitor runs: one relaxed load of a global and a branch per
// handler. While one runs: a load of a thread-local key, four relaxed
// stores at the start and one at the end of the outermost handler.
// Nothing is allocated on that path; a thread's slot is made the first time
// it runs a handler while a monitor watches its loop, and reused by later
// threads once its thread exits. Slots are never freed, so a watchdog may
// read any slot at any time.

#ifndef CTXEXEC_ASIO_DETAIL_HANDLER_WATCH_HPP
#define CTXEXEC_ASIO_DETAIL_HANDLER_WATCH_HPP

#include <ctxexec/asio/detail/asio_private.hpp>
#include <ctxexec/detail/context_impl.hpp>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace ctxexec::detail {

/// One thread's current handler, as a watchdog sees it.
struct watch_slot {
  /// Odd while a watched handler runs; each handler has its own value.
  std::atomic<std::uint64_t> seq{0};
  std::atomic<context_impl*> context{nullptr};
  std::atomic<std::uint64_t> generation{0};
  /// watch_clock when the handler started.
  std::atomic<std::int64_t> start{0};
  /// The io_context whose run() the thread was in when its slot was last
  /// claimed for a monitor, or nullptr.
  std::atomic<const void*> loop{nullptr};
  /// The owning thread: set, and read by watchdogs, under the registry
  /// mutex. A default id for a free slot.
  std::thread::id thread;
  /// A small number naming the slot in reports.
  unsigned index = 0;
  /// Nesting depth of watched handlers; the owning thread's only.
  unsigned depth = 0;
  /// Registry list; set once, before the slot is published.
  watch_slot* next = nullptr;
};

/// Monitors running (any io_context): 0 keeps the handler path to a load.
inline std::atomic<int> watch_active{0};
/// Bumped whenever a monitor starts or stops: threads re-check their slot.
inline std::atomic<std::uint64_t> watch_epoch{1};
/// A coarse clock (steady_clock nanoseconds), advanced by every running
/// watchdog at each tick: read for the cost of a load at a handler's start.
inline std::atomic<std::int64_t> watch_clock{0};

/// Every slot ever made, and the loops that monitors watch. Never
/// destroyed: watchdogs and threads may outlive static destruction.
struct watch_registry {
  std::mutex mutex;
  watch_slot* head = nullptr;                   // guarded by mutex for writes
  std::vector<boost::asio::io_context*> loops;  // guarded by mutex
  unsigned slots = 0;                           // guarded by mutex

  static watch_registry& instance() {
    static watch_registry* registry = new watch_registry;
    return *registry;
  }
};

inline thread_local watch_slot* tl_watch_slot = nullptr;
/// What the thread's slot was last checked against: the epoch and the
/// Asio run() it was inside.
inline thread_local std::uint64_t tl_watch_epoch = 0;
inline thread_local const void* tl_watch_stack = nullptr;

/// Frees a thread's slot for reuse when the thread exits.
struct watch_slot_owner {
  watch_slot* slot = nullptr;
  ~watch_slot_owner() {
    if (slot == nullptr) return;
    watch_registry& r = watch_registry::instance();
    std::lock_guard<std::mutex> lock(r.mutex);
    slot->loop.store(nullptr, std::memory_order_relaxed);
    slot->thread = std::thread::id();
    tl_watch_slot = nullptr;
  }
};

/// Finds whether a monitor watches the loop this thread runs, and claims
/// (or releases) this thread's slot accordingly. Cold: after a monitor
/// started or stopped, or when the thread entered another run().
[[gnu::noinline]] inline watch_slot* refresh_watch_slot() {
  tl_watch_epoch = watch_epoch.load(std::memory_order_acquire);
  tl_watch_stack = asio_call_stack_top();
  watch_registry& r = watch_registry::instance();
  std::lock_guard<std::mutex> lock(r.mutex);
  const void* loop = nullptr;
  for (boost::asio::io_context* io : r.loops) {
    if (io->get_executor().running_in_this_thread()) {
      loop = io;
      break;
    }
  }
  watch_slot* s = tl_watch_slot;
  if (loop == nullptr) {
    if (s != nullptr) s->loop.store(nullptr, std::memory_order_relaxed);
    return nullptr;
  }
  if (s == nullptr) {
    for (watch_slot* free = r.head; free != nullptr; free = free->next) {
      if (free->thread == std::thread::id()) {
        s = free;
        break;
      }
    }
    if (s == nullptr) {
      s = new watch_slot;
      s->index = r.slots++;
      s->next = r.head;
      r.head = s;
    }
    s->thread = std::this_thread::get_id();
    static thread_local watch_slot_owner owner;
    owner.slot = s;
    tl_watch_slot = s;
  }
  s->loop.store(loop, std::memory_order_relaxed);
  return s;
}

/// Marks the outermost watched handler on this thread for a scope: the
/// object it runs in and when it started.
class watch_scope {
 public:
  watch_scope(context_impl* c, std::uint64_t generation) noexcept {
    if (watch_active.load(std::memory_order_relaxed) == 0) return;
    start(c, generation);
  }
  watch_scope(const watch_scope&) = delete;
  watch_scope& operator=(const watch_scope&) = delete;
  ~watch_scope() {
    if (slot_ == nullptr) return;
    if (--slot_->depth == 0) {
      slot_->seq.store(slot_->seq.load(std::memory_order_relaxed) + 1,
                       std::memory_order_release);
    }
  }

 private:
  void start(context_impl* c, std::uint64_t generation) noexcept {
    watch_slot* s = tl_watch_slot;
    if (tl_watch_epoch != watch_epoch.load(std::memory_order_relaxed) ||
        (s == nullptr && tl_watch_stack != asio_call_stack_top()) ||
        (s != nullptr && s->loop.load(std::memory_order_relaxed) == nullptr &&
         tl_watch_stack != asio_call_stack_top())) {
      try {
        s = refresh_watch_slot();
      } catch (...) {
        return;  // out of memory for a slot: this handler goes unwatched
      }
    }
    if (s == nullptr || s->loop.load(std::memory_order_relaxed) == nullptr) {
      return;
    }
    slot_ = s;
    if (s->depth++ != 0) return;  // nested: the outer handler is watched
    s->context.store(c, std::memory_order_relaxed);
    s->generation.store(generation, std::memory_order_relaxed);
    s->start.store(watch_clock.load(std::memory_order_relaxed),
                   std::memory_order_relaxed);
    s->seq.store(s->seq.load(std::memory_order_relaxed) + 1,
                 std::memory_order_release);
  }

  watch_slot* slot_ = nullptr;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_ASIO_DETAIL_HANDLER_WATCH_HPP
