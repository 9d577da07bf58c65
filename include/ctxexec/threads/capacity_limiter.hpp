// ctxexec/threads/capacity_limiter.hpp
//
// Defines `capacity_limiter`, an asynchronous counting limiter (anyio's
// CapacityLimiter) for Boost.Asio: at most `total_tokens()` borrowers at
// once, the others wait in FIFO order. Also `limiter_permit`, which returns
// a token on destruction, `limiter_statistics`, and
// `default_thread_limiter()`, one shared limiter per execution context.
//
// Example:
//   ctxexec::capacity_limiter limiter(io, 4);  // at most 4 at once
//   co_await limiter.async_acquire(boost::asio::use_awaitable);
//   ctxexec::limiter_permit permit(limiter, std::adopt_lock);
//   co_await query_database();  // released when `permit` goes away
//
// A total of 0 tokens is valid: nothing new is granted until the total is
// raised, which pauses whatever the limiter bounds (anyio 4.12 accepts 0).
//
// A borrower (the current context object: a `ctxexec::co_spawn` task, say)
// holds at most one token of a limiter, as in anyio: its second request is
// refused at once instead of waiting for its own token forever.
//
// Invalid use: release() without a borrowed token throws limiter_error, as
// does try_acquire() by a borrower that holds a token already;
// async_acquire reports the latter as limiter_errc::already_borrowing. The
// limiter must outlive its permits, and cancellation signals must not be
// emitted concurrently with the limiter's destruction.

#ifndef CTXEXEC_THREADS_CAPACITY_LIMITER_HPP
#define CTXEXEC_THREADS_CAPACITY_LIMITER_HPP

#include <ctxexec/threads/detail/limiter_state.hpp>
#include <ctxexec/threads/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <optional>
#include <ostream>
#include <type_traits>
#include <utility>

