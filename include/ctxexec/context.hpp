// ctxexec/context.hpp
//
// Defines `context` (Python's `contextvars.Context`), a handle to a context
// object that maps context variables to values, and `copy_context()`.
//
// Every thread starts in its own empty context. `copy_context()` snapshots
// the current context in O(1); `context::run()` makes a context current for
// the duration of one call, so values set inside land in that context object
// and are seen by its next `run()`.
//
// Example:
//   auto tok = request_id.set("req-1");
//   ctxexec::context snapshot = ctxexec::copy_context();
//   request_id.reset(tok);
//   snapshot.run([] { assert(request_id.get() == "req-1"); });
//   pool.submit([snapshot]() mutable { snapshot.run(work); });
//
// Invalid calls: running a context that is already entered, on this thread
// or another, throws `context_error`. In debug builds CTXEXEC_ASSERT checks
// that each `run()` exits the context it entered.

#ifndef CTXEXEC_CONTEXT_HPP
#define CTXEXEC_CONTEXT_HPP

#include <ctxexec/context_var.hpp>
#include <ctxexec/detail/context_impl.hpp>
#include <ctxexec/detail/hamt.hpp>
#include <ctxexec/detail/var_key.hpp>
#include <ctxexec/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace ctxexec {

namespace detail {
struct context_access;
}  // namespace detail

/// A handle to a context object: a mutable mapping from context variables
/// to values. Python: `contextvars.Context`.
///
/// Copying a handle does not snapshot: both handles name the same object,
/// and `==` compares that identity. Use `copy_context()` for a snapshot. A
/// context object lives while a handle to it exists or while it is entered.
///
/// Thread safety: distinct objects: safe, also when they are handles to the
/// same context object (copying, destroying and `run()` from any threads; at
/// most one thread enters a context object at a time and the others get
/// `context_error`). Shared objects: unsafe (one handle object assigned on
/// one thread while another copies it is a data race, as for shared_ptr).
/// `find`, `contains`, `size` and `for_each` read the mapping and race with
/// a thread that has the same context object entered and sets variables in
/// it; call them while it is not entered elsewhere.
///
/// Propagation: a context object is current exactly while one of its
/// `run()` calls executes on the calling thread.
///
/// Errors: `run()` throws `context_error` (already entered, or a moved-from
/// handle); construction throws std::bad_alloc. Nothing else throws.
///
/// Example:
///   ctxexec::context ctx;              // empty
///   ctx.run([] { (void)user.set(1); });
///   assert(ctx.size() == 1 && *ctx.find(user) == 1);
///   assert(user.try_get() == nullptr); // the caller's context is untouched
class context {
 public:
  /// A new, empty context object. Python: `contextvars.Context()`.
  /// Errors: std::bad_alloc.
  context() : impl_(detail::allocate_context()) {}

  context(const context& other) noexcept : impl_(other.impl_) {
    if (impl_ != nullptr) detail::retain(impl_);
  }
  context(context&& other) noexcept
      : impl_(std::exchange(other.impl_, nullptr)) {}
  context& operator=(const context& other) noexcept {
    context copy(other);
    std::swap(impl_, copy.impl_);
    return *this;
  }
  context& operator=(context&& other) noexcept {
    context moved(std::move(other));
    std::swap(impl_, moved.impl_);
    return *this;
  }
  ~context() {
    if (impl_ != nullptr) detail::release(impl_);
  }

