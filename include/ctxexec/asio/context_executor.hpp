// ctxexec/asio/context_executor.hpp
//
// Defines `context_executor<Executor>`, an executor adaptor that runs every
// function it executes inside one context object, and
// `make_context_executor()`. Given to `asio::co_spawn`, it makes a
// coroutine's context current at its start and after every suspension, on
// whichever thread resumes it. `ctxexec::co_spawn` builds one per task.
//
// Example:
//   boost::asio::io_context io;
//   ctxexec::context ctx;  // must outlive the work run through `ex`
//   auto ex = ctxexec::make_context_executor(io.get_executor(), ctx);
//   boost::asio::post(ex, [] { assert(user.try_get() == nullptr); });
//   io.run();
//
// Invalid use: a context_executor must be the outermost executor layer;
// make_context_executor() unwraps a context_executor it is given instead of
// nesting it. Making one from a temporary context does not compile.

#ifndef CTXEXEC_ASIO_CONTEXT_EXECUTOR_HPP
#define CTXEXEC_ASIO_CONTEXT_EXECUTOR_HPP

#include <ctxexec/asio/detail/handler_watch.hpp>
#include <ctxexec/asio/detail/strand_binding.hpp>
#include <ctxexec/context.hpp>

#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace ctxexec {

template <class Executor>
class context_executor;

namespace detail {

template <class T>
struct is_context_executor : std::false_type {};
template <class E>
struct is_context_executor<context_executor<E>> : std::true_type {};

/// Whether `Executor` is an io_context or thread_pool executor: a pointer
/// and some bits, copied for nothing once its work is untracked. A function
/// for a context object that another thread has entered re-submits itself
/// to such an executor; over other executors (a strand, a type-erased
/// executor) it waits on its thread instead.
template <class Executor>
struct is_requeue_executor : std::false_type {};
template <class Allocator, std::uintptr_t Bits>
struct is_requeue_executor<
    boost::asio::io_context::basic_executor_type<Allocator, Bits>>
    : std::true_type {};
template <class Allocator, unsigned int Bits>
struct is_requeue_executor<
    boost::asio::thread_pool::basic_executor_type<Allocator, Bits>>
    : std::true_type {};

/// What a function of a context_executor over `Executor` keeps to
/// re-submit itself: the untracked executor, or nothing (`void`).
template <class Executor, bool = is_requeue_executor<Executor>::value>
struct requeue_target {
  using type = void;
};
template <class Executor>
struct requeue_target<Executor, true> {
  using type = std::decay_t<decltype(boost::asio::prefer(
      std::declval<const Executor&>(),
      boost::asio::execution::outstanding_work.untracked))>;
};

struct no_requeue {};

/// A function to run inside a context object: what context_executor hands
/// to its inner executor. It names the object by address and generation.
/// When it runs:
///   * object current on this thread already: it runs inline;
///   * object free: it enters it (one compare-and-swap), runs, exits;
///   * object entered by another thread: it waits its turn, re-submitted
///     to `Requeue` when that thread exits the object, or, without a
///     `Requeue` executor, blocking its thread until then;
///   * object gone: it runs in a fresh, empty context, never in whatever
///     object reused the address, and what it sets reaches nobody.
template <class F, class Requeue>
class in_context {
  using requeue_executor =
      std::conditional_t<std::is_void_v<Requeue>, no_requeue, Requeue>;

 public:
  template <class G>
  in_context(context_impl* c, std::uint64_t generation, G&& f,
             const requeue_executor& ex = {})
      : context_(c), generation_(generation), f_(std::forward<G>(f)), ex_(ex) {}

  void operator()() {
    context_impl* c = context_;
    if (c == nullptr) {
      std::move(f_)();  // names no context: runs in the caller's
      return;
    }
    if (c == tl_current) {
      // Current here: this thread holds it, unless the named object died
      // and the current one reuses its address.
      finish(c->generation() == generation_ ? entry::same_thread : entry::gone);
      return;
    }
    const entry e = try_enter_named(c, generation_);
    if (e == entry::queued) {
      wait_turn();
    } else {
      finish(e);
    }
  }

 private:
  /// Runs the function as `e` says, once the object was entered (or found
  /// entered by this thread, or gone).
  void finish(entry e) {
    switch (e) {
      case entry::entered: {
        enter_scope scope(context_);
        watch_scope watch(context_, generation_);  // for a loop_monitor
        std::move(f_)();
        return;
      }
      case entry::same_thread: {
        adopt_scope scope(context_);
        watch_scope watch(context_, generation_);
        std::move(f_)();
        return;
      }
      case entry::gone:
      case entry::queued: {
        context fresh;  // what it sets reaches nobody
        fresh.run([&] { std::move(f_)(); });
        return;
      }
    }
  }

