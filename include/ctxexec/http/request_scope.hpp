// ctxexec/http/request_scope.hpp
//
// Defines `request_scope`, the lifetime of per-request resources: FastAPI's
// dependencies with `yield` (`Depends(get_db)`). Code that takes a resource
// for a request (a DB session, a lock, a temp file) registers its cleanup in
// the current request's scope; the cleanups run in reverse order when the
// request ends: after its response is written, or when its handler throws,
// or when the client went away. Also `request_scope_counters`, for metrics,
// and the context variable `current_request_scope`.
//
// Example:
//   boost::asio::awaitable<session&> get_db() {
//     session& s = co_await pool.async_acquire(boost::asio::use_awaitable);
//     ctxexec::http::request_scope::current().defer_sync(
//         [&s] { s.close(); });    // blocking: runs on a worker
//     co_return s;
//   }
//
// Invalid use: destroying a scope that was not closed runs its synchronous
// cleanups inline and drops its asynchronous ones (CTXEXEC_ASSERT in debug
// builds: close() must be awaited); `current()` outside any request throws
// `std::logic_error`.

#ifndef CTXEXEC_HTTP_REQUEST_SCOPE_HPP
#define CTXEXEC_HTTP_REQUEST_SCOPE_HPP

#include <ctxexec/context_var.hpp>
#include <ctxexec/detail/config.hpp>
#include <ctxexec/threads/run_sync.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <absl/functional/any_invocable.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>
#include <variant>
#include <vector>

namespace ctxexec::http {

/// Counters of request scopes, for metrics; shared by any number of scopes
/// (`serve_options::counters`). All relaxed atomics.
///
/// Thread safety: safe from any thread. Propagation: none. Errors: none.
/// Example: `metrics << counters.cleanups_run.load();`
struct request_scope_counters {
  /// Scopes opened, and closed (every cleanup ran). `opened - closed` are
  /// open now.
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> closed{0};
  /// Cleanups registered, and cleanups run (whether or not they threw).
  std::atomic<std::uint64_t> cleanups_registered{0};
  std::atomic<std::uint64_t> cleanups_run{0};
  /// Cleanups that threw.
  std::atomic<std::uint64_t> cleanup_errors{0};
};

/// The cleanups of one request, run in reverse order of registration by
/// `close()`.
///
/// An asynchronous cleanup (`defer`) is awaited on the request's loop, in
/// the request's context. A synchronous one (`defer_sync`: closing a
/// session of a blocking DB driver, say) runs off the loop through
/// `run_sync_with_context` with the scope's `run_sync_options`, in a copy
/// of the request's context. Every cleanup runs even when an earlier one
/// throws; `close()` then rethrows the first exception.
///
/// Thread safety: distinct objects: safe; shared objects: unsafe. Use it
/// from the request's own code; a sync handler may register cleanups on
/// its worker while the request's coroutine waits for it.
///
/// Propagation: captures no context; cleanups run in the context current
/// when `close()` is awaited (the request's, under `serve_request()`).
///
/// Errors: `defer`/`defer_sync` throw std::bad_alloc (the cleanup is then
/// not registered) and `std::logic_error` after `close()` began. `close()`
/// rethrows the first exception a cleanup threw.
///
/// Example:
///   ctxexec::http::request_scope scope;
///   scope.defer([]() -> boost::asio::awaitable<void> { co_await flush(); });
///   scope.defer_sync([] { file.close(); });
///   co_await scope.close();   // file.close() on a worker, then flush()
class request_scope {
 public:
  using async_cleanup = absl::AnyInvocable<boost::asio::awaitable<void>() &&>;
  using sync_cleanup = absl::AnyInvocable<void() &&>;

  /// An open scope; synchronous cleanups run with `sync_options` (by
  /// default the caller's default limiter and pool), and `counters`, if
  /// given, count it.
  explicit request_scope(run_sync_options sync_options = {},
                         request_scope_counters* counters = nullptr) noexcept
      : options_(sync_options), counters_(counters) {
    if (counters_ != nullptr) {
      counters_->opened.fetch_add(1, std::memory_order_relaxed);
    }
  }

  request_scope(const request_scope&) = delete;
  request_scope& operator=(const request_scope&) = delete;

