// ctxexec/detail/blocking_pool_impl.hpp
//
// Not API. The state of a `blocking_pool`: a FIFO queue of work items and
// the worker threads.

#ifndef CTXEXEC_DETAIL_BLOCKING_POOL_IMPL_HPP
#define CTXEXEC_DETAIL_BLOCKING_POOL_IMPL_HPP

#include <ctxexec/detail/mutex.hpp>
#include <ctxexec/errors.hpp>

#include <absl/base/thread_annotations.h>
#include <absl/functional/any_invocable.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <exception>
#include <list>
#include <memory>
#include <thread>
#include <utility>

namespace ctxexec::detail {

class blocking_pool_impl {
 public:
  using work_item = absl::AnyInvocable<void() &&>;
  using clock = std::chrono::steady_clock;

  struct counts {
    std::size_t threads, idle, running, queued;
  };

  blocking_pool_impl(clock::duration idle_timeout, clock::duration spin,
                     std::size_t max_threads)
      : idle_timeout_(idle_timeout),
        spin_(spin.count()),
        max_threads_(max_threads == 0 ? 1 : max_threads) {}

  ~blocking_pool_impl() { shutdown(); }

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
  std::size_t max_threads() const noexcept { return max_threads_; }

  void submit(work_item item) {
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
    work_available_.notify_all();
  }

  void shutdown() {
    if (current() == this) {
      throw wrong_thread_error(
          "ctxexec::blocking_pool: shutdown() from one of its own workers "
          "would wait for itself");
    }
    close();
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

  counts statistics() const {
    mutex_lock lock(mu_);
    return {threads_, idle_ + spinning_, running_, queue_.size()};
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
      *self = std::thread([this, self] { worker_main(self); });
    } catch (...) {
      threads_list_.erase(self);
      throw;
    }
    ++threads_;
  }

  void worker_main(std::list<std::thread>::iterator self) {
    tl_current_pool() = this;
    mu_.lock();
    for (;;) {
      if (!queue_.empty()) {
        work_item item = std::move(queue_.front());
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_release);
        ++running_;
        mu_.unlock();
        run_item(std::move(item));
        mu_.lock();
        --running_;
        continue;
      }
      if (closed_) break;
      // One poller at a time: it serves the next item without a wake-up,
      // and the CPU time spent polling stays bounded by one thread's.
      if (const auto spin = this->spin();
          spin > clock::duration::zero() && spinning_ == 0) {
        ++spinning_;
        mu_.unlock();
        poll_for_work(spin);
        mu_.lock();
        --spinning_;
        if (!queue_.empty() || closed_) continue;
      }
      ++idle_;
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

  void poll_for_work(clock::duration spin) {
    const auto deadline = clock::now() + spin;
    do {
      for (int i = 0; i < 64; ++i) {
        if (queued_.load(std::memory_order_acquire) != 0) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    } while (clock::now() < deadline);
  }

  static void run_item(work_item item) noexcept {
    try {
      std::move(item)();
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
  const std::size_t max_threads_;

  mutable mutex mu_;
  condition_variable work_available_;
  condition_variable all_exited_;
  std::deque<work_item> queue_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::size_t> queued_{0};  // queue_.size(), for pollers
  std::list<std::thread> threads_list_ ABSL_GUARDED_BY(mu_);
  std::list<std::thread> exited_ ABSL_GUARDED_BY(mu_);
  std::size_t threads_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t spinning_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  mutex join_mu_;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_BLOCKING_POOL_IMPL_HPP
