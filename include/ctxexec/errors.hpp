// ctxexec/errors.hpp
//
// Defines the exceptions thrown by the ctxexec core: `lookup_error`,
// `token_error` (with `token_errc`) and `context_error`, each mapped to the
// Python exception that `contextvars` raises in the same situation, with the
// messages in Python's wording; and `header_error`, for a key or value that
// a propagation header (tracestate, baggage) cannot carry. The Asio integration
// throws none of its own; the errors of the thread executors are in
// <ctxexec/threads/errors.hpp>.
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

/// Thrown when a key or value given to `tracestate::with()` or
/// `baggage::with()` breaks the header's grammar (an upper-case tracestate
/// key, a baggage key that is not an RFC 9110 token, ...). The message names
/// the header and quotes the offending text. The object it was called on is
/// unchanged. Parsing never throws it: an invalid received header is
/// reported by the parse result instead.
///
/// Thread safety: distinct objects: safe; shared objects: safe (immutable).
/// Propagation: carries no context; thrown on the calling thread.
///
/// Example:
///   try { state = state.with("Vendor", "x"); }
///   catch (const ctxexec::header_error& e) { log(e.what()); }
class header_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace ctxexec

#endif  // CTXEXEC_ERRORS_HPP
