// ctxexec/context_var.hpp
//
// Defines `context_var<T>` (Python's `contextvars.ContextVar`), `token<T>`
// (Python's `Token`) and `set_guard<T>`, the RAII guard returned by
// `context_var<T>::scoped_set()` (Python 3.14's `with var.set(v):`).
//
// A context variable is an identity object, usually an inline global. Its
// value lives in the current thread's current context, so two requests that
// share a thread never see each other's values.
//
// Example:
//   inline ctxexec::context_var<std::string> request_id{"request_id", "-"};
//   auto guard = request_id.scoped_set("req-42");   // reset at scope exit
//   log("handling {}", request_id.get());           // "req-42"
//   auto tok = request_id.set("req-43");            // explicit set ...
//   request_id.reset(tok);                          // ... and reset
//
// Invalid calls: `reset()` with a used token, another variable's token or a
// token from another context object throws `token_error`; `get()` without a
// value or default throws `lookup_error`. In debug builds (no NDEBUG),
// CTXEXEC_ASSERT also checks the preconditions stated on each member.

#ifndef CTXEXEC_CONTEXT_VAR_HPP
#define CTXEXEC_CONTEXT_VAR_HPP

#include <ctxexec/detail/context_impl.hpp>
#include <ctxexec/detail/hamt.hpp>
#include <ctxexec/detail/var_key.hpp>
#include <ctxexec/errors.hpp>

#include <concepts>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace ctxexec {

class context;
template <class T>
class context_var;
template <class T>
class set_guard;

namespace detail {

/// Access to the variables that only ctxexec itself makes.
struct context_var_access {
  /// For tests: a variable whose hash is pinned, to force collisions.
  template <class T>
  static context_var<T> with_hash(std::uint32_t hash, std::string_view name) {
    return context_var<T>(forced_hash_t{hash}, name);
  }
  /// A hidden variable, for the library's own per-call state: contexts
  /// carry its value (copies too) but never count, list or print it.
  template <class T>
  static context_var<T> hidden(std::string_view name) {
    return context_var<T>(hidden_t{}, name);
  }
};

template <class T>
struct typed_box final : box {
  template <class... Args>
  typed_box(std::uint64_t key, std::uint32_t hash, Args&&... args)
      : box(key, hash, &vtable_instance), value(std::forward<Args>(args)...) {}

  static void destroy(box* b) noexcept { delete static_cast<typed_box*>(b); }
  static void print(const box* b, std::ostream& os) {
    const T& v = static_cast<const typed_box*>(b)->value;
    if constexpr (requires(std::ostream & o, const T& x) { o << x; }) {
      os << v;
    } else {
      os << "<unprintable>";
    }
  }

  static constexpr box_vtable vtable_instance{&typed_box::destroy,
                                              &typed_box::print};

  const T value;
};

template <class T>
const T& value_of(const box* b) noexcept {
  return static_cast<const typed_box<T>*>(b)->value;
}

inline std::string var_repr(std::string_view name) {
  std::string s = "<ContextVar name='";
  s += name;
  s += "'>";
  return s;
}

inline std::string token_repr(std::string_view name) {
  return "<Token var=" + var_repr(name) + ">";
}

}  // namespace detail

/// The result of `context_var<T>::set()`: what `reset()` needs to undo that
/// set. Python: `contextvars.Token`.
///
/// A token remembers its variable, the context object it was created in
/// (identity, not contents) and the value it replaced. It is move-only; a
/// moved-from token counts as used.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe. A token
/// may be moved to and reset on another thread, but `reset()` then fails
/// with `token_errc::different_context` unless that thread is running the
/// same context object.
///
/// Propagation: records the context object current when `set()` made it;
/// only a `reset()` while that same object is current accepts it.
///
/// Errors: none of its members throw. Copying a token does not compile
/// (`token<int> t2 = t;`); move it instead.
///
/// Example:
///   auto tok = user.set(7);
///   assert(tok.old_value() == nullptr);   // Token.MISSING
///   user.reset(tok);                      // tok.used() is now true
template <class T>
class token {
 public:
  token(token&& other) noexcept
      : var_(other.var_),
        context_(std::exchange(other.context_, nullptr)),
        generation_(other.generation_),
        old_(std::exchange(other.old_, nullptr)),
        used_(std::exchange(other.used_, true)) {}

  token& operator=(token&& other) noexcept {
    if (this != &other) {
      if (old_ != nullptr) detail::release(old_);
      var_ = other.var_;
      context_ = std::exchange(other.context_, nullptr);
      generation_ = other.generation_;
      old_ = std::exchange(other.old_, nullptr);
      used_ = std::exchange(other.used_, true);
    }
    return *this;
  }

  token(const token&) = delete;
  token& operator=(const token&) = delete;

  ~token() {
    if (old_ != nullptr) detail::release(old_);
  }

  /// The variable whose `set()` made this token. Python: `Token.var`.
  [[nodiscard]] const context_var<T>& var() const noexcept { return *var_; }

