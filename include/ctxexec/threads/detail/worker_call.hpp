// ctxexec/threads/detail/worker_call.hpp
//
// Not API. `worker_call`: what a `run_sync_with_context` function carries
// in its context while it runs on a worker, for the code it reaches:
//
// - which limiter's token it holds, so that a nested call made through
//   from_thread recognises starvation (see docs/executors.md);
// - the tasks it started on an event loop with `from_thread::run`, so that
//   cancelling the call cancels them: anyio's from_thread.run tasks live in
//   the host task's cancel scope.
//
// The call is found through a hidden context variable, which from_thread
// copies to the loop with the rest of the worker's context: neither there
// nor on the worker does it show in the context's size, iteration or
// printing.

#ifndef CTXEXEC_THREADS_DETAIL_WORKER_CALL_HPP
#define CTXEXEC_THREADS_DETAIL_WORKER_CALL_HPP

#include <ctxexec/context_var.hpp>
#include <ctxexec/threads/detail/mutex.hpp>

#include <absl/base/thread_annotations.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>
#include <vector>

namespace ctxexec::detail {

class worker_call {
 public:
  /// A task started with from_thread::run, seen from the call.
  class task {
   public:
    /// Emits terminal cancellation into the task, through its executor.
    virtual void cancel() = 0;

   protected:
    ~task() = default;
  };

  explicit worker_call(const void* limiter) noexcept : limiter_(limiter) {}
  worker_call(const worker_call&) = delete;
  worker_call& operator=(const worker_call&) = delete;

  /// The limiter whose token the call holds while its function runs.
  [[nodiscard]] const void* limiter() const noexcept { return limiter_; }

  /// Whether the function still runs (and holds the token).
  [[nodiscard]] bool active() const noexcept {
    return active_.load(std::memory_order_acquire);
  }

  /// The function returned, or never ran.
  void finish() noexcept { active_.store(false, std::memory_order_release); }

  /// Registers a task the function started. Returns false, registering
  /// nothing, when the call was cancelled already: the caller then cancels
  /// the task itself.
  bool add(std::shared_ptr<task> t) {
    mutex_lock lock(mu_);
    if (cancelled_) return false;
    tasks_.push_back(std::move(t));
    return true;
  }

  /// Unregisters a task that completed.
  void remove(const task* t) noexcept {
    mutex_lock lock(mu_);
    std::erase_if(tasks_, [t](const auto& p) { return p.get() == t; });
  }

  /// The call was cancelled (terminal): cancels its tasks, and makes add()
  /// refuse the ones started later.
  void cancel_tasks() {
    std::vector<std::shared_ptr<task>> tasks;
    {
      mutex_lock lock(mu_);
      cancelled_ = true;
      tasks.swap(tasks_);
    }
    for (const auto& t : tasks) t->cancel();
  }

 private:
  const void* const limiter_;
  std::atomic<bool> active_{true};
  mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<task>> tasks_ ABSL_GUARDED_BY(mu_);
};

/// The variable that holds the call, in the worker's copy of the context: a
/// hidden one, which contexts carry but never count, list or print.
inline context_var<std::shared_ptr<worker_call>>& worker_call_var() {
  using value = std::shared_ptr<worker_call>;
  static auto* var = new context_var<value>(
      context_var_access::hidden<value>("ctxexec.worker_call"));
  return *var;
}

/// The run_sync_with_context call on whose behalf the calling code runs
/// (its function, or code it reached through from_thread), while that
/// function runs; else nullptr.
[[nodiscard]] inline std::shared_ptr<worker_call> current_worker_call() {
  const std::shared_ptr<worker_call>* call = worker_call_var().try_get();
  if (call == nullptr || *call == nullptr || !(*call)->active()) return {};
  return *call;
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_THREADS_DETAIL_WORKER_CALL_HPP
