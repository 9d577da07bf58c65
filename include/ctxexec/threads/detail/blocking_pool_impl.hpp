// ctxexec/threads/detail/blocking_pool_impl.hpp
//
// Not API. The state of a `blocking_pool`: a FIFO queue of work items, the
// worker threads, and the `from_thread` waiters of those workers; and
// `loop_watch`, the from_thread waiters of one event loop.
//
// An item may hand back a continuation (a hand-off). The worker counts as
// idle before it runs it, so that whoever the hand-off tells the item is
// done (run_sync_with_context posts its caller's completion there) finds
// the worker available for its next item instead of starting a thread.

#ifndef CTXEXEC_THREADS_DETAIL_BLOCKING_POOL_IMPL_HPP
#define CTXEXEC_THREADS_DETAIL_BLOCKING_POOL_IMPL_HPP

#include <ctxexec/asio/detail/asio_private.hpp>
#include <ctxexec/threads/detail/mutex.hpp>
#include <ctxexec/threads/errors.hpp>

#include <absl/base/thread_annotations.h>
#include <absl/functional/any_invocable.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <list>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

namespace ctxexec::detail {

/// A thread blocked in a from_thread call, to be woken with an error if the
/// event loop it waits for can no longer serve it.
class loop_waiter {
 public:
  virtual void loop_gone() noexcept = 0;

 protected:
  ~loop_waiter() = default;
};

/// A set of from_thread waiters that are woken together: those of one
/// event loop (woken when it is destroyed), or those of one pool's workers
/// (woken when the pool is shut down from an event-loop thread, which could
/// otherwise wait for them while they wait for it). Shared, so that a
/// waiter may unregister after the owner of the watch is gone.
class loop_watch {
 public:
  /// Registers `w`; false if the watch is closed already.
  bool add(loop_waiter* w) {
    mutex_lock lock(mu_);
    if (closed_) return false;
    waiters_.push_back(w);
    return true;
  }

  void remove(loop_waiter* w) {
    mutex_lock lock(mu_);
    waiters_.remove(w);
  }

  /// Wakes every waiter with an error; later add()s fail.
  void close() {
    mutex_lock lock(mu_);
    closed_ = true;
    for (loop_waiter* w : waiters_) w->loop_gone();
    waiters_.clear();
  }

 private:
  mutex mu_;
  std::list<loop_waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class blocking_pool_impl
    : public std::enable_shared_from_this<blocking_pool_impl> {
 public:
  using work_item = absl::AnyInvocable<void() &&>;
  /// What the queue holds: an item that returns its hand-off (empty for
  /// none), run once the worker counts as idle.
  using task = absl::AnyInvocable<work_item() &&>;
  using clock = std::chrono::steady_clock;

  struct counts {
    std::size_t threads, idle, running, queued;
    /// Times a worker went to sleep waiting for work (for tests).
    std::uint64_t sleeps;
  };

  blocking_pool_impl(clock::duration idle_timeout, clock::duration spin,
                     clock::duration linger, std::size_t max_threads)
      : idle_timeout_(idle_timeout),
        spin_(spin.count()),
        linger_(linger),
        max_threads_(max_threads == 0 ? 1 : max_threads) {}

  // Joined or detached by then: see shutdown() and release().
  ~blocking_pool_impl() = default;

  blocking_pool_impl(const blocking_pool_impl&) = delete;
  blocking_pool_impl& operator=(const blocking_pool_impl&) = delete;

  /// The pool whose worker the calling thread is, or nullptr.
  static blocking_pool_impl* current() noexcept { return tl_current_pool(); }

  clock::duration idle_timeout() const noexcept { return idle_timeout_; }
  clock::duration spin() const noexcept {
    return clock::duration(spin_.load(std::memory_order_relaxed));
  }
  void set_spin(clock::duration d) noexcept {
    spin_.store(d.count(), std::memory_order_relaxed);
  }
  clock::duration linger() const noexcept { return linger_; }
  std::size_t max_threads() const noexcept { return max_threads_; }

  void submit(task item) {
    std::list<std::thread> exited;
    {
      mutex_lock lock(mu_);
      if (closed_) {
        throw shutdown_error("ctxexec::blocking_pool: submit() after shutdown");
      }
      queue_.push_back(std::move(item));
      queued_.store(queue_.size(), std::memory_order_release);
      const std::size_t waiting_for_work = idle_ + spinning_;
      if (spinning_ >= queue_.size()) {
        // A polling worker will take it without a wake-up.
      } else if (waiting_for_work >= queue_.size() ||
                 threads_ >= max_threads_) {
        if (idle_ > 0) work_available_.notify_one();
      } else {
        try {
          start_worker_locked();
        } catch (...) {
          queue_.pop_back();
          queued_.store(queue_.size(), std::memory_order_release);
          throw;
        }
      }
      exited.swap(exited_);
    }
    for (std::thread& t : exited) t.join();
  }

  /// Stops accepting items; queued items still run.
  void close() {
    mutex_lock lock(mu_);
    closed_ = true;
    closing_.store(true, std::memory_order_release);  // stops pollers
    work_available_.notify_all();
  }

  /// The from_thread waiters of this pool's workers.
  const std::shared_ptr<loop_watch>& waiters() const noexcept {
    return waiters_;
  }

  void shutdown() {
    if (current() == this) {
      throw wrong_thread_error(
          "ctxexec::blocking_pool: shutdown() from one of its own workers "
          "would wait for itself");
    }
    close();
    if (inside_asio_handler()) {
      // Called inside an Asio event loop, which cannot serve the
      // from_thread calls of workers while it waits here for them.
      waiters_->close();
    }
    mutex_lock join_lock(join_mu_);  // a second caller returns after joining
    std::list<std::thread> threads;
    {
      mutex_lock lock(mu_);
      while (threads_ != 0) all_exited_.wait(mu_);
      threads.swap(threads_list_);
      threads.splice(threads.end(), exited_);
    }
    for (std::thread& t : threads) t.join();
  }

  /// For the destructor of the owning handle: shutdown(), or, on one of
  /// this pool's own workers, close() and let the threads finish detached
  /// (each holds the state alive until it exits).
  void release() noexcept {
    if (current() != this) {
      shutdown();
      return;
    }
    close();
    mutex_lock lock(mu_);
    for (std::thread& t : threads_list_) t.detach();
    for (std::thread& t : exited_) t.detach();
  }

  counts statistics() const {
    mutex_lock lock(mu_);
    return {threads_, idle_ + spinning_, running_, queue_.size(), sleeps_};
  }

 private:
  static blocking_pool_impl*& tl_current_pool() noexcept {
    static thread_local blocking_pool_impl* pool = nullptr;
    return pool;
  }

  void start_worker_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    threads_list_.emplace_back();
    auto self = threads_list_.end();
    --self;
    try {
      *self = std::thread([keep_alive = shared_from_this(), self] {
        keep_alive->worker_main(self);
      });
    } catch (...) {
      threads_list_.erase(self);
      throw;
    }
    ++threads_;
  }

