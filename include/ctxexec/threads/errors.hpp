// ctxexec/threads/errors.hpp
//
// Defines the exceptions of the thread executors: `limiter_error`, thrown
// by `capacity_limiter` (anyio's `RuntimeError` in the same situation), and
// `shutdown_error`, `wrong_thread_error` and `starvation_error`, thrown or
// delivered by `blocking_pool`, `run_sync_with_context` and `from_thread`.
//
// Example:
//   try { limiter.release(); }
//   catch (const ctxexec::limiter_error& e) { log(e.what()); }
//   try { co_await ctxexec::run_sync_with_context(f, use_awaitable); }
//   catch (const ctxexec::starvation_error&) { co_return busy_reply(); }

#ifndef CTXEXEC_THREADS_ERRORS_HPP
#define CTXEXEC_THREADS_ERRORS_HPP

#include <stdexcept>

namespace ctxexec {

/// Thrown by `capacity_limiter::release()` (and so by
/// `limiter_permit::release()`) when none of the limiter's tokens is
/// borrowed: a release without a matching acquire (anyio: `RuntimeError`,
/// "this borrower isn't holding any of this CapacityLimiter's tokens").
/// Nothing was released and the limiter is unchanged.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the thread that called
/// release().
///
/// Example:
///   try { limiter.release(); }
///   catch (const ctxexec::limiter_error& e) { log(e.what()); }
class limiter_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Thrown by `blocking_pool::submit()` after `shutdown()` began, delivered
/// by `run_sync_with_context` when its pool is shut down, and thrown by
/// `from_thread` calls whose event loop is destroyed (or drops the call)
/// before the call completes. Nothing ran, or its result is lost with the
/// loop; the message says which.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context.
///
/// Example:
///   try { pool.submit(std::move(item)); }
///   catch (const ctxexec::shutdown_error&) { run_inline(); }
class shutdown_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a call made on a thread where it would wait for itself:
/// `from_thread::run()`/`run_sync()` on a thread that runs the target
/// event loop, `blocking_pool::shutdown()` on one of the pool's workers.
/// Nothing was started.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the calling thread.
///
/// Example:
///   try { ctxexec::from_thread::run_sync(ex, f); }
///   catch (const ctxexec::wrong_thread_error&) { f(); }  // on the loop
class wrong_thread_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Delivered by `run_sync_with_context` when no token of its limiter is
/// free and the calling code already runs under one of that limiter's
/// tokens (it was reached through `from_thread` from a worker that holds
/// one). Waiting could deadlock once every token is held that way
/// (fastapi#3205), so the call fails at once instead; `fn` did not run.
/// See docs/executors.md for sizing that avoids it.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context.
///
/// Example:
///   try { co_await ctxexec::run_sync_with_context(f, use_awaitable); }
///   catch (const ctxexec::starvation_error&) { co_return busy_reply(); }
class starvation_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ctxexec

#endif  // CTXEXEC_THREADS_ERRORS_HPP