  /// The value the variable had in the context before the `set()`, or
  /// nullptr if it had none (Python: `Token.MISSING`). Stays valid for the
  /// token's lifetime, also after `reset()`.
  [[nodiscard]] const T* old_value() const noexcept {
    return old_ != nullptr ? &detail::value_of<T>(old_) : nullptr;
  }

  /// Whether the token was passed to `reset()` (or moved from).
  [[nodiscard]] bool used() const noexcept { return used_; }

 private:
  friend class context_var<T>;
  friend class set_guard<T>;

  token(const context_var<T>* var, detail::context_impl* ctx,
        std::uint64_t generation, detail::box* old) noexcept
      : var_(var), context_(ctx), generation_(generation), old_(old) {}

  const context_var<T>* var_;
  detail::context_impl* context_;  // identity only; never dereferenced
  std::uint64_t generation_;
  detail::box* old_;  // owned reference, or nullptr for MISSING
  bool used_ = false;
};

/// RAII guard returned by `context_var<T>::scoped_set()`: the variable is
/// reset with the guard's token when the guard is destroyed, unless `reset()`
/// was already called. Python 3.14: `with var.set(value):`.
///
/// Not copyable or movable: it lives in the scope that made it.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe.
///
/// Propagation: the value is set in the context current at construction,
/// and the destructor resets it in that same context object. Normally that
/// object is current again at destruction. When it is not (a coroutine frame
/// destroyed by an io_context's teardown, outside its task's context), the
/// destructor enters that object for the reset if it still exists (waiting
/// while another thread has it entered), and does nothing if it does not:
/// there is then nothing to restore.
///
/// Errors: the destructor does not throw (std::bad_alloc in it ends the
/// program). `reset()` throws `token_error` as `context_var<T>::reset()`
/// does.
///
/// Example:
///   {
///     auto g = tenant.scoped_set("acme");
///     handle();  // sees "acme"
///   }            // previous value restored
template <class T>
class [[nodiscard]] set_guard {
 public:
  set_guard(const set_guard&) = delete;
  set_guard& operator=(const set_guard&) = delete;

  ~set_guard() {
    if (token_.used()) return;
    // In the object it was set in: normally current here; otherwise (a
    // coroutine frame destroyed outside its task's context) entered for the
    // reset, waiting for another thread to exit it. Nothing to restore if
    // the object is gone.
    if (!detail::run_in_waiting(token_.context_, token_.generation_,
                                [&] { var_->reset(token_); })) {
      token_.used_ = true;
    }
  }

  /// Resets now instead of at scope exit. Throws `token_error` as
  /// `context_var<T>::reset()` does.
  void reset() { var_->reset(token_); }

  /// The token of the underlying `set()`.
  [[nodiscard]] const ctxexec::token<T>& token() const noexcept {
    return token_;
  }

 private:
  friend class context_var<T>;

  set_guard(context_var<T>& var, ctxexec::token<T> tok) noexcept
      : var_(&var), token_(std::move(tok)) {}

  context_var<T>* var_;
  ctxexec::token<T> token_;
};

/// A context variable: a key whose value is looked up in the current
/// context. Python: `contextvars.ContextVar`.
///
/// It is an identity object: neither copyable nor movable. Declare it once,
/// usually as an `inline` global, and never per request. Two variables with
/// the same name are distinct. A variable must outlive its tokens; contexts
/// may outlive it, and then keep its values alive (and unreachable) until
/// they are destroyed.
///
/// Thread safety: distinct objects: safe; shared objects: safe. All members
/// read or write the calling thread's current context only, so any number
/// of threads may use one variable at once.
///
/// Propagation: `get`, `set` and `reset` act on the context current on the
/// calling thread at the time of the call: the thread's own context, or the
/// one entered by the innermost `context::run()`.
///
/// Errors: see each member. Misuse that does not compile: copying or moving
/// a variable (`auto v2 = v;`), and passing a `token<U>` to the `reset()` of
/// a `context_var<T>`.
///
/// Example:
///   inline ctxexec::context_var<int> user_id{"user_id"};
///   auto tok = user_id.set(7);
///   assert(user_id.get() == 7);
///   user_id.reset(tok);
///   assert(user_id.try_get() == nullptr);
template <class T>
class context_var {
 public:
  using value_type = T;

  /// A variable without a default: `get()` throws `lookup_error` where it
  /// has no value.
  explicit context_var(std::string_view name) : key_(name) {}

  /// A variable whose `get()` returns `default_value` where it has no value.
  context_var(std::string_view name, T default_value)
      : key_(name), default_(std::move(default_value)) {}

  context_var(const context_var&) = delete;
  context_var& operator=(const context_var&) = delete;

  /// The name given at construction (for messages and logs only).
  [[nodiscard]] std::string_view name() const noexcept { return key_.name(); }

  /// The value in the current context; otherwise the default; otherwise
  /// throws `lookup_error`. Python: `var.get()`.
  ///
  /// The reference stays valid until the next `set`, `reset` or `run` on
  /// this thread (the value may be released when it is replaced). Copy it
  /// to keep it longer.
  [[nodiscard]] const T& get() const {
    if (const T* p = try_get()) return *p;
    throw lookup_error(detail::var_repr(name()) +
                       ": no value in the current context and no default");
  }

