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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctxexec {

namespace detail {
struct context_access;
}  // namespace detail

/// A counted reference to a value that a context holds: what
/// `context::find()` returns. Values are immutable and live while a
/// reference to them does, so it stays valid whatever happens to the
/// context afterwards, on any thread. Python: the object `ctx.get(var)`
/// returns.
///
/// Thread safety: distinct objects: safe; shared objects: safe for const
/// members (the value is immutable).
///
/// Propagation: none; it refers to one value, not to a context.
///
/// Errors: none; dereferencing an empty reference is a precondition
/// violation (CTXEXEC_ASSERT in debug builds).
///
/// Example:
///   if (auto user = ctx.find(user_id)) log(*user);
///   assert(ctx.find(unset_var) == nullptr);
template <class T>
class value_ref {
 public:
  /// Refers to nothing.
  value_ref() noexcept = default;
  value_ref(std::nullptr_t) noexcept {}  // NOLINT: as a pointer

  value_ref(const value_ref& other) noexcept : box_(other.box_) {
    if (box_ != nullptr) detail::retain(box_);
  }
  value_ref(value_ref&& other) noexcept
      : box_(std::exchange(other.box_, nullptr)) {}
  value_ref& operator=(value_ref other) noexcept {
    std::swap(box_, other.box_);
    return *this;
  }
  ~value_ref() {
    if (box_ != nullptr) detail::release(box_);
  }

  /// The value, or nullptr.
  [[nodiscard]] const T* get() const noexcept {
    return box_ != nullptr ? &detail::value_of<T>(box_) : nullptr;
  }
  [[nodiscard]] const T& operator*() const noexcept {
    CTXEXEC_ASSERT(box_ != nullptr && "dereferencing an empty value_ref");
    return detail::value_of<T>(box_);
  }
  [[nodiscard]] const T* operator->() const noexcept { return &**this; }
  explicit operator bool() const noexcept { return box_ != nullptr; }

  friend bool operator==(const value_ref& r, std::nullptr_t) noexcept {
    return r.box_ == nullptr;
  }

 private:
  friend class context;

  /// Takes over one reference to `b` (or nothing for nullptr).
  explicit value_ref(detail::box* b) noexcept : box_(b) {}

  detail::box* box_ = nullptr;
};

/// A handle to a context object: a mutable mapping from context variables
/// to values. Python: `contextvars.Context`.
///
/// Copying a handle does not snapshot: both handles name the same object,
/// and `==` compares that identity. Use `copy_context()` for a snapshot. A
/// context object lives while a handle to it exists or while it is entered.
///
/// Thread safety: distinct objects: safe, also when they are handles to the
/// same context object. A context object is entered (current) on at most
/// one thread at a time, and only code running in it changes it: `run()`
/// on another thread fails with `context_error` meanwhile. `find`,
/// `contains`, `size`, `for_each` and `<<` may be called from any thread at
/// any time: while another thread has the object entered, they read a
/// snapshot of it, taken without waiting. Shared objects: unsafe (one
/// handle object assigned on one thread while another copies it is a data
/// race, as for shared_ptr).
///
/// Propagation: a context object is current exactly while one of its
/// `run()` calls executes on the calling thread (or, through the Asio
/// integration, while work of a task or handler bound to it runs).
///
/// Errors: `run()` throws `context_error` (already entered, or a moved-from
/// handle); construction throws std::bad_alloc; the readers may throw
/// std::bad_alloc (`for_each`, `<<`) or std::system_error (the lock a
/// snapshot takes).
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
  context() : context_(detail::allocate_context()) {}

  context(const context& other) noexcept : context_(other.context_) {
    if (context_ != nullptr) detail::retain(context_);
  }
  context(context&& other) noexcept
      : context_(std::exchange(other.context_, nullptr)) {}
  context& operator=(const context& other) noexcept {
    context copy(other);
    std::swap(context_, copy.context_);
    return *this;
  }
  context& operator=(context&& other) noexcept {
    context moved(std::move(other));
    std::swap(context_, moved.context_);
    return *this;
  }
  ~context() {
    if (context_ != nullptr) detail::release(context_);
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
    detail::context_impl* c = context_;
    if (c == nullptr || !detail::try_enter(c)) throw enter_error(c);
    detail::enter_scope scope(c);
    return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// The value `var` has in this context, ignoring the variable's default;
  /// an empty reference if none. Python: `ctx.get(var)`. The reference
  /// keeps the value alive, whatever happens to the context afterwards.
  template <class T>
  [[nodiscard]] value_ref<T> find(const context_var<T>& var) const {
    detail::box* found = nullptr;
    read([&](const detail::map& vars) {
      found =
          const_cast<detail::box*>(vars.find(var.key_.id(), var.key_.hash()));
      if (found != nullptr) detail::retain(found);
    });
    return value_ref<T>(found);
  }

  /// Whether `var` has a value in this context. Python: `var in ctx`.
  template <class T>
  [[nodiscard]] bool contains(const context_var<T>& var) const {
    return find(var) != nullptr;
  }

  /// The number of variables with a value. Python: `len(ctx)`.
  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    read([&](const detail::map& vars) {
      n = vars.size();
      if (detail::hidden_var_count().load(std::memory_order_relaxed) != 0) {
        vars.for_each([&](const detail::box* b) {
          if (detail::is_hidden_key(b->key)) --n;
        });
      }
    });
    return n;
  }

  /// Calls `f(name, value)` for every entry, with the variable's name (or
  /// "<destroyed>" for a variable that no longer exists) and its value as
  /// printed by `operator<<`, or "<unprintable>" where T has none. For logs
  /// and debugging; the order is unspecified. Python: `ctx.items()`. The
  /// entries are read (and printed) first, then `f` is called for each.
  template <class F>
  void for_each(F&& f) const {
    std::vector<std::pair<std::string, std::string>> entries;
    read([&](const detail::map& vars) {
      vars.for_each([&](const detail::box* b) {
        if (detail::is_hidden_key(b->key)) return;
        std::ostringstream value;
        b->vtable->print(b, value);
        entries.emplace_back(
            detail::var_registry::instance().name(b->key).value_or(
                std::string("<destroyed>")),
            value.str());
      });
    });
    for (const auto& [name, value] : entries) {
      std::invoke(f, std::string_view(name), std::string_view(value));
    }
  }

  /// Identity: whether both handles name the same context object.
  friend bool operator==(const context& a, const context& b) noexcept {
    return a.context_ == b.context_;
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

  explicit context(detail::context_impl* impl) noexcept : context_(impl) {}

  /// Calls `f(map)` with this object's map as no thread changes it: the
  /// map itself when the object is current on this thread, else a snapshot
  /// of it, taken without entering the object (a `run()` elsewhere never
  /// fails because of a reader) or waiting for a thread that has it
  /// entered.
  template <class F>
  void read(F&& f) const {
    detail::context_impl* c = context_;
    if (c == nullptr) return;
    if (c == detail::tl_current) {
      f(c->vars);
    } else {
      const detail::map snapshot = detail::snapshot_of(c);
      f(snapshot);
    }
  }

  static context_error enter_error(const detail::context_impl* c) {
    if (c == nullptr) {
      return context_error("cannot enter context: the handle is moved-from");
    }
    std::ostringstream os;
    os << "cannot enter context: <ctxexec::context object at "
       << static_cast<const void*>(c) << "> is already entered";
    return context_error(os.str());
  }

  detail::context_impl* context_;
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
  static context_impl* impl(const context& c) noexcept { return c.context_; }
  /// A handle taking over one counted reference (a pin), or an empty handle
  /// for nullptr.
  static context adopt(context_impl* c) noexcept { return context(c); }
  /// A new context object holding what `ctx` holds now (`ctx.copy()`), read
  /// as `find` reads: without waiting for a thread that has it entered.
  /// Errors: std::bad_alloc.
  static context snapshot(const context& ctx) {
    context copy;
    ctx.read([&](const map& vars) { copy.context_->vars = vars; });
    return copy;
  }
};

}  // namespace detail
}  // namespace ctxexec

#endif  // CTXEXEC_CONTEXT_HPP
