// ctxexec/threads/blocking_pool.hpp
//
// Defines `blocking_pool`, the thread pool that runs blocking calls (a sync
// DB driver, a 3-5 s LLM SDK call) off the event loop, and
// `default_blocking_pool()`, one pool per Asio execution context. Threads
// start on demand and exit after an idle timeout (10 s by default, as in
// anyio); each work item runs inside the context it was submitted with, and
// the worker returns to its empty context after every item. How many run
// at once is bounded by whoever submits: `run_sync_with_context` holds a
// `capacity_limiter` token per item.
//
// Example:
//   ctxexec::blocking_pool pool;
//   pool.submit(ctxexec::copy_context(), [] { write_audit_log(); });
//   pool.shutdown();  // runs what is queued, then joins the threads
//
// Invalid calls: `submit()` after `shutdown()` throws `shutdown_error`;
// `shutdown()` from one of the pool's own workers throws
// `wrong_thread_error` (it would wait for itself). A work item that throws
// terminates the process, as an exception escaping a std::thread does.

#ifndef CTXEXEC_THREADS_BLOCKING_POOL_HPP
#define CTXEXEC_THREADS_BLOCKING_POOL_HPP

#include <ctxexec/context.hpp>
#include <ctxexec/threads/detail/blocking_pool_impl.hpp>
#include <ctxexec/threads/detail/mutex.hpp>
#include <ctxexec/threads/errors.hpp>

#include <boost/asio/execution_context.hpp>

#include <absl/base/thread_annotations.h>
#include <absl/functional/any_invocable.h>

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <ostream>

namespace ctxexec {

class blocking_pool;

namespace detail {
/// Access to a pool's shared state for ctxexec's own parts.
struct blocking_pool_access {
  static blocking_pool_impl& impl(const blocking_pool& pool) noexcept;
};
}  // namespace detail

/// Tuning of a `blocking_pool`.
///
/// Thread safety: a plain aggregate. Errors: none.
/// Example: `ctxexec::blocking_pool pool({.idle_timeout = 30s});`
struct blocking_pool_options {
  /// A worker with nothing to do for this long exits. anyio: 10 s.
  std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(10);
  /// The warm path: a worker that runs out of work polls the queue for this
  /// long before it goes to sleep, so an item submitted meanwhile starts
  /// without a thread wake-up (several microseconds saved per item, paid
  /// for with CPU time spent polling). At most one worker polls at a time.
  /// 0 (the default) never polls.
  std::chrono::steady_clock::duration spin =
      std::chrono::steady_clock::duration::zero();
  /// After handing a result back to its caller (`run_sync_with_context`),
  /// a worker keeps looking at the queue for this long before it sleeps
  /// (one poller at a time, as the warm path), yielding the CPU between
  /// looks so that a thread with work to do, such as an event loop, runs
  /// first: a caller that calls again at once finds it awake, without a
  /// thread wake-up. 0 turns it off.
  std::chrono::steady_clock::duration linger = std::chrono::microseconds(50);
  /// At most this many threads; items beyond wait in the queue. The default
  /// sets no limit of the pool's own (the capacity limiter is the bound).
  std::size_t max_threads = static_cast<std::size_t>(-1);
};

/// A snapshot of a `blocking_pool`'s state, taken under its lock.
///
/// Thread safety: a plain aggregate. Errors: none.
/// Example: `if (pool.statistics().queued > 100) shed_load();`
struct blocking_pool_statistics {
  std::size_t threads;       ///< live worker threads
  std::size_t idle_threads;  ///< workers waiting or polling for work, or
                             ///< handing an item's result back
  std::size_t running;       ///< items being run now
  std::size_t queued;        ///< items submitted and not yet started
};

/// Prints `threads=N idle=I running=R queued=Q`.
inline std::ostream& operator<<(std::ostream& os,
                                const blocking_pool_statistics& s) {
  return os << "threads=" << s.threads << " idle=" << s.idle_threads
            << " running=" << s.running << " queued=" << s.queued;
}

/// A pool of threads for blocking work.
///
/// Threads: a submitted item goes to an idle worker when there is one;
/// otherwise a new thread starts, unless `max_threads` run already (the
/// item then waits in a FIFO queue). By default the pool has no bound of
/// its own: the bound is the number of items that may run at once, which
/// callers limit (`run_sync_with_context` holds a `capacity_limiter` token
/// per item, 40 by default). A worker idle for `idle_timeout` exits.
///
/// Thread safety: distinct objects: safe; shared objects: safe (every
/// member may be called from any thread).
///
/// Propagation: `submit(ctx, item)` runs `item` inside `ctx` (as
/// `ctx.run(item)`: writes the item makes stay in `ctx`; if another thread
/// has `ctx` entered when the item starts, the worker waits for it to be
/// exited first); `submit(item)` runs it in a fresh empty context.
/// Afterwards the worker is back in its own empty context. Nothing is
/// captured at submit time except `ctx`.
///
/// Shutdown: `shutdown()` (and the destructor) stops accepting items, runs
/// every item already queued, and joins every thread. No item is dropped.
/// Called on a thread that runs an Asio event loop, it first makes the
/// workers' `from_thread` calls fail with `shutdown_error` (that loop cannot
/// serve them while it waits here).
///
/// Errors: `submit()` throws `shutdown_error` after `shutdown()` began, and
/// std::system_error if a thread cannot be started (the item is then not
/// queued). An exception escaping an item calls std::terminate, as one
/// escaping a std::thread does.
///
/// Example:
///   pool.submit(ctxexec::copy_context(), [conn] { conn->exec(sql); });
class blocking_pool {
 public:
  /// A work item: called once, as an rvalue.
  using work_item = absl::AnyInvocable<void() &&>;

