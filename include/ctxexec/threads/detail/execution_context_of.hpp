// ctxexec/threads/detail/execution_context_of.hpp
//
// Not API. `execution_context_of(ex)`: the Asio execution context behind an
// executor, for both executor models (standard executors and the older
// Networking TS ones).

#ifndef CTXEXEC_THREADS_DETAIL_EXECUTION_CONTEXT_OF_HPP
#define CTXEXEC_THREADS_DETAIL_EXECUTION_CONTEXT_OF_HPP

#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

namespace ctxexec::detail {

template <class Executor>
boost::asio::execution_context& execution_context_of(const Executor& ex) {
  if constexpr (boost::asio::execution::is_executor<Executor>::value) {
    return boost::asio::query(ex, boost::asio::execution::context);
  } else {
    return ex.context();
  }
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_THREADS_DETAIL_EXECUTION_CONTEXT_OF_HPP