  /// The same lookup as `get()`, returning nullptr instead of throwing. The
  /// pointer's validity is as for `get()`.
  [[nodiscard]] const T* try_get() const noexcept {
    if (const T* p = find_current()) return p;
    return default_ ? &*default_ : nullptr;
  }

  /// The value in the current context, otherwise `fallback`, even when the
  /// variable has a default. Python: `var.get(fallback)`.
  [[nodiscard]] T value_or(T fallback) const {
    if (const T* p = find_current()) return *p;
    return fallback;
  }

  /// Sets the variable in the current context and returns a token that
  /// undoes it. Python: `var.set(value)`. The thread's root context is
  /// created on first use.
  ///
  /// Errors: std::bad_alloc (the context is then unchanged).
  [[nodiscard]] ctxexec::token<T> set(T value) {
    detail::context_impl* c = detail::current_for_write();
    auto* b =
        new detail::typed_box<T>(key_.id(), key_.hash(), std::move(value));
    detail::box* old;
    try {
      detail::edit_scope edit(c);
      old = c->vars.set(b);
    } catch (...) {
      delete b;
      throw;
    }
    remember(b);
    return ctxexec::token<T>(this, c, c->generation(), old);
  }

  /// Restores the value the variable had before the `set()` that made `t`,
  /// or removes it from the context if it had none. Python:
  /// `var.reset(token)`.
  ///
  /// Errors, checked in this order; the first three leave the token and
  /// the context unchanged:
  ///   * `token_error` (`already_used`): `t` was used or moved from;
  ///   * `token_error` (`different_var`): `t` belongs to another variable;
  ///   * `token_error` (`different_context`): the current context object is
  ///     not the one `t` was created in;
  ///   * `lookup_error`: restoring "no value" but the variable is absent
  ///     (unreachable through tokens alone; as in CPython, `t` is then
  ///     marked used);
  ///   * std::bad_alloc: the context is unchanged, but `t` is marked used,
  ///     as CPython marks it before restoring.
  void reset(ctxexec::token<T>& t) {
    if (t.used_) {
      throw token_error(
          token_errc::already_used,
          detail::token_repr(t.var_->name()) + " has already been used once");
    }
    if (t.var_ != this) {
      throw token_error(token_errc::different_var,
                        detail::token_repr(t.var_->name()) +
                            " was created by a different ContextVar");
    }
    detail::context_impl* c = detail::tl_current;
    if (c != t.context_ || c->generation() != t.generation_) {
      throw token_error(
          token_errc::different_context,
          detail::token_repr(name()) + " was created in a different Context");
    }
    t.used_ = true;
    if (t.old_ != nullptr) {
      detail::retain(t.old_);
      detail::box* displaced;
      try {
        detail::edit_scope edit(c);
        displaced = c->vars.set(t.old_);
      } catch (...) {
        detail::release(t.old_);
        throw;
      }
      remember(t.old_);
      if (displaced != nullptr) detail::release(displaced);
    } else {
      detail::box* removed;
      {
        detail::edit_scope edit(c);
        removed = c->vars.erase(key_.id(), key_.hash());
      }
      remember(nullptr);
      if (removed == nullptr) {
        throw lookup_error(detail::var_repr(name()) +
                           ": no value in the current context to remove");
      }
      detail::release(removed);
    }
  }

  /// Sets the variable and returns a guard that resets it at scope exit.
  /// Python 3.14: `with var.set(value):`.
  [[nodiscard]] set_guard<T> scoped_set(T value) {
    return set_guard<T>(*this, set(std::move(value)));
  }

 private:
  friend class context;
  friend struct detail::context_var_access;

  /// For tests of hash collisions (detail::context_var_access).
  context_var(detail::forced_hash_t forced, std::string_view name)
      : key_(name, forced.hash) {}
  /// A hidden variable (detail::context_var_access).
  context_var(detail::hidden_t hidden, std::string_view name)
      : key_(name, hidden) {}

  const T* find_current() const noexcept {
    detail::lookup_cache_entry& e = detail::cache_entry(key_.hash());
    const detail::box* b;
    if (e.epoch == detail::tl_epoch && e.key == key_.id()) {
      b = e.value;
    } else {
      const detail::context_impl* c = detail::tl_current;
      b = c != nullptr ? c->vars.find(key_.id(), key_.hash()) : nullptr;
      e = {detail::tl_epoch, key_.id(), b};
    }
    return b != nullptr ? &detail::value_of<T>(b) : nullptr;
  }

  /// Records this variable's current box (or its absence) in the lookup
  /// cache after a change of the current context's mapping.
  void remember(const detail::box* b) const noexcept {
    detail::cache_entry(key_.hash()) = {detail::tl_epoch, key_.id(), b};
  }

  detail::var_key key_;
  std::optional<T> default_;
};

}  // namespace ctxexec

#endif  // CTXEXEC_CONTEXT_VAR_HPP