  /// The object is entered by another thread: wait for its exit.
  void wait_turn() {
    if constexpr (!std::is_void_v<Requeue>) {
      // Queued on the object: the exiting thread re-submits this function.
      // Without the memory for that, wait on this thread instead.
      std::unique_ptr<requeued> w(new (std::nothrow)
                                      requeued(std::move(*this)));
      if (w != nullptr) {
        const entry e =
            enter_or_queue(w->fn.context_, w->fn.generation_, w.get());
        if (e == entry::queued) {
          (void)w.release();  // owned by the object's waiter list now
        } else {
          w->fn.finish(e);
        }
        return;
      }
    }
    finish(enter_waiting(context_, generation_));
  }

  /// A function waiting for its context object, re-submitted to its
  /// executor (with work tracked meanwhile) by the thread that exits it.
  struct requeued final : context_waiter {
    explicit requeued(in_context&& f)
        : fn(std::move(f)),
          work(boost::asio::prefer(
              fn.ex_, boost::asio::execution::outstanding_work.tracked)) {
      wake = &requeued::resubmit;
    }

    static void resubmit(context_waiter* w) noexcept {
      auto* self = static_cast<requeued*>(w);
      context_impl* c = self->fn.context_;
      try {
        boost::asio::execution::execute(
            boost::asio::require(self->work,
                                 boost::asio::execution::blocking.never),
            std::move(self->fn));
      } catch (...) {
        std::fputs(
            "ctxexec: cannot re-submit work waiting for its context "
            "(out of memory)\n",
            stderr);
        std::terminate();
      }
      delete self;
      release(c);  // the handle taken when it was queued
    }

    in_context fn;
    std::decay_t<decltype(boost::asio::prefer(
        std::declval<const requeue_executor&>(),
        boost::asio::execution::outstanding_work.tracked))>
        work;
  };

  context_impl* context_;
  std::uint64_t generation_;
  F f_;
  [[no_unique_address]] requeue_executor ex_;
};

/// A handle to the context object named by (`c`, `generation`), or an
/// empty handle when that object no longer exists.
inline context pinned_context(context_impl* c,
                              std::uint64_t generation) noexcept {
  const bool alive = c != nullptr && try_pin(c, generation);
  return context_access::adopt(alive ? c : nullptr);
}

}  // namespace detail

/// An executor that runs each function it executes inside one context
/// object, then makes the thread's previous context current again.
///
/// It meets Asio's executor requirements: `execute`, and `query`, `require`
/// and `prefer` forwarded to the inner executor (results that are executors
/// are re-wrapped). Two are equal when they share the context object and
/// their inner executors are equal.
///
/// Thread safety: distinct objects: safe; shared objects: safe for const
/// members.
///
/// Propagation: the context object is fixed at construction. Each function
/// runs with it current (without marking it entered; see docs/asio.md), and
/// the previous context is restored when the function returns or throws.
/// When the object is already current the thread-local state is left alone.
///
/// Lifetime: the executor does not own the context object, so copying it
/// costs nothing. It names the object by address and generation and pins
/// it only while a function runs. Keep a `context` handle alive for as long
/// as work should run in it (`ctxexec::co_spawn` does, for the task's
/// lifetime). A function that runs after the object is gone runs in the
/// executing thread's own context: never in a dangling or reused one.
///
/// Errors: `execute` throws what the inner executor's `execute` throws
/// (std::bad_alloc at most for Asio's executors). Exceptions from the
/// function propagate as they would from the inner executor.
///
/// Example:
///   ctxexec::context ctx = ctxexec::copy_context();
///   auto ex = ctxexec::make_context_executor(io.get_executor(), ctx);
///   boost::asio::post(ex, work);  // runs in ctx while ctx lives
template <class Executor>
class context_executor {
  static_assert(!detail::is_context_executor<Executor>::value,
                "a context_executor must be the outermost layer; use "
                "make_context_executor() to unwrap");

 public:
  using inner_executor_type = Executor;

  /// Wraps `ex`; functions it executes run inside `ctx`'s object, while a
  /// handle to that object exists.
  context_executor(const Executor& ex, const context& ctx) noexcept
      : inner_(ex), context_(detail::context_access::impl(ctx)) {
    generation_ = context_ != nullptr ? context_->generation() : 0;
  }

  /// Deleted: the executor does not keep a temporary context alive.
  context_executor(const Executor& ex, context&& ctx) = delete;

  /// The wrapped executor.
  [[nodiscard]] const inner_executor_type& get_inner_executor() const noexcept {
    return inner_;
  }

  /// A handle to the context object functions run in, or an empty
  /// (moved-from) handle when it no longer exists.
  [[nodiscard]] context get_context() const noexcept {
    return detail::pinned_context(context_, generation_);
  }