  /// A pool with no threads yet.
  explicit blocking_pool(blocking_pool_options options = {})
      : impl_(std::make_shared<detail::blocking_pool_impl>(
            options.idle_timeout, options.spin, options.linger,
            options.max_threads)) {}

  /// Shuts down (see `shutdown()`). On one of the pool's own workers (say
  /// an io_context destroyed from an item), it stops accepting items and
  /// lets the workers finish the queue and exit on their own instead.
  ~blocking_pool() { impl_->release(); }

  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Queues `item` to run on a worker inside `ctx`.
  void submit(context ctx, work_item item) {
    impl_->submit(
        [ctx = std::move(ctx), item = std::move(item)]() mutable -> work_item {
          // Entered for the item; while another thread has it entered, the
          // worker waits for it (a pool thread may block).
          detail::held_scope scope(detail::context_access::impl(ctx));
          std::move(item)();
          return nullptr;
        });
  }

  /// Queues `item` to run on a worker in a fresh, empty context (so that
  /// what it sets never reaches the next item).
  void submit(work_item item) { submit(context(), std::move(item)); }

  /// Stops accepting items, runs those already queued, and joins every
  /// worker. Idempotent; when it returns (from any caller) no worker is
  /// left. Throws `wrong_thread_error` if called from one of this pool's
  /// workers.
  void shutdown() { impl_->shutdown(); }

  /// Threads, idle threads, running and queued items, read under the lock.
  [[nodiscard]] blocking_pool_statistics statistics() const {
    const auto s = impl_->statistics();
    return {s.threads, s.idle, s.running, s.queued};
  }

  /// Changes the warm path's polling time (blocking_pool_options::spin) at
  /// run time; workers pick it up when they next run out of work. For
  /// example `default_blocking_pool(io).set_spin(50us)`.
  void set_spin(std::chrono::steady_clock::duration spin) noexcept {
    impl_->set_spin(spin);
  }

  /// The options the pool was made with (spin: its current value).
  [[nodiscard]] blocking_pool_options options() const noexcept {
    return {impl_->idle_timeout(), impl_->spin(), impl_->linger(),
            impl_->max_threads()};
  }

  /// Whether the calling thread is one of this pool's workers.
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return detail::blocking_pool_impl::current() == impl_.get();
  }

 private:
  friend struct detail::blocking_pool_access;

  std::shared_ptr<detail::blocking_pool_impl> impl_;
};

namespace detail {

inline blocking_pool_impl& blocking_pool_access::impl(
    const blocking_pool& pool) noexcept {
  return *pool.impl_;
}

/// The Asio service behind default_blocking_pool(). Its shutdown(), run
/// when the execution context begins its destruction, wakes the
/// from_thread waiters of this loop (it will never serve them) and then
/// shuts the pool down: queued items run, and every worker is joined,
/// while the context's other services still exist.
class blocking_pool_service : public boost::asio::execution_context::service {
 public:
  using key_type = blocking_pool_service;
  static inline boost::asio::execution_context::id id;

  explicit blocking_pool_service(boost::asio::execution_context& ctx)
      : boost::asio::execution_context::service(ctx) {}

  blocking_pool& pool() noexcept { return pool_; }

  /// The from_thread waiters of this execution context's loop.
  const std::shared_ptr<loop_watch>& watch() const noexcept { return watch_; }

 private:
  void shutdown() override {
    watch_->close();
    blocking_pool_access::impl(pool_).release();
  }

  const std::shared_ptr<loop_watch> watch_ = std::make_shared<loop_watch>();
  blocking_pool pool_;
};

}  // namespace detail

/// The pool `run_sync_with_context` uses by default for work started from
/// `ctx`: one per execution context, held in an Asio service, made on
/// first use with default options.
///
/// Thread safety: safe (as `boost::asio::use_service`). Propagation: none.
/// Errors: std::bad_alloc.
///
/// Lifetime: when `ctx` begins its destruction, the pool is shut down:
/// `from_thread` calls waiting for `ctx`'s loop fail with `shutdown_error`,
/// items still queued run, and the workers are joined. Completions of those
/// items are destroyed with `ctx`'s queue, as Asio does with every pending
/// handler.
///
/// Example:
///   auto s = ctxexec::default_blocking_pool(io).statistics();
inline blocking_pool& default_blocking_pool(
    boost::asio::execution_context& ctx) {
  return boost::asio::use_service<detail::blocking_pool_service>(ctx).pool();
}

}  // namespace ctxexec

#endif  // CTXEXEC_THREADS_BLOCKING_POOL_HPP
