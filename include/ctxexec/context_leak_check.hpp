// ctxexec/context_leak_check.hpp
//
// Defines `context_leak_check`, a debug guard that checks that the scope it
// guards leaves the thread's context as it found it: the same context object
// current, holding the same values. Use it around handlers, in tests (the
// ctxexec test suite uses it as a fixture), and wherever a leak of
// request-scoped state between unrelated work would be a bug.
//
// Example:
//   void handle(request& r) {
//     ctxexec::context_leak_check check;  // asserts at scope exit (debug)
//     auto g = request_id.scoped_set(r.id);
//     process(r);
//   }
//
// Invalid use: a leak makes the destructor fail CTXEXEC_ASSERT in debug
// builds; release builds do nothing unless `intact()` is called.

#ifndef CTXEXEC_CONTEXT_LEAK_CHECK_HPP
#define CTXEXEC_CONTEXT_LEAK_CHECK_HPP

#include <ctxexec/detail/config.hpp>
#include <ctxexec/detail/context_impl.hpp>
#include <ctxexec/detail/hamt.hpp>

#include <cstdint>

namespace ctxexec {

/// Records the current context object and its contents at construction;
/// `intact()` tells whether both are unchanged. Holding the snapshot costs
/// one reference, so the first `set` inside the scope copies the path it
/// changes instead of editing in place.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe. Create and
/// destroy it on one thread.
///
/// Propagation: captures the calling thread's current context at
/// construction (creating the thread's root context if needed) and compares
/// against the current context when asked and at destruction.
///
/// Errors: construction may throw std::bad_alloc. The destructor asserts
/// `intact()` with CTXEXEC_ASSERT unless `dismiss()` was called.
///
/// Example:
///   ctxexec::context_leak_check check;
///   auto tok = user.set(1);
///   assert(!check.intact());
///   user.reset(tok);
///   assert(check.intact());
class context_leak_check {
 public:
  context_leak_check()
      : context_(detail::current_for_write()),
        generation_(context_->generation()),
        snapshot_(context_->vars) {}

  context_leak_check(const context_leak_check&) = delete;
  context_leak_check& operator=(const context_leak_check&) = delete;

  ~context_leak_check() { CTXEXEC_ASSERT(dismissed_ || intact()); }

  /// Whether the same context object is current and holds exactly the same
  /// values (the same value objects, not merely equal ones).
  [[nodiscard]] bool intact() const noexcept {
    const detail::context_impl* now = detail::tl_current;
    if (now != context_ || now->generation() != generation_) return false;
    if (now->vars.size() != snapshot_.size()) return false;
    bool same = true;
    auto check = [&](const detail::box* b) {
      same = same && now->vars.find(b->key, b->hash) == b;
    };
    snapshot_.for_each(check);
    return same;
  }

  /// Turns off the destructor's assertion.
  void dismiss() noexcept { dismissed_ = true; }

 private:
  const detail::context_impl* context_;
  std::uint64_t generation_;
  detail::map snapshot_;
  bool dismissed_ = false;
};

}  // namespace ctxexec

#endif  // CTXEXEC_CONTEXT_LEAK_CHECK_HPP