  /// Submits `f` to the inner executor, to run inside the context object.
  template <class F>
  void execute(F&& f) const {
    using requeue = typename detail::requeue_target<Executor>::type;
    if constexpr (std::is_void_v<requeue>) {
      inner_.execute(detail::in_context<std::decay_t<F>, void>(
          context_, generation_, std::forward<F>(f)));
    } else {
      inner_.execute(detail::in_context<std::decay_t<F>, requeue>(
          context_, generation_, std::forward<F>(f),
          boost::asio::prefer(
              inner_, boost::asio::execution::outstanding_work.untracked)));
    }
  }

  template <class Property>
  requires boost::asio::can_query<const Executor&, Property>::value
      [[nodiscard]] decltype(auto)
      query(const Property& p) const noexcept(
          boost::asio::is_nothrow_query<const Executor&, Property>::value) {
    return boost::asio::query(inner_, p);
  }

  template <class Property>
  requires boost::asio::can_require<const Executor&, Property>::value
      [[nodiscard]] auto
      require(const Property& p) const {
    using result = std::decay_t<decltype(boost::asio::require(inner_, p))>;
    return context_executor<result>(boost::asio::require(inner_, p), context_,
                                    generation_);
  }

  template <class Property>
  requires boost::asio::can_prefer<const Executor&, Property>::value
      [[nodiscard]] auto
      prefer(const Property& p) const {
    using result = std::decay_t<decltype(boost::asio::prefer(inner_, p))>;
    return context_executor<result>(boost::asio::prefer(inner_, p), context_,
                                    generation_);
  }

  /// Whether the inner executor runs on this thread (where it can tell).
  [[nodiscard]] bool running_in_this_thread() const noexcept requires
      requires(const Executor& e) {
    e.running_in_this_thread();
  }
  { return inner_.running_in_this_thread(); }

  friend bool operator==(const context_executor& a,
                         const context_executor& b) noexcept {
    return a.context_ == b.context_ && a.generation_ == b.generation_ &&
           a.inner_ == b.inner_;
  }

 private:
  template <class>
  friend class context_executor;

  context_executor(const Executor& ex, detail::context_impl* context,
                   std::uint64_t generation) noexcept
      : inner_(ex), context_(context), generation_(generation) {}

  Executor inner_;
  detail::context_impl* context_;  // not owned: see "Lifetime"
  std::uint64_t generation_;
};

