// ctxexec/threads.hpp
//
// The thread executors, anyio's to_thread / from_thread / CapacityLimiter on
// Boost.Asio: includes every public header under ctxexec/threads/
// (`capacity_limiter`, `blocking_pool`, `run_sync_with_context`,
// `from_thread`, and their errors). CMake target: `ctxexec::threads` (the
// Asio integration and Abseil).
//
// Example:
//   #include <ctxexec/threads.hpp>
//   auto rows = co_await ctxexec::run_sync_with_context(
//       [&] { return db.query(sql); }, boost::asio::use_awaitable);
//   ctxexec::default_thread_limiter(io).set_total_tokens(64);

#ifndef CTXEXEC_THREADS_HPP
#define CTXEXEC_THREADS_HPP

#include <ctxexec/asio.hpp>
#include <ctxexec/threads/blocking_pool.hpp>
#include <ctxexec/threads/capacity_limiter.hpp>
#include <ctxexec/threads/errors.hpp>
#include <ctxexec/threads/from_thread.hpp>
#include <ctxexec/threads/run_sync.hpp>

#endif  // CTXEXEC_THREADS_HPP
