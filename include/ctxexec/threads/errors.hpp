// ctxexec/threads/errors.hpp
//
// Defines the errors of the thread executors: `limiter_errc` (an error code
// enum, with `limiter_category()`) and `limiter_error`, thrown or
// delivered by `capacity_limiter` where anyio raises `RuntimeError`, and
// `shutdown_error`, `wrong_thread_error` and `starvation_error`, thrown or
// delivered by `blocking_pool`, `run_sync_with_context` and `from_thread`.
//
// Example:
//   try { limiter.release(); }
//   catch (const ctxexec::limiter_error& e) { log(e.what()); }
//   auto [ec] = co_await limiter.async_acquire(as_tuple(use_awaitable));
//   if (ec == ctxexec::limiter_errc::already_borrowing) { ... }
//   try { co_await ctxexec::run_sync_with_context(f, use_awaitable); }
//   catch (const ctxexec::starvation_error&) { co_return busy_reply(); }

#ifndef CTXEXEC_THREADS_ERRORS_HPP
#define CTXEXEC_THREADS_ERRORS_HPP

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace ctxexec {

/// What a `capacity_limiter` refused, as anyio's `RuntimeError` does. The
/// values are error codes of `limiter_category()`: compare an error_code
/// with them directly (`ec == limiter_errc::already_borrowing`).
///
/// Thread safety: a plain enumeration. Errors: none.
/// Example: `if (e.code() == ctxexec::limiter_errc::not_borrowing) { ... }`
enum class limiter_errc {
  /// A release with no token borrowed: "this borrower isn't holding any of
  /// this CapacityLimiter's tokens".
  not_borrowing = 1,
  /// A borrower that holds a token of the limiter, or waits for one, asked
  /// it again: "this borrower is already holding one of this
  /// CapacityLimiter's tokens". See capacity_limiter for who borrows.
  already_borrowing,
};

namespace detail {
class limiter_category_impl final : public boost::system::error_category {
 public:
  // A fixed identity, so that copies of the category in several shared
  // objects compare equal.
  constexpr limiter_category_impl() noexcept
      : error_category(0x6c1e7b3d9a20f4c5ull) {}
  const char* name() const noexcept override { return "ctxexec.limiter"; }
  std::string message(int ev) const override {
    switch (static_cast<limiter_errc>(ev)) {
      case limiter_errc::not_borrowing:
        return "this borrower isn't holding any of this CapacityLimiter's "
               "tokens";
      case limiter_errc::already_borrowing:
        return "this borrower is already holding one of this "
               "CapacityLimiter's tokens";
    }
    return "unknown ctxexec.limiter error";
  }
};
}  // namespace detail

/// The error category of `limiter_errc`, named "ctxexec.limiter".
///
/// Thread safety: safe (an immutable object). Errors: none.
/// Example: `ec.category() == ctxexec::limiter_category()`
[[nodiscard]] inline const boost::system::error_category&
limiter_category() noexcept {
  static const detail::limiter_category_impl category;
  return category;
}

/// `limiter_errc` as a `boost::system::error_code` (found by ADL, so that
/// an error_code can be compared with or assigned a `limiter_errc`).
///
/// Thread safety: safe. Errors: none.
/// Example: `boost::system::error_code ec = limiter_errc::not_borrowing;`
[[nodiscard]] inline boost::system::error_code make_error_code(
    limiter_errc e) noexcept {
  return {static_cast<int>(e), limiter_category()};
}

/// Thrown by `capacity_limiter` where anyio raises `RuntimeError`:
/// `release()` (and `limiter_permit::release()`) when none of the
/// limiter's tokens is borrowed (`limiter_errc::not_borrowing`), and
/// `try_acquire()` by a borrower that already holds a token of the
/// limiter or waits for one (`limiter_errc::already_borrowing`).
/// `async_acquire` reports the latter through its completion instead, as
/// an error_code. Nothing changed in the limiter.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the calling thread.
///
/// Example:
///   try { limiter.release(); }
///   catch (const ctxexec::limiter_error& e) { log(e.what(), e.code()); }
class limiter_error : public std::logic_error {
 public:
  limiter_error(limiter_errc code, const std::string& what)
      : std::logic_error(what), code_(code) {}

  /// Which rule the call broke.
  [[nodiscard]] limiter_errc code() const noexcept { return code_; }

 private:
  limiter_errc code_;
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

namespace boost::system {
template <>
struct is_error_code_enum<ctxexec::limiter_errc> : std::true_type {};
}  // namespace boost::system

#endif  // CTXEXEC_THREADS_ERRORS_HPP
