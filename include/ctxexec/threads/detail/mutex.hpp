// ctxexec/threads/detail/mutex.hpp: `mutex`, `mutex_lock` and
// `condition_variable`, thin wrappers over absl::Mutex and absl::CondVar that
// ThreadSanitizer can see through. Not part of the public API.
//
// Example:
//   detail::mutex mu;
//   bool ready ABSL_GUARDED_BY(mu) = false;
//   detail::mutex_lock lock(mu);
//   cv.wait(mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ready; });
//
// Why the wrapper: the Abseil shipped by distributions is not built with
// -fsanitize=thread, so TSan never sees absl::Mutex lock or unlock (they live
// in mutex.cc) and reports every access guarded by one as a data race. Under
// TSan these wrappers publish the happens-before edges themselves:
// `__tsan_release(this)` before the mutex is released (unlock, the start of
// a wait) and `__tsan_acquire(this)` once it is held again (lock, try_lock,
// the end of a wait). Without TSan they cost nothing. Define
// CTXEXEC_DETAIL_NO_TSAN_ANNOTATIONS to switch the edges off (a test does,
// to prove TSan then complains).
//
// The classes carry Clang's thread-safety attributes, so a member declared
// `ABSL_GUARDED_BY(mu_)` is checked by -Wthread-safety.
//
// Invalid use: unlocking a mutex this thread does not hold, locking it twice
// on one thread, or destroying it while held is undefined behaviour (absl
// aborts on some of these in its debug builds; -Wthread-safety rejects the
// ones it can see).

#ifndef CTXEXEC_THREADS_DETAIL_MUTEX_HPP
#define CTXEXEC_THREADS_DETAIL_MUTEX_HPP

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#include <chrono>
#include <utility>

#if !defined(CTXEXEC_DETAIL_NO_TSAN_ANNOTATIONS)
#if defined(__SANITIZE_THREAD__)
#define CTXEXEC_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CTXEXEC_DETAIL_TSAN 1
#endif
#endif
#endif

#if defined(CTXEXEC_DETAIL_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace ctxexec::detail {

/// Tells TSan that what this thread did so far happens before whatever a
/// later `tsan_acquire(addr)` follows. Compiles to nothing without TSan.
inline void tsan_release(void* addr) noexcept {
#if defined(CTXEXEC_DETAIL_TSAN)
  __tsan_release(addr);
#else
  (void)addr;
#endif
}

/// The other half of `tsan_release`.
inline void tsan_acquire(void* addr) noexcept {
#if defined(CTXEXEC_DETAIL_TSAN)
  __tsan_acquire(addr);
#else
  (void)addr;
#endif
}

class condition_variable;

/// An exclusive, non-recursive mutex: absl::Mutex with TSan edges. Meets
/// the Lockable requirements (std::lock_guard and std::unique_lock work).
///
/// Thread safety: distinct objects: safe; shared objects: safe (that is
/// its purpose).
/// Propagation: none; the current context is not touched.
/// Errors: none of its members throw.
class ABSL_LOCKABLE mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  /// Blocks until this thread holds the mutex.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    tsan_acquire(this);
  }

  /// Takes the mutex if it is free. Returns whether it did.
  [[nodiscard]] bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!mu_.TryLock()) return false;
    tsan_acquire(this);
    return true;
  }

  /// Releases the mutex. Precondition: this thread holds it.
  void unlock() ABSL_UNLOCK_FUNCTION() {
    tsan_release(this);
    mu_.Unlock();
  }

  /// Aborts the program (absl's FATAL log) unless some thread holds the
  /// mutex; tells -Wthread-safety that this thread does.
  void assert_held() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

 private:
  friend class condition_variable;
  absl::Mutex mu_;
};

/// Holds a `mutex` for its own lifetime.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe (it lives
/// on one thread's stack).
/// Propagation: none. Errors: none.
class ABSL_SCOPED_LOCKABLE mutex_lock {
 public:
  explicit mutex_lock(mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_.lock();
  }
  ~mutex_lock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  mutex_lock(const mutex_lock&) = delete;
  mutex_lock& operator=(const mutex_lock&) = delete;

 private:
  mutex& mu_;
};

/// A condition variable for `mutex`: absl::CondVar with TSan edges. Waits
/// may wake spuriously; the predicate overloads loop until the predicate
/// holds, and evaluate it on the waiting thread with the mutex held. Give a
/// lambda predicate `ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu)` so -Wthread-safety
/// accepts its reads of guarded members.
///
/// Thread safety: distinct objects: safe; shared objects: safe. Notify with
/// or without the mutex held.
/// Propagation: none; a wait returns on the thread that waited, in the
/// context it had.
/// Errors: none; a predicate's exception propagates with the mutex held.
class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  /// Wakes at least one waiter, if any.
  void notify_one() noexcept { cv_.Signal(); }
  /// Wakes every waiter.
  void notify_all() noexcept { cv_.SignalAll(); }

  /// Releases `mu`, blocks until notified (or spuriously), re-acquires `mu`.
  void wait(mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    tsan_release(&mu);
    cv_.Wait(&mu.mu_);
    tsan_acquire(&mu);
  }

  /// Waits until `pred()` holds.
  template <class Predicate>
  void wait(mutex& mu, Predicate pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {  // pred runs with mu held
    while (!pred()) wait(mu);
  }

  /// As `wait(mu)`, giving up after `timeout`. Returns false when it timed
  /// out, true when notified (or woken spuriously).
  template <class Rep, class Period>
  bool wait_for(mutex& mu, std::chrono::duration<Rep, Period> timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    tsan_release(&mu);
    const bool timed_out =
        cv_.WaitWithTimeout(&mu.mu_, absl::FromChrono(timeout));
    tsan_acquire(&mu);
    return !timed_out;
  }

  /// Waits until `pred()` holds or `timeout` has passed (steady clock).
  /// Returns `pred()`'s final value.
  template <class Rep, class Period, class Predicate>
  bool wait_for(mutex& mu, std::chrono::duration<Rep, Period> timeout,
                Predicate pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {  // pred runs with mu held
    return wait_until(mu, std::chrono::steady_clock::now() + timeout,
                      std::move(pred));
  }

  /// Waits until `pred()` holds or the steady clock reaches `deadline`.
  /// Returns `pred()`'s final value.
  template <class Duration, class Predicate>
  bool wait_until(
      mutex& mu,
      std::chrono::time_point<std::chrono::steady_clock, Duration> deadline,
      Predicate pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {  // pred runs with mu held
    while (!pred()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      wait_for(mu, deadline - now);
    }
    return true;
  }

 private:
  absl::CondVar cv_;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_THREADS_DETAIL_MUTEX_HPP
