// ctxexec/asio.hpp
//
// The Boost.Asio integration: includes every public header under
// ctxexec/asio/ (`context_executor`, `co_spawn`, `bind_context`,
// `post`/`dispatch`/`defer`, `isolated`, `awaitable_operators`, `unwrap`,
// `loop_monitor`).
// CMake target: `ctxexec::asio` (the core and Boost.Asio).
//
// Example:
//   #include <ctxexec/asio.hpp>
//   auto g = request_id.scoped_set("req-1");
//   ctxexec::co_spawn(io, handle(), boost::asio::detached);  // sees "req-1"
//   ctxexec::post(pool, work);  // runs in a snapshot of this context

#ifndef CTXEXEC_ASIO_HPP
#define CTXEXEC_ASIO_HPP

#include <ctxexec/asio/bind_context.hpp>
#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/isolated.hpp>
#include <ctxexec/asio/loop_monitor.hpp>
#include <ctxexec/asio/post.hpp>
#include <ctxexec/asio/unwrap.hpp>
#include <ctxexec/core.hpp>

#endif  // CTXEXEC_ASIO_HPP
