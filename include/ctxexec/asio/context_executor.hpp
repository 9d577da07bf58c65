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
//   ctxexec::context ctx;
//   auto ex = ctxexec::make_context_executor(io.get_executor(), ctx);
//   boost::asio::post(ex, [] { assert(user.try_get() == nullptr); });
//   io.run();
//
// Invalid use: a context_executor must be the outermost executor layer;
// make_context_executor() unwraps a context_executor it is given instead of
// nesting it.

#ifndef CTXEXEC_ASIO_CONTEXT_EXECUTOR_HPP
#define CTXEXEC_ASIO_CONTEXT_EXECUTOR_HPP

#include <ctxexec/context.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/strand.hpp>

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

/// A function to run inside a context object: what context_executor hands
/// to its inner executor. Keeps the context object alive until it ran.
template <class F>
class in_context {
 public:
  template <class G>
  in_context(const context& ctx, G&& f) : ctx_(ctx), f_(std::forward<G>(f)) {}

  void operator()() {
    adopt_scope scope(context_access::impl(ctx_));
    std::move(f_)();
  }

 private:
  context ctx_;
  F f_;
};

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
/// Errors: `execute` throws what the inner executor's `execute` throws
/// (std::bad_alloc at most for Asio's executors). Exceptions from the
/// function propagate as they would from the inner executor.
///
/// Example:
///   auto ex = ctxexec::make_context_executor(io.get_executor(),
///                                            ctxexec::copy_context());
///   boost::asio::co_spawn(ex, task(), boost::asio::detached);
template <class Executor>
class context_executor {
  static_assert(!detail::is_context_executor<Executor>::value,
                "a context_executor must be the outermost layer; use "
                "make_context_executor() to unwrap");

 public:
  using inner_executor_type = Executor;

  /// Wraps `ex`; functions it executes run inside `ctx`.
  context_executor(const Executor& ex, context ctx) noexcept
      : inner_(ex), ctx_(std::move(ctx)) {}

  /// The wrapped executor.
  [[nodiscard]] const inner_executor_type& get_inner_executor() const noexcept {
    return inner_;
  }

  /// The context object functions run in.
  [[nodiscard]] const context& get_context() const noexcept { return ctx_; }

  /// Submits `f` to the inner executor, to run inside the context object.
  template <class F>
  void execute(F&& f) const {
    inner_.execute(
        detail::in_context<std::decay_t<F>>(ctx_, std::forward<F>(f)));
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
    return context_executor<result>(boost::asio::require(inner_, p), ctx_);
  }

  template <class Property>
  requires boost::asio::can_prefer<const Executor&, Property>::value
      [[nodiscard]] auto
      prefer(const Property& p) const {
    using result = std::decay_t<decltype(boost::asio::prefer(inner_, p))>;
    return context_executor<result>(boost::asio::prefer(inner_, p), ctx_);
  }

  /// Whether the inner executor runs on this thread (where it can tell).
  [[nodiscard]] bool running_in_this_thread() const noexcept requires
      requires(const Executor& e) {
    e.running_in_this_thread();
  }
  { return inner_.running_in_this_thread(); }

  friend bool operator==(const context_executor& a,
                         const context_executor& b) noexcept {
    return a.ctx_ == b.ctx_ && a.inner_ == b.inner_;
  }

 private:
  Executor inner_;
  context ctx_;
};

/// Returns a context_executor running `ex`'s functions inside `ctx`. If
/// `ex` already is a context_executor, its inner executor is used: the
/// adaptor never nests.
///
/// Thread safety: safe. Propagation: none at the call; see
/// context_executor. Errors: none.
///
/// Example:
///   auto ex = ctxexec::make_context_executor(strand, ctxexec::copy_context());
template <class Executor>
[[nodiscard]] auto make_context_executor(const Executor& ex, context ctx) {
  if constexpr (detail::is_context_executor<Executor>::value) {
    return context_executor<typename Executor::inner_executor_type>(
        ex.get_inner_executor(), std::move(ctx));
  } else {
    return context_executor<Executor>(ex, std::move(ctx));
  }
}

/// The executor under a context_executor (or `ex` itself): build I/O objects
/// from it when a context variable holds one of them, so that the I/O object
/// does not keep the context object alive (see docs/asio.md). Looks inside
/// an `any_io_executor` for a context_executor over an io_context executor,
/// a strand of one, or an `any_io_executor`.
///
/// Thread safety: safe. Propagation: none. Errors: std::bad_alloc at most
/// (re-wrapping in an `any_io_executor`).
///
/// Example:
///   auto timer = boost::asio::steady_timer(ctxexec::unwrap(ex));
template <class Executor>
[[nodiscard]] auto unwrap(const Executor& ex) {
  if constexpr (detail::is_context_executor<Executor>::value) {
    return ex.get_inner_executor();
  } else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>) {
    // A coroutine's own executor: look through it for the common adaptors.
    using io_ex = boost::asio::io_context::executor_type;
    using strand_ex = boost::asio::strand<io_ex>;
    if (auto* c = ex.template target<context_executor<io_ex>>()) {
      return boost::asio::any_io_executor(c->get_inner_executor());
    }
    if (auto* c = ex.template target<context_executor<strand_ex>>()) {
      return boost::asio::any_io_executor(c->get_inner_executor());
    }
    if (auto* c = ex.template target<
                  context_executor<boost::asio::any_io_executor>>()) {
      return c->get_inner_executor();
    }
    return ex;
  } else {
    return ex;
  }
}

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_CONTEXT_EXECUTOR_HPP