namespace ctxexec {

class capacity_limiter;

namespace detail {
/// Access to a limiter's shared state for ctxexec's own parts: the state
/// outlives the limiter while anything holds a reference
/// (run_sync_with_context releases tokens through it).
struct limiter_access {
  static limiter_state& state(const capacity_limiter& limiter) noexcept;
  /// async_acquire on behalf of no borrower: not subject to the
  /// one-token-per-borrower rule (run_sync_with_context borrows for each
  /// call, as anyio's to_thread.run_sync does, not for the calling task).
  template <class Token>
  static auto async_acquire_anonymous(capacity_limiter& limiter, Token&& token);
};
}  // namespace detail

/// A snapshot of a capacity_limiter's counters, all read at one instant.
///
/// Thread safety: a plain value. Errors: none.
/// Example: `auto s = limiter.statistics(); log(s.borrowed_tokens);`
struct limiter_statistics {
  /// Tokens granted and not yet released, including tokens granted to an
  /// async_acquire whose completion has not run yet.
  std::size_t borrowed_tokens;
  /// The current total, as set by the constructor or set_total_tokens().
  std::size_t total_tokens;
  /// async_acquire operations queued for a token.
  std::size_t tasks_waiting;
};

/// Prints `borrowed=B/T waiting=W`.
inline std::ostream& operator<<(std::ostream& os, const limiter_statistics& s) {
  return os << "borrowed=" << s.borrowed_tokens << "/" << s.total_tokens
            << " waiting=" << s.tasks_waiting;
}

/// An asynchronous counting limiter: it lends out at most `total_tokens()`
/// tokens at once. `async_acquire` waits for one; waiters are served in
/// FIFO order, and `try_acquire` never jumps the queue. Not copyable or
/// movable (operations in flight refer to it).
///
/// Borrowers: as anyio's borrower is the current task, ctxexec's is the
/// context object current when a member is called: a `ctxexec::co_spawn`
/// task's own, or the one of a `context::run()` scope, a
/// `run_sync_with_context` function or a `bind_context` snapshot. A
/// borrower holds at most one token of a limiter: while it holds one, or
/// waits for one, its next `async_acquire` completes at once with
/// `limiter_errc::already_borrowing` and its `try_acquire()` throws
/// limiter_error (anyio raises RuntimeError in both cases). A thread's root
/// context, shared by every plain callback and plain `asio::co_spawn`
/// coroutine on the thread, is no borrower: code running there is not
/// checked and may hold several tokens.
///
/// Releasing: `release()` returns the current borrower's token when it
/// holds one. Called elsewhere (a callback releasing for a task, say) it
/// still returns one token, as long as one is borrowed: anyio would raise,
/// but a C++ handler often runs in another context than the code that
/// asked. The limiter then cannot tell whose token came back and stops
/// checking the borrowers that held one; they are never refused wrongly. A
/// `limiter_permit` remembers its borrower and returns that one's token
/// wherever it is released.
///
/// Completion: `async_acquire` completes with `error_code{}` once a token
/// is granted to it, with `limiter_errc::already_borrowing` when its
/// borrower holds or waits for a token already, or with
/// `boost::asio::error::operation_aborted` when it is cancelled or the
/// limiter is destroyed first. It never completes
/// inside the initiating call: the handler is posted to its associated
/// executor (by default the limiter's), on which work is counted while the
/// operation waits, so `io_context::run()` does not return early. The
/// handler's associated allocator allocates the operation.
///
/// Cancellation: per-operation, through the handler's associated
/// cancellation slot; terminal, partial and total cancellation all abort
/// the wait (nothing happens that total cancellation would forbid). A
/// cancelled waiter leaves the queue. If a token was granted to it but its
/// completion has not run yet, the token passes to the next waiter (or back
/// to the pool) and the operation still completes with operation_aborted.
/// The signal may be emitted on any thread, as long as not concurrently
/// with the slot's other uses (Asio's rule for slots).
///
/// Thread safety: distinct objects: safe; shared objects: safe, every
/// member from any thread. The state is guarded by one mutex, and no
/// handler ever runs while it is held or inside a member call.
///
/// Propagation: the limiter captures no context. A handler runs through
/// its associated executor, so a `ctxexec::co_spawn` task resumes in its
/// own context, a `bind_context` handler in its snapshot, and a plain
/// callback in the executing thread's root context.
///
/// Zero tokens: a total of 0 is valid (in the constructors and
/// set_total_tokens()); nothing new is granted until the total is raised.
///
/// Errors: release() throws limiter_error when nothing is borrowed;
/// try_acquire() throws limiter_error when its borrower holds or waits for
/// a token already; async_acquire reports that through its completion
/// (never throws it), and throws std::bad_alloc (the handler is then
/// destroyed unused); try_acquire() throws std::bad_alloc too.
/// If posting a completion runs out of memory, std::terminate is called: a
/// granted token cannot be lost.
///
/// Example:
///   ctxexec::capacity_limiter limiter(io.get_executor(), 2);
///   limiter.async_acquire([&](boost::system::error_code ec) {
///     if (!ec) { work(); limiter.release(); }
///   });
class capacity_limiter {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// anyio's default, and the size of default_thread_limiter().
  static constexpr std::size_t default_total_tokens = 40;

  /// A limiter whose completions run, by default, on `ex`. With
  /// `total_tokens` 0 it grants nothing until set_total_tokens() raises it.
  explicit capacity_limiter(const executor_type& ex,
                            std::size_t total_tokens = default_total_tokens)
      : ex_(ex), state_(new detail::limiter_state(total_tokens)) {}

  /// A limiter on `ctx.get_executor()`.
  template <class ExecutionContext>
  requires std::is_convertible_v<ExecutionContext&,
                                 boost::asio::execution_context&>
  explicit capacity_limiter(ExecutionContext& ctx,
                            std::size_t total_tokens = default_total_tokens)
      : capacity_limiter(executor_type(ctx.get_executor()), total_tokens) {}

  capacity_limiter(const capacity_limiter&) = delete;
  capacity_limiter& operator=(const capacity_limiter&) = delete;

  /// Completes every queued waiter with operation_aborted, posted to its
  /// executor. Operations already granted a token complete normally.
  ~capacity_limiter() {
    state_->close();
    state_->drop_ref();
  }

  /// The default executor of completions.
  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }

