// ctxexec/threads/detail/borrower.hpp
//
// Not API. `borrower_id`: on whose behalf a capacity_limiter token is
// borrowed. anyio's borrower is the current task; ctxexec's is the current
// context object, which a `ctxexec::co_spawn` task has to itself (as do a
// `context::run()` scope, a `run_sync_with_context` function and a
// `bind_context` snapshot). Context objects are recycled, so an object is
// named by its address and generation, as tokens name theirs.
//
// A thread's root context is no borrower: every plain callback and plain
// `asio::co_spawn` coroutine that runs on the thread shares it, so it names
// no unit of work. Code running there borrows anonymously, unchecked.
//
// This is the only place the thread executors read the core's per-thread
// state.

#ifndef CTXEXEC_THREADS_DETAIL_BORROWER_HPP
#define CTXEXEC_THREADS_DETAIL_BORROWER_HPP

#include <ctxexec/detail/context_impl.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace ctxexec::detail {

/// A context object, by address and generation; or anonymous.
struct borrower_id {
  const void* object = nullptr;  // nullptr: anonymous
  std::uint64_t generation = 0;

  [[nodiscard]] bool anonymous() const noexcept { return object == nullptr; }
  friend bool operator==(const borrower_id&, const borrower_id&) = default;
};

struct borrower_hash {
  std::size_t operator()(const borrower_id& b) const noexcept {
    return std::hash<const void*>()(b.object) ^
           static_cast<std::size_t>(b.generation * 0x9E3779B97F4A7C15ull);
  }
};

/// The borrower of code running on the calling thread now: its current
/// context object, or anonymous in the thread's root context.
[[nodiscard]] inline borrower_id current_borrower() noexcept {
  const context_impl* c = tl_current;
  if (c == nullptr || c == tl_root) return {};
  return {c, c->generation()};
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_THREADS_DETAIL_BORROWER_HPP
