// ctxexec/threads/detail/limiter_state.hpp: the shared state behind
// ctxexec::capacity_limiter and its asynchronous acquire operation. Not part
// of the public API.
//
// The state is reference counted: the limiter object holds one reference,
// every acquire operation one from initiation until its completion is
// delivered (or destroyed undelivered), and every cancellation handler
// installed in a slot one for its own lifetime. So a completion posted
// before the limiter was destroyed, or a cancellation signal emitted after,
// still finds a live state and does nothing harmful.
//
// An operation leaves the FIFO queue exactly once, either granted or
// aborted, and its completion is posted exactly then. A granted operation
// may still be aborted by cancellation until its completion runs: the token
// then passes on. Cancellation finds its operation through a table entry
// (index plus ticket), never through a pointer that may dangle, as Asio's
// own operations cancel by key.
//
// Borrowers (see borrower.hpp): a borrower that is not anonymous has at
// most one record, from its acquire (or successful try_acquire) until its
// token is released or its operation leaves without one; a second request
// while the record exists is refused at once. A record holds a pointer to
// its operation until the operation's completion runs, then none. A
// release whose borrower has no token recorded cannot tell whose token
// returns: it forgets every recorded holder, so the check never refuses a
// borrower whose token went back that way; it only stops checking them.

#ifndef CTXEXEC_THREADS_DETAIL_LIMITER_STATE_HPP
#define CTXEXEC_THREADS_DETAIL_LIMITER_STATE_HPP

#include <ctxexec/detail/refcount.hpp>
#include <ctxexec/threads/detail/borrower.hpp>
#include <ctxexec/threads/detail/mutex.hpp>
#include <ctxexec/threads/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ctxexec::detail {

class limiter_state;

/// The type-erased part of one async_acquire operation. Its links and
/// status are guarded by the owning limiter_state's mutex.
class limiter_waiter {
 public:
  /// refused: a borrower's second request, completed at once.
  enum class status : unsigned char { queued, granted, aborted, refused };
  static constexpr std::size_t no_entry =
      std::numeric_limits<std::size_t>::max();

  limiter_waiter(const limiter_waiter&) = delete;
  limiter_waiter& operator=(const limiter_waiter&) = delete;

  /// Posts the completion to the handler's executor. Called once, outside
  /// the lock, when the operation leaves the queue. Terminates if posting
  /// throws (out of memory).
  void post() noexcept { post_(this); }

 protected:
  using post_fn = void (*)(limiter_waiter*) noexcept;
  limiter_waiter(limiter_state* state, post_fn post,
                 borrower_id borrower) noexcept
      : state_(state), post_(post), borrower_(borrower) {}
  ~limiter_waiter() = default;

  limiter_state* const state_;

 private:
  friend class limiter_state;
  post_fn post_;
  limiter_waiter* prev_ = nullptr;  // FIFO queue, or the list to post
  limiter_waiter* next_ = nullptr;
  status status_ = status::queued;
  bool recorded_ = false;         // borrower_ has a record naming this
  std::size_t entry_ = no_entry;  // cancellation table index
  const borrower_id borrower_;
};

/// Counters read together under the lock.
struct limiter_counts {
  std::size_t borrowed;
  std::size_t total;
  std::size_t waiting;
};

/// The tokens, the FIFO queue of waiters and the cancellation table.
///
/// Thread safety: every member is safe from any thread. No user code runs
/// with the mutex held: completions are posted after it is released.
class limiter_state {
 public:
  explicit limiter_state(std::size_t total) : total_(total) {}
  limiter_state(const limiter_state&) = delete;
  limiter_state& operator=(const limiter_state&) = delete;

  void add_ref() noexcept { detail::add_ref(refs_); }
  void drop_ref() noexcept {
    if (detail::drop_ref(refs_)) delete this;
  }