  /// Calls `f(args...)` with this context object current on the calling
  /// thread, then makes the previous context current again, also when `f`
  /// throws. Returns what `f` returns. Python: `ctx.run(f, *args)`.
  ///
  /// Propagation: `set` and `reset` inside `f` change this context object;
  /// the caller's context is unchanged afterwards.
  ///
  /// Errors: `context_error` if the object is already entered (on any
  /// thread: "cannot enter context: ... is already entered"), or if this
  /// handle is moved-from; `f` is then not called. Exceptions from `f`
  /// propagate.
  template <class F, class... Args>
  decltype(auto) run(F&& f, Args&&... args) {
    detail::context_impl* c = impl_;
    if (c == nullptr || !detail::try_enter(c)) throw enter_error(c);
    detail::enter_scope scope(c);
    return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// The value `var` has in this context, ignoring the variable's default;
  /// nullptr if none. Python: `ctx.get(var)`. Valid until the context
  /// object is next changed or destroyed.
  template <class T>
  [[nodiscard]] const T* find(const context_var<T>& var) const noexcept {
    if (impl_ == nullptr) return nullptr;
    const detail::box* b = impl_->vars.find(var.key_.id(), var.key_.hash());
    return b != nullptr ? &detail::value_of<T>(b) : nullptr;
  }

  /// Whether `var` has a value in this context. Python: `var in ctx`.
  template <class T>
  [[nodiscard]] bool contains(const context_var<T>& var) const noexcept {
    return find(var) != nullptr;
  }

  /// The number of variables with a value. Python: `len(ctx)`.
  [[nodiscard]] std::size_t size() const noexcept {
    return impl_ != nullptr ? impl_->vars.size() : 0;
  }

  /// Calls `f(name, value)` for every entry, with the variable's name (or
  /// "<destroyed>" for a variable that no longer exists) and its value as
  /// printed by `operator<<`, or "<unprintable>" where T has none. For logs
  /// and debugging; the order is unspecified. Python: `ctx.items()`.
  template <class F>
  void for_each(F&& f) const {
    if (impl_ == nullptr) return;
    auto visit = [&](const detail::box* b) {
      std::string name = detail::var_registry::instance().name(b->key).value_or(
          std::string("<destroyed>"));
      std::ostringstream value;
      b->vtable->print(b, value);
      std::invoke(f, std::string_view(name), std::string_view(value.str()));
    };
    impl_->vars.for_each(visit);
  }

  /// Identity: whether both handles name the same context object.
  friend bool operator==(const context& a, const context& b) noexcept {
    return a.impl_ == b.impl_;
  }

  /// Prints `{name=value, ...}`.
  friend std::ostream& operator<<(std::ostream& os, const context& ctx) {
    os << '{';
    bool first = true;
    ctx.for_each([&](std::string_view name, std::string_view value) {
      os << (first ? "" : ", ") << name << '=' << value;
      first = false;
    });
    return os << '}';
  }

 private:
  friend context copy_context();
  friend struct detail::context_access;

  explicit context(detail::context_impl* impl) noexcept : impl_(impl) {}

  static context_error enter_error(const detail::context_impl* c) {
    if (c == nullptr) {
      return context_error("cannot enter context: the handle is moved-from");
    }
    std::ostringstream os;
    os << "cannot enter context: <ctxexec::context object at "
       << static_cast<const void*>(c) << "> is already entered";
    return context_error(os.str());
  }

  detail::context_impl* impl_;
};

/// Returns a new context object holding the current context's entries: an
/// O(1) snapshot. Later sets in either are invisible to the other. Python:
/// `contextvars.copy_context()`.
///
/// Thread safety: safe; reads the calling thread's current context only.
///
/// Propagation: captures the context current on the calling thread at the
/// call. To snapshot another context object `ctx`, call it inside
/// `ctx.run(...)` (Python's `ctx.copy()`).
///
/// Errors: std::bad_alloc.
///
/// Example:
///   auto snapshot = ctxexec::copy_context();
///   std::thread([snapshot]() mutable { snapshot.run(work); }).join();
[[nodiscard]] inline context copy_context() {
  detail::context_impl* c = detail::allocate_context();
  if (const detail::context_impl* current = detail::tl_current) {
    c->vars = current->vars;
  }
  return context(c);
}

namespace detail {

/// Access to a handle's context object for ctxexec's own adaptors.
struct context_access {
  static context_impl* impl(const context& c) noexcept { return c.impl_; }
  /// A handle taking over one counted reference (a pin), or an empty handle
  /// for nullptr.
  static context adopt(context_impl* c) noexcept { return context(c); }
};

}  // namespace detail
}  // namespace ctxexec

#endif  // CTXEXEC_CONTEXT_HPP