  /// Precondition (CTXEXEC_ASSERT): `close()` completed. Otherwise the
  /// synchronous cleanups run here, inline, and the asynchronous ones are
  /// dropped unrun.
  ~request_scope() {
    CTXEXEC_ASSERT(cleanups_.empty() && "request_scope: close() not awaited");
    while (!cleanups_.empty()) {
      entry e = std::move(cleanups_.back());
      cleanups_.pop_back();
      if (auto* f = std::get_if<sync_cleanup>(&e)) {
        try {
          std::move (*f)();
        } catch (...) {
          count_error();
        }
        count_run();
      }
    }
  }

  /// The scope of the request being served in the current context (set by
  /// `serve_request()`). Throws `std::logic_error` outside any request.
  [[nodiscard]] static request_scope& current();

  /// Registers `f`, a function returning `awaitable<void>`, to be awaited
  /// at `close()`.
  template <class F>
  void defer(F&& f) {
    add(async_cleanup(std::forward<F>(f)));
  }

  /// Registers `f`, a blocking `void()` function, to run on a worker at
  /// `close()`.
  template <class F>
  void defer_sync(F&& f) {
    add(sync_cleanup(std::forward<F>(f)));
  }

  /// The number of cleanups registered and not run yet.
  [[nodiscard]] std::size_t size() const noexcept { return cleanups_.size(); }

  /// Whether `close()` began.
  [[nodiscard]] bool closing() const noexcept { return closing_; }

  /// Closes the scope at once if no cleanup is registered, and returns
  /// true; returns false, changing nothing, if there are cleanups to run
  /// (await `close()` then). Spares a request without cleanups a coroutine.
  bool try_close() noexcept {
    if (!cleanups_.empty()) return false;
    closing_ = true;
    if (counters_ != nullptr) {
      counters_->closed.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }

  /// Runs every cleanup, the last registered first; each one runs even if
  /// an earlier one threw. Rethrows the first exception after the last
  /// cleanup. Call it once.
  boost::asio::awaitable<void> close() {
    closing_ = true;
    std::exception_ptr first;
    while (!cleanups_.empty()) {
      entry e = std::move(cleanups_.back());
      cleanups_.pop_back();
      try {
        if (auto* f = std::get_if<sync_cleanup>(&e)) {
          co_await run_sync_with_context(options_, std::move(*f),
                                         boost::asio::use_awaitable);
        } else {
          co_await std::move(std::get<async_cleanup>(e))();
        }
      } catch (...) {
        count_error();
        if (!first) first = std::current_exception();
      }
      count_run();
    }
    if (counters_ != nullptr) {
      counters_->closed.fetch_add(1, std::memory_order_relaxed);
    }
    if (first) std::rethrow_exception(first);
  }

 private:
  using entry = std::variant<async_cleanup, sync_cleanup>;

  void add(entry e) {
    if (closing_) {
      throw std::logic_error("request_scope: cleanup added after close()");
    }
    cleanups_.push_back(std::move(e));
    if (counters_ != nullptr) {
      counters_->cleanups_registered.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void count_run() noexcept {
    if (counters_ != nullptr) {
      counters_->cleanups_run.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void count_error() noexcept {
    if (counters_ != nullptr) {
      counters_->cleanup_errors.fetch_add(1, std::memory_order_relaxed);
    }
  }

  run_sync_options options_;
  request_scope_counters* counters_;
  std::vector<entry> cleanups_;
  bool closing_ = false;
};

/// The scope of the request being served: set by `serve_request()` in the
/// request's own context, so it is seen by middleware, handlers and their
/// sync functions, never by another request. No default: `try_get()` is
/// nullptr outside a request. A task that may outlive the request keeps the
/// scope alive by copying the pointer; once the request ended, the scope is
/// closed and `defer` throws `std::logic_error` (never a dangling scope).
///
/// Thread safety, Propagation and Errors: those of `context_var`.
///
/// Example:
///   if (auto* s = ctxexec::http::current_request_scope.try_get())
///     (*s)->defer_sync(close_file);
inline context_var<std::shared_ptr<request_scope>> current_request_scope{
    "ctxexec.http.request_scope"};

inline request_scope& request_scope::current() {
  const std::shared_ptr<request_scope>* s = current_request_scope.try_get();
  if (s == nullptr || *s == nullptr) {
    throw std::logic_error(
        "ctxexec::http::request_scope::current(): no request is being served "
        "in this context");
  }
  return **s;
}

}  // namespace ctxexec::http

#endif  // CTXEXEC_HTTP_REQUEST_SCOPE_HPP