  /// Takes a free token for `b` unless a waiter is queued. Throws
  /// limiter_error when `b` already borrows, std::bad_alloc (nothing
  /// changed).
  bool try_acquire(borrower_id b) {
    mutex_lock lock(mu_);
    if (!b.anonymous() && borrowers_.contains(b)) {
      throw limiter_error(
          limiter_errc::already_borrowing,
          "capacity_limiter::try_acquire(): this borrower is already holding "
          "one of this CapacityLimiter's tokens");
    }
    if (head_ != nullptr || borrowed_ >= total_) return false;
    if (!b.anonymous()) {
      borrowers_.emplace(b, nullptr);
      ++held_records_;
    }
    ++borrowed_;
    return true;
  }

  /// Returns a token on behalf of `b`: its own, if it has one recorded;
  /// otherwise some token, whose borrower is then unknown (see the file
  /// comment). Throws limiter_error when none is borrowed.
  void release(borrower_id b) {
    limiter_waiter* ready;
    {
      mutex_lock lock(mu_);
      check_borrowed_locked();
      if (!release_recorded_locked(b)) forget_holders_locked();
      --borrowed_;
      ready = grant_locked();
    }
    post_all(ready);
  }

  /// Returns a token that was never recorded: one ctxexec's own parts took
  /// anonymously. Throws limiter_error when none is borrowed.
  void release_unrecorded() {
    limiter_waiter* ready;
    {
      mutex_lock lock(mu_);
      check_borrowed_locked();
      --borrowed_;
      ready = grant_locked();
    }
    post_all(ready);
  }

  void set_total(std::size_t total) {
    limiter_waiter* ready;
    {
      mutex_lock lock(mu_);
      total_ = total;
      ready = grant_locked();
    }
    post_all(ready);
  }

  [[nodiscard]] limiter_counts counts() const noexcept {
    mutex_lock lock(mu_);
    return {borrowed_, total_, waiting_};
  }

  /// Publishes a new operation: installs its cancellation handler when the
  /// slot is connected, then grants it a token or queues it. Throws
  /// std::bad_alloc before anything changed.
  template <class Slot>
  void start(limiter_waiter* w, Slot& slot);

  /// The cancellation handler's action: aborts the operation behind the
  /// table entry, if it is still undelivered.
  void cancel(std::size_t entry, std::uint64_t ticket) noexcept {
    limiter_waiter* ready = nullptr;
    {
      mutex_lock lock(mu_);
      if (entry >= entries_.size() || entries_[entry].waiter == nullptr ||
          entries_[entry].ticket != ticket) {
        return;  // already delivered
      }
      limiter_waiter* w = entries_[entry].waiter;
      switch (w->status_) {
        case limiter_waiter::status::queued:
          unlink_locked(w);
          drop_record_locked(w);
          w->status_ = limiter_waiter::status::aborted;
          w->next_ = nullptr;
          ready = w;  // leaves the queue: its completion gets posted
          break;
        case limiter_waiter::status::granted:
          // Its completion is posted already and will see `aborted`.
          drop_record_locked(w);
          w->status_ = limiter_waiter::status::aborted;
          --borrowed_;
          ready = grant_locked();  // the token passes on
          break;
        case limiter_waiter::status::aborted:
        case limiter_waiter::status::refused:
          return;
      }
    }
    post_all(ready);
  }

  /// Called by the completion before it invokes the handler: forgets the
  /// operation (its borrower's record, if any, now holds a delivered
  /// token). Returns its final status.
  limiter_waiter::status finish(limiter_waiter* w) noexcept {
    mutex_lock lock(mu_);
    forget_locked(w);
    if (w->recorded_) {
      borrowers_.find(w->borrower_)->second = nullptr;
      w->recorded_ = false;
    }
    return w->status_;
  }