  /// Waits for a token on behalf of the borrower current at initiation.
  /// Signature: `void(boost::system::error_code)`. See the class comment
  /// for borrowers, completion and cancellation.
  template <
      boost::asio::completion_token_for<void(boost::system::error_code)> Token>
  auto async_acquire(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        initiate_acquire(this, /*anonymous=*/false), token);
  }

  /// Takes a token for the current borrower if one is free and no waiter
  /// is queued (waiters are never overtaken). Returns whether it did.
  /// Throws limiter_error (limiter_errc::already_borrowing), changing
  /// nothing, when the borrower holds or waits for a token already.
  [[nodiscard]] bool try_acquire() {
    return state_->try_acquire(detail::current_borrower());
  }

  /// Returns one token: the current borrower's, if it holds one (see the
  /// class comment); the first waiter, if any, gets it. Throws
  /// limiter_error (limiter_errc::not_borrowing), changing nothing, when no
  /// token is borrowed.
  void release() { state_->release(detail::current_borrower()); }

  /// Changes the total. Raising it grants the new tokens to waiters at
  /// once; lowering it lets current borrowers finish, and grants nothing
  /// until fewer than the new total are borrowed. 0 is valid: it pauses
  /// granting until the total is raised again.
  void set_total_tokens(std::size_t total_tokens) {
    state_->set_total(total_tokens);
  }

  /// The current total.
  [[nodiscard]] std::size_t total_tokens() const noexcept {
    return state_->counts().total;
  }

  /// A consistent snapshot of the counters.
  [[nodiscard]] limiter_statistics statistics() const noexcept {
    const detail::limiter_counts c = state_->counts();
    return {c.borrowed, c.total, c.waiting};
  }

 private:
  friend struct detail::limiter_access;

  class initiate_acquire {
   public:
    using executor_type = capacity_limiter::executor_type;
    initiate_acquire(capacity_limiter* self, bool anonymous) noexcept
        : self_(self), anonymous_(anonymous) {}
    [[nodiscard]] executor_type get_executor() const noexcept {
      return self_->ex_;
    }
    template <class Handler>
    void operator()(Handler&& handler) const {
      // The borrower is the one current at initiation (for `deferred`,
      // when the operation is launched).
      detail::limiter_op<std::decay_t<Handler>>::initiate(
          *self_->state_, self_->ex_,
          anonymous_ ? detail::borrower_id{} : detail::current_borrower(),
          std::forward<Handler>(handler));
    }

   private:
    capacity_limiter* self_;
    bool anonymous_;
  };

  executor_type ex_;
  detail::limiter_state* state_;
};

/// Owns one borrowed token of a capacity_limiter and releases it on
/// destruction, as std::unique_lock owns a mutex (anyio: `async with
/// limiter:`). Move-only.
///
/// The permit remembers its borrower: the context object current when it
/// was made (see capacity_limiter). Wherever the permit is released, even
/// moved into another task, the token goes back as that borrower's, which
/// may then borrow again.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe.
/// Propagation: none; it only counts tokens.
/// Errors: release() throws limiter_error when the permit holds no token;
/// try_acquire() throws what capacity_limiter::try_acquire() throws. The
/// destructor releases without throwing (a permit that holds a token makes
/// the limiter's release succeed).
///
/// Example:
///   co_await limiter.async_acquire(boost::asio::use_awaitable);
///   ctxexec::limiter_permit permit(limiter, std::adopt_lock);
///   if (auto p = ctxexec::limiter_permit::try_acquire(limiter)) { ... }
class limiter_permit {
 public:
  /// Holds nothing.
  limiter_permit() noexcept = default;

  /// Adopts a token the current borrower acquired from `limiter` (by
  /// async_acquire or try_acquire). `limiter` must outlive the permit.
  limiter_permit(capacity_limiter& limiter, std::adopt_lock_t) noexcept
      : limiter_(&limiter), borrower_(detail::current_borrower()) {}

  limiter_permit(limiter_permit&& other) noexcept
      : limiter_(std::exchange(other.limiter_, nullptr)),
        borrower_(other.borrower_) {}

  limiter_permit& operator=(limiter_permit&& other) noexcept {
    if (this != &other) {
      reset();
      limiter_ = std::exchange(other.limiter_, nullptr);
      borrower_ = other.borrower_;
    }
    return *this;
  }

  ~limiter_permit() { reset(); }

  /// A permit holding a token of `limiter` when try_acquire() got one,
  /// else std::nullopt. Throws as capacity_limiter::try_acquire().
  [[nodiscard]] static std::optional<limiter_permit> try_acquire(
      capacity_limiter& limiter) {
    if (!limiter.try_acquire()) return std::nullopt;
    return limiter_permit(limiter, std::adopt_lock);
  }