  void worker_main(std::list<std::thread>::iterator self) {
    tl_current_pool() = this;
    mu_.lock();
    bool handed_off = false;
    for (;;) {
      if (!queue_.empty()) {
        task item = std::move(queue_.front());
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_release);
        ++running_;
        mu_.unlock();
        work_item hand_off = run_item(std::move(item));
        mu_.lock();
        --running_;
        handed_off = hand_off != nullptr;
        if (handed_off) {
          // Idle first: a submit() made by whoever the hand-off tells finds
          // this worker (it looks at the queue again before it waits).
          ++idle_;
          mu_.unlock();
          run_item(std::move(hand_off));
          mu_.lock();
          --idle_;
        }
        continue;
      }
      if (closed_) break;
      // One poller at a time: it serves the next item without a wake-up,
      // and the CPU time spent polling stays bounded by one thread's.
      // After a hand-off, it polls at least linger_: the caller it just
      // answered often calls again at once.
      const auto warm = this->spin();
      const auto spin = handed_off ? std::max(warm, linger_) : warm;
      // Lingering beyond the warm path yields the CPU between looks: a
      // thread that has work to do (an event loop) runs first.
      const bool yielding = spin > warm;
      handed_off = false;
      if (spin > clock::duration::zero() && spinning_ == 0) {
        ++spinning_;
        mu_.unlock();
        poll_for_work(spin, yielding);
        mu_.lock();
        --spinning_;
        if (!queue_.empty() || closed_) continue;
      }
      ++idle_;
      ++sleeps_;
      const bool woken = work_available_.wait_for(mu_, idle_timeout_);
      --idle_;
      if (!woken && queue_.empty() && !closed_) {
        // Idle for idle_timeout: exit; the next submit() or shutdown()
        // joins this thread.
        exited_.splice(exited_.end(), threads_list_, self);
        break;
      }
    }
    if (--threads_ == 0) all_exited_.notify_all();
    mu_.unlock();
    tl_current_pool() = nullptr;
  }

  void poll_for_work(clock::duration spin, bool yielding) {
    const auto deadline = clock::now() + spin;
    do {
      for (int i = 0; i < 64; ++i) {
        if (queued_.load(std::memory_order_acquire) != 0 ||
            closing_.load(std::memory_order_acquire)) {
          return;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (yielding) std::this_thread::yield();
    } while (clock::now() < deadline);
  }

  /// Runs an item or a hand-off; returns what it returns.
  template <class Item>
  static std::invoke_result_t<Item&&> run_item(Item item) noexcept {
    try {
      return std::move(item)();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ctxexec::blocking_pool: a work item threw: %s\n",
                   e.what());
      std::terminate();
    } catch (...) {
      std::fprintf(stderr, "ctxexec::blocking_pool: a work item threw\n");
      std::terminate();
    }
  }

  const clock::duration idle_timeout_;
  std::atomic<clock::rep> spin_;
  const clock::duration linger_;
  const std::size_t max_threads_;

  mutable mutex mu_;
  condition_variable work_available_;
  condition_variable all_exited_;
  std::deque<task> queue_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::size_t> queued_{0};  // queue_.size(), for pollers
  std::atomic<bool> closing_{false};    // closed_, for pollers
  std::list<std::thread> threads_list_ ABSL_GUARDED_BY(mu_);
  std::list<std::thread> exited_ ABSL_GUARDED_BY(mu_);
  std::size_t threads_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t spinning_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint64_t sleeps_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  mutex join_mu_;
  const std::shared_ptr<loop_watch> waiters_ = std::make_shared<loop_watch>();
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_THREADS_DETAIL_BLOCKING_POOL_IMPL_HPP