  /// Called when a posted completion is destroyed without running (its
  /// executor shut down): forgets the operation and takes back its token.
  void abandon(limiter_waiter* w) noexcept {
    limiter_waiter* ready = nullptr;
    {
      mutex_lock lock(mu_);
      forget_locked(w);
      drop_record_locked(w);
      if (w->status_ == limiter_waiter::status::granted) {
        --borrowed_;
        ready = grant_locked();
      }
    }
    post_all(ready);
  }

  /// The limiter is being destroyed: every queued operation is aborted.
  void close() noexcept {
    limiter_waiter* ready;
    {
      mutex_lock lock(mu_);
      for (limiter_waiter* w = head_; w != nullptr; w = w->next_) {
        drop_record_locked(w);
        w->status_ = limiter_waiter::status::aborted;
      }
      ready = head_;  // already linked in FIFO order
      head_ = tail_ = nullptr;
      waiting_ = 0;
    }
    post_all(ready);
  }

 private:
  struct entry {
    limiter_waiter* waiter = nullptr;  // null while free
    std::uint64_t ticket = 0;
    std::size_t next_free = limiter_waiter::no_entry;
  };

  /// Cancellation handler installed in an operation's slot.
  class cancellation {
   public:
    cancellation(limiter_state* state, std::size_t entry,
                 std::uint64_t ticket) noexcept
        : state_(state), entry_(entry), ticket_(ticket) {
      state_->add_ref();
    }
    ~cancellation() { state_->drop_ref(); }
    cancellation(const cancellation&) = delete;
    cancellation& operator=(const cancellation&) = delete;

    void operator()(boost::asio::cancellation_type_t type) noexcept {
      if (type != boost::asio::cancellation_type::none) {
        state_->cancel(entry_, ticket_);
      }
    }

   private:
    limiter_state* state_;
    std::size_t entry_;
    std::uint64_t ticket_;
  };

  ~limiter_state() = default;  // through drop_ref only