  /// Returns the token now. Throws limiter_error when the permit holds
  /// none (empty, moved-from or already released).
  void release() {
    if (limiter_ == nullptr) {
      throw limiter_error(
          limiter_errc::not_borrowing,
          "limiter_permit::release(): the permit holds no token");
    }
    detail::limiter_access::state(*std::exchange(limiter_, nullptr))
        .release(borrower_);
  }

  /// Whether the permit holds a token.
  [[nodiscard]] bool owns_token() const noexcept { return limiter_ != nullptr; }

  /// The limiter whose token the permit holds, or nullptr.
  [[nodiscard]] capacity_limiter* limiter() const noexcept { return limiter_; }

 private:
  void reset() noexcept {
    if (limiter_ != nullptr) {
      detail::limiter_access::state(*std::exchange(limiter_, nullptr))
          .release(borrower_);
    }
  }

  capacity_limiter* limiter_ = nullptr;
  detail::borrower_id borrower_;
};

namespace detail {

inline limiter_state& limiter_access::state(
    const capacity_limiter& limiter) noexcept {
  return *limiter.state_;
}

template <class Token>
auto limiter_access::async_acquire_anonymous(capacity_limiter& limiter,
                                             Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      capacity_limiter::initiate_acquire(&limiter, /*anonymous=*/true), token);
}

/// The Asio service that holds an execution context's default limiter. The
/// limiter is made on the first request, with that request's executor.
class default_limiter_service final
    : public boost::asio::execution_context::service {
 public:
  using key_type = default_limiter_service;
  static inline boost::asio::execution_context::id id;

  explicit default_limiter_service(boost::asio::execution_context& ctx)
      : service(ctx) {}

  capacity_limiter& limiter(const boost::asio::any_io_executor& ex) {
    std::call_once(made_, [&] {
      limiter_.emplace(ex);
      made_flag_.store(true, std::memory_order_release);
    });
    return *limiter_;
  }

  template <class ExecutionContext>
  static capacity_limiter& of(ExecutionContext& ctx,
                              const boost::asio::any_io_executor& ex) {
    return boost::asio::use_service<default_limiter_service>(ctx).limiter(ex);
  }

 private:
  // Waiters are aborted when the context shuts down; completions posted
  // to a context already shut down are destroyed with it, their tokens
  // taken back.
  void shutdown() override {
    // Waiters complete (aborted) now, while every service still exists.
    if (made_flag_.load(std::memory_order_acquire)) {
      limiter_access::state(*limiter_).close();
    }
  }

  std::once_flag made_;
  std::optional<capacity_limiter> limiter_;
  std::atomic<bool> made_flag_{false};  // limiter_ is set, for shutdown()
};

}  // namespace detail

/// The limiter shared by everything that runs blocking work for `ctx`
/// (anyio's default thread limiter): one per execution context, made on
/// first use with capacity_limiter::default_total_tokens (40) tokens and
/// destroyed with the context. Every call for one context returns the same
/// object. Resize it with set_total_tokens() and watch it with
/// statistics().
///
/// Its default executor (for handlers without an associated executor of
/// their own) is ctx's executor when ctx is an io_context or a thread_pool,
/// otherwise boost::asio::system_executor. Asio's execution_context is not
/// polymorphic, so the overload chosen by the argument's static type
/// decides, on the first call for a context: call it with the io_context
/// or thread_pool itself, not a base reference, to get its executor.
///
/// Thread safety: safe from any thread, like the limiter itself.
/// Propagation: none. Errors: std::bad_alloc on first use.
///
/// Example:
///   ctxexec::default_thread_limiter(io).set_total_tokens(8);
inline capacity_limiter& default_thread_limiter(
    boost::asio::execution_context& ctx) {
  return detail::default_limiter_service::of(ctx,
                                             boost::asio::system_executor());
}

/// See default_thread_limiter(execution_context&): uses ctx's executor.
inline capacity_limiter& default_thread_limiter(boost::asio::io_context& ctx) {
  return detail::default_limiter_service::of(ctx, ctx.get_executor());
}

/// See default_thread_limiter(execution_context&): uses ctx's executor.
inline capacity_limiter& default_thread_limiter(boost::asio::thread_pool& ctx) {
  return detail::default_limiter_service::of(ctx, ctx.get_executor());
}

}  // namespace ctxexec

#endif  // CTXEXEC_THREADS_CAPACITY_LIMITER_HPP