/// `context_executor` over a strand of an io_context (std::allocator): the
/// same contract as the primary template, in 16 bytes, so it fits
/// any_io_executor's small buffer and a hop allocates nothing. Copies share
/// a reference-counted binding of the strand and the context object (a copy
/// costs one atomic increment, as a strand's own copy does). Constructing
/// one from a strand and a context allocates that binding (std::bad_alloc);
/// `get_inner_executor()` returns the strand by value.
template <std::uintptr_t Bits>
class context_executor<boost::asio::strand<
    boost::asio::io_context::basic_executor_type<std::allocator<void>, Bits>>> {
  using io_executor =
      boost::asio::io_context::basic_executor_type<std::allocator<void>, Bits>;

 public:
  using inner_executor_type = boost::asio::strand<io_executor>;

  /// Wraps `ex`; functions it executes run inside `ctx`'s object, while a
  /// handle to that object exists. Throws std::bad_alloc.
  context_executor(const inner_executor_type& ex, const context& ctx)
      : context_executor(ex, detail::context_access::impl(ctx)) {}

  /// Deleted: the executor does not keep a temporary context alive.
  context_executor(const inner_executor_type& ex, context&& ctx) = delete;

  context_executor(const context_executor& other) noexcept
      : inner_(other.inner_), binding_(other.binding_) {
    if (binding_ != nullptr) binding_->add_ref();
  }

  context_executor(context_executor&& other) noexcept
      : inner_(std::move(other.inner_)),
        binding_(std::exchange(other.binding_, nullptr)) {}

  context_executor& operator=(const context_executor& other) noexcept {
    context_executor copy(other);
    swap(copy);
    return *this;
  }

  context_executor& operator=(context_executor&& other) noexcept {
    context_executor moved(std::move(other));
    swap(moved);
    return *this;
  }

  ~context_executor() {
    if (binding_ != nullptr) binding_->drop_ref();
  }

  /// The wrapped strand (by value).
  [[nodiscard]] inner_executor_type get_inner_executor() const {
    const detail::plain_io_strand& s =
        binding_->variant(detail::runtime_properties(inner_));
    if constexpr (std::is_same_v<io_executor, detail::plain_io_executor>) {
      return s;
    } else {
      return boost::asio::prefer(
          s, boost::asio::execution::outstanding_work.tracked);
    }
  }

  /// A handle to the context object functions run in, or an empty
  /// (moved-from) handle when it no longer exists (or this adaptor is
  /// moved-from).
  [[nodiscard]] context get_context() const noexcept {
    if (binding_ == nullptr) return detail::context_access::adopt(nullptr);
    return detail::pinned_context(binding_->context(), binding_->generation());
  }

  /// Submits `f` to the strand, to run inside the context object. Not on a
  /// moved-from adaptor.
  template <class F>
  void execute(F&& f) const {
    binding_->variant(detail::runtime_properties(inner_))
        .execute(detail::in_context<std::decay_t<F>, void>(
            binding_->context(), binding_->generation(), std::forward<F>(f)));
  }

  template <class Property>
  requires boost::asio::can_query<const io_executor&, Property>::value
      [[nodiscard]] decltype(auto)
      query(const Property& p) const noexcept(
          boost::asio::is_nothrow_query<const io_executor&, Property>::value) {
    return boost::asio::query(inner_, p);
  }

  template <class Property>
  requires boost::asio::can_require<const io_executor&, Property>::value
      [[nodiscard]] auto
      require(const Property& p) const {
    return rewrap(boost::asio::require(inner_, p), p);
  }

  template <class Property>
  requires boost::asio::can_prefer<const io_executor&, Property>::value
      [[nodiscard]] auto
      prefer(const Property& p) const {
    return rewrap(boost::asio::prefer(inner_, p), p);
  }

  /// Whether the strand is running on this thread (false for a
  /// moved-from adaptor).
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return binding_ != nullptr && binding_->base().running_in_this_thread();
  }

  /// Equal when they share the strand and the context object, or are both
  /// moved-from (as two moved-from strands are).
  friend bool operator==(const context_executor& a,
                         const context_executor& b) noexcept {
    if (a.binding_ == nullptr || b.binding_ == nullptr) {
      return a.binding_ == b.binding_;
    }
    const bool same_binding =
        a.binding_ == b.binding_ ||
        (a.binding_->base() == b.binding_->base() &&
         a.binding_->context() == b.binding_->context() &&
         a.binding_->generation() == b.binding_->generation());
    return same_binding && a.inner_ == b.inner_;
  }

 private:
  template <class>
  friend class context_executor;

  /// For re-wrapping in another adaptor's require/prefer. Throws
  /// std::bad_alloc.
  context_executor(const inner_executor_type& ex, detail::context_impl* context,
                   std::uint64_t generation)
      : inner_(ex.get_inner_executor()),
        binding_(detail::strand_binding::make(
            boost::asio::require(
                boost::asio::require(
                    boost::asio::prefer(
                        ex, boost::asio::execution::outstanding_work.untracked),
                    boost::asio::execution::blocking.possibly),
                boost::asio::execution::relationship.fork),
            context, generation)) {}

  context_executor(const inner_executor_type& ex, detail::context_impl* context)
      : context_executor(ex, context,
                         context != nullptr ? context->generation() : 0) {}

  context_executor(const io_executor& inner,
                   detail::strand_binding* binding) noexcept
      : inner_(inner), binding_(binding) {
    binding_->add_ref();
  }

  /// A property applied to the io_context executor: the same binding when
  /// the result is another io_context executor with std::allocator, else a
  /// primary-template adaptor over the strand with the property applied.
  template <class Result, class Property>
  auto rewrap(const Result& r, const Property& p) const {
    using other_strand = boost::asio::strand<Result>;
    if constexpr (detail::is_std_io_executor<Result>::value) {
      return context_executor<other_strand>(r, binding_);
    } else {
      (void)r;
      return context_executor<other_strand>(
          boost::asio::require(get_inner_executor(), p), binding_->context(),
          binding_->generation());
    }
  }

  void swap(context_executor& other) noexcept {
    std::swap(inner_, other.inner_);
    std::swap(binding_, other.binding_);
  }

  io_executor inner_;
  detail::strand_binding*
      binding_;  // shared with copies; never null unless moved from
};

/// Returns a context_executor running `ex`'s functions inside `ctx`. If
/// `ex` already is a context_executor, its inner executor is used: the
/// adaptor never nests.
///
/// Thread safety: safe. Propagation: none at the call; see
/// context_executor. Errors: none.
///
/// Example:
///   auto ex = ctxexec::make_context_executor(strand, request_ctx);
template <class Executor>
[[nodiscard]] auto make_context_executor(const Executor& ex,
                                         const context& ctx) {
  if constexpr (detail::is_context_executor<Executor>::value) {
    return context_executor<typename Executor::inner_executor_type>(
        ex.get_inner_executor(), ctx);
  } else {
    return context_executor<Executor>(ex, ctx);
  }
}

/// Deleted: the executor does not keep a temporary context alive.
template <class Executor>
auto make_context_executor(const Executor& ex, context&& ctx) = delete;

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_CONTEXT_EXECUTOR_HPP