  /// Grants free tokens to waiters at the head of the queue. Returns them,
  /// linked through next_ in FIFO order, for post_all() after unlocking.
  limiter_waiter* grant_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    limiter_waiter* first = head_;
    limiter_waiter* last = nullptr;
    while (head_ != nullptr && borrowed_ < total_) {
      last = head_;
      last->status_ = limiter_waiter::status::granted;
      if (last->recorded_) ++held_records_;
      head_ = last->next_;
      ++borrowed_;
      --waiting_;
    }
    if (last == nullptr) return nullptr;
    last->next_ = nullptr;
    if (head_ == nullptr) {
      tail_ = nullptr;
    } else {
      head_->prev_ = nullptr;
    }
    return first;
  }

  void unlink_locked(limiter_waiter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    (w->prev_ != nullptr ? w->prev_->next_ : head_) = w->next_;
    (w->next_ != nullptr ? w->next_->prev_ : tail_) = w->prev_;
    w->prev_ = nullptr;
    --waiting_;
  }

  void forget_locked(limiter_waiter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (w->entry_ == limiter_waiter::no_entry) return;
    entry& e = entries_[w->entry_];
    e.waiter = nullptr;
    e.next_free = free_entry_;
    free_entry_ = w->entry_;
    w->entry_ = limiter_waiter::no_entry;
  }

  /// Reserves a table entry for `w`. Throws std::bad_alloc when the table
  /// cannot grow.
  std::size_t enter_locked(limiter_waiter* w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::size_t index = free_entry_;
    if (index == limiter_waiter::no_entry) {
      entries_.emplace_back();
      index = entries_.size() - 1;
    } else {
      free_entry_ = entries_[index].next_free;
    }
    entries_[index] = entry{w, ++last_ticket_, limiter_waiter::no_entry};
    return index;
  }

  void check_borrowed_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (borrowed_ == 0) {
      throw limiter_error(limiter_errc::not_borrowing,
                          "capacity_limiter::release(): none of this "
                          "limiter's tokens is borrowed");
    }
  }

  /// Whether a record names a token: delivered, or granted to its
  /// operation.
  static bool holds(limiter_waiter* op) noexcept {
    return op == nullptr || op->status_ == limiter_waiter::status::granted;
  }

  /// Erases `b`'s record if it holds a token. Returns whether it did.
  bool release_recorded_locked(borrower_id b)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (b.anonymous() || held_records_ == 0) return false;
    const auto it = borrowers_.find(b);
    if (it == borrowers_.end() || !holds(it->second)) return false;
    if (it->second != nullptr) it->second->recorded_ = false;
    borrowers_.erase(it);
    --held_records_;
    return true;
  }

  /// Erases the record of `w`, which is leaving without its token or with
  /// it taken back.
  void drop_record_locked(limiter_waiter* w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!w->recorded_) return;
    if (w->status_ == limiter_waiter::status::granted) --held_records_;
    borrowers_.erase(w->borrower_);
    w->recorded_ = false;
  }

  /// Forgets every record that holds a token (a release could not tell
  /// whose token it returned). Records of queued operations stay.
  void forget_holders_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (held_records_ == 0) return;
    std::erase_if(borrowers_, [](const auto& record) {
      if (!holds(record.second)) return false;
      if (record.second != nullptr) record.second->recorded_ = false;
      return true;
    });
    held_records_ = 0;
  }

  /// Posts the completions of a list built by grant_locked() or close().
  static void post_all(limiter_waiter* w) noexcept {
    while (w != nullptr) {
      limiter_waiter* next = w->next_;  // read before the post: it may run
      w->post();
      w = next;
    }
  }

  mutable mutex mu_;
  std::size_t total_ ABSL_GUARDED_BY(mu_);
  std::size_t borrowed_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t waiting_ ABSL_GUARDED_BY(mu_) = 0;
  limiter_waiter* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  limiter_waiter* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<entry> entries_ ABSL_GUARDED_BY(mu_);
  std::size_t free_entry_ ABSL_GUARDED_BY(mu_) = limiter_waiter::no_entry;
  std::uint64_t last_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  // One record per borrower with a token or a request: its operation
  // until the completion runs, then nullptr.
  std::unordered_map<borrower_id, limiter_waiter*, borrower_hash> borrowers_
      ABSL_GUARDED_BY(mu_);
  std::size_t held_records_ ABSL_GUARDED_BY(mu_) = 0;  // records that hold
  std::atomic<std::uint32_t> refs_{1};
};

template <class Slot>
void limiter_state::start(limiter_waiter* w, Slot& slot) {
  limiter_waiter* ready = nullptr;
  {
    mutex_lock lock(mu_);
    if (!w->borrower_.anonymous()) {
      if (borrowers_.contains(w->borrower_)) {
        // A second request of one borrower: refused at once, as anyio
        // raises; nothing to cancel, so no handler in the slot.
        w->status_ = limiter_waiter::status::refused;
        ready = w;
      } else {
        borrowers_.emplace(w->borrower_, w);  // std::bad_alloc: no change
        w->recorded_ = true;
      }
    }
    if (ready == nullptr) {
      if (slot.is_connected()) {
        // Installed before the operation is published, so that no
        // completion can run (and clear the slot) before it is in place.
        try {
          const std::size_t index = enter_locked(w);
          w->entry_ = index;
          slot.template emplace<cancellation>(this, index,
                                              entries_[index].ticket);
        } catch (...) {
          forget_locked(w);
          drop_record_locked(w);
          throw;
        }
      }
      if (head_ == nullptr && borrowed_ < total_) {
        ++borrowed_;
        w->status_ = limiter_waiter::status::granted;
        if (w->recorded_) ++held_records_;
        ready = w;
      } else {
        w->prev_ = tail_;
        (tail_ != nullptr ? tail_->next_ : head_) = w;
        tail_ = w;
        ++waiting_;
      }
    }
  }
  if (ready != nullptr) ready->post();
}

