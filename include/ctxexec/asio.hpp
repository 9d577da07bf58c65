// ctxexec/asio.hpp
//
// The Boost.Asio integration: includes every header under ctxexec/asio/.
//
// Example:
//   #include <ctxexec/asio.hpp>
//   auto g = request_id.scoped_set("req-1");
//   ctxexec::co_spawn(io, handle(), boost::asio::detached);  // sees "req-1"
//   ctxexec::post(pool, ctxexec::bind_context(work));

#ifndef CTXEXEC_ASIO_HPP
#define CTXEXEC_ASIO_HPP

#include <ctxexec/asio/bind_context.hpp>
#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/asio/context_executor.hpp>
#include <ctxexec/asio/isolated.hpp>
#include <ctxexec/asio/post.hpp>

#endif  // CTXEXEC_ASIO_HPP
