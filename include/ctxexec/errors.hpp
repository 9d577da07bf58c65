// ctxexec/errors.hpp
//
// Defines the exceptions thrown by the ctxexec core: `lookup_error`,
// `token_error` (with `token_errc`) and `context_error`, each mapped to the
// Python exception that `contextvars` raises in the same situation, with the
// messages in Python's wording; `limiter_error`, thrown by
// `capacity_limiter` (anyio's `RuntimeError` in the same situation); and
// the errors of the executors: `shutdown_error`, `wrong_thread_error`,
// `starvation_error`.
//
// Example:
//   try { (void)request_id.get(); }
//   catch (const ctxexec::lookup_error& e) { log(e.what()); }
//   try { request_id.reset(tok); }
//   catch (const ctxexec::token_error& e) { assert(e.code() ==
//   token_errc::already_used); }

#ifndef CTXEXEC_ERRORS_HPP
#define CTXEXEC_ERRORS_HPP

#include <stdexcept>
#include <string>

namespace ctxexec {

/// Thrown by `context_var<T>::get()` when the current context holds no value
/// for the variable and the variable has no default. Python: `LookupError`.
/// The message names the variable.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the thread that called get().
///
/// Example:
///   try { use(user_id.get()); } catch (const ctxexec::lookup_error&) {}
class lookup_error : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

/// Why `context_var<T>::reset()` refused a token. Checked in this order, as
/// CPython does.
///
/// Thread safety: a plain enumeration. Errors: none.
/// Example: `if (e.code() == ctxexec::token_errc::already_used) { ... }`
enum class token_errc {
  /// The token was already passed to `reset()` once (Python `RuntimeError`).
  already_used = 1,
  /// The token came from `set()` on another variable (Python `ValueError`).
  different_var,
  /// The token was created in another context object than the current one
  /// (Python `ValueError`). Identity is compared, never contents.
  different_context,
};

/// Thrown by `context_var<T>::reset()` for a token it cannot accept. The
/// message says, as Python's does, that the token "has already been used
/// once", "was created by a different ContextVar" or "was created in a
/// different Context". The var and the context are left unchanged.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the thread that called reset().
///
/// Example:
///   try { var.reset(tok); }
///   catch (const ctxexec::token_error& e) { log(e.what(), e.code()); }
class token_error : public std::invalid_argument {
 public:
  token_error(token_errc code, const std::string& what)
      : std::invalid_argument(what), code_(code) {}

  /// Which check failed.
  [[nodiscard]] token_errc code() const noexcept { return code_; }

 private:
  token_errc code_;
};

/// Thrown by `context::run()` when the context object is already entered, on
/// this thread or any other: "cannot enter context: ... is already entered"
/// (Python `RuntimeError`). Also thrown when `run()` is called on a
/// moved-from handle. Nothing was run and the current context is unchanged.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the thread that called run().
///
/// Example:
///   try { ctx.run(work); } catch (const ctxexec::context_error&) { retry(); }
class context_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

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

#endif  // CTXEXEC_ERRORS_HPP