/// One async_acquire operation with its handler, allocated with the
/// handler's associated allocator. It keeps work on the handler's executor
/// counted until the handler has run.
template <class Handler>
class limiter_op final : public limiter_waiter {
 public:
  using executor_type =
      boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;
  using allocator_type = boost::asio::associated_allocator_t<Handler>;

  /// Initiates the operation on `state` for `borrower`. Throws
  /// std::bad_alloc; the handler is then destroyed without being invoked.
  static void initiate(limiter_state& state,
                       const boost::asio::any_io_executor& io_ex,
                       borrower_id borrower, Handler h) {
    auto slot = boost::asio::get_associated_cancellation_slot(h);
    const allocator_type alloc = boost::asio::get_associated_allocator(h);
    op_allocator a(alloc);
    limiter_op* op = std::allocator_traits<op_allocator>::allocate(a, 1);
    try {
      auto ex = boost::asio::get_associated_executor(h, io_ex);
      new (op) limiter_op(&state, borrower, std::move(h), std::move(ex), alloc);
    } catch (...) {
      std::allocator_traits<op_allocator>::deallocate(a, op, 1);
      throw;
    }
    try {
      state.start(op, slot);
    } catch (...) {
      op->destroy();
      throw;
    }
  }

 private:
  using op_allocator = typename std::allocator_traits<
      allocator_type>::template rebind_alloc<limiter_op>;

  /// The function posted to the handler's executor. Owns the operation:
  /// destroyed without running (executor shut down), it abandons it.
  class completion {
   public:
    using allocator_type = limiter_op::allocator_type;
    explicit completion(limiter_op* op) noexcept
        : op_(op), alloc_(op->alloc_) {}
    completion(completion&& other) noexcept
        : op_(std::exchange(other.op_, nullptr)), alloc_(other.alloc_) {}
    completion& operator=(completion&&) = delete;
    ~completion() {
      if (op_ != nullptr) {
        op_->state_->abandon(op_);
        op_->destroy();
      }
    }
    [[nodiscard]] allocator_type get_allocator() const noexcept {
      return alloc_;
    }
    void operator()() { std::exchange(op_, nullptr)->complete(); }

   private:
    limiter_op* op_;
    allocator_type alloc_;
  };

  limiter_op(limiter_state* state, borrower_id borrower, Handler&& h,
             executor_type ex, const allocator_type& alloc)
      : limiter_waiter(state, &post_completion, borrower),
        handler_(std::move(h)),
        work_(std::move(ex)),
        alloc_(alloc) {
    state_->add_ref();
  }

  static void post_completion(limiter_waiter* w) noexcept {
    auto* op = static_cast<limiter_op*>(w);
    boost::asio::post(op->work_.get_executor(), completion(op));
  }

  /// Frees the operation's memory, then drops its state reference.
  void destroy() noexcept {
    limiter_state* state = state_;
    op_allocator a(alloc_);
    this->~limiter_op();
    std::allocator_traits<op_allocator>::deallocate(a, this, 1);
    state->drop_ref();
  }

  /// Runs on the handler's executor: frees the operation before the
  /// upcall, as Asio's operations do, then invokes the handler.
  void complete() {
    const status outcome = state_->finish(this);
    Handler handler(std::move(handler_));
    auto work(std::move(work_));  // counted until the handler returns
    destroy();
    switch (outcome) {
      case status::granted:
        std::move(handler)(boost::system::error_code());
        break;
      case status::refused:
        std::move(handler)(
            boost::system::error_code(limiter_errc::already_borrowing));
        break;
      default:
        std::move(handler)(
            boost::system::error_code(boost::asio::error::operation_aborted));
        break;
    }
  }

  Handler handler_;
  boost::asio::executor_work_guard<executor_type> work_;
  allocator_type alloc_;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_THREADS_DETAIL_LIMITER_STATE_HPP
