// ctxexec/asio/detail/asio_private.hpp
//
// Not API. The one file that names Boost.Asio's private `boost::asio::detail`
// entities. Each is wrapped in a small function or trait of ours, so that a
// new Boost version is checked here and nowhere else:
//   * `is_awaitable_handler<T>`: whether T is the handler that resumes an
//     `asio::awaitable` coroutine (detail::awaitable_handler);
//   * `inside_asio_handler()` and `asio_call_stack_top()`: whether, and in
//     which run() the calling thread is inside an Asio event loop
//     (detail::thread_context);
//   * `runs_scheduler_of(ctx)`: whether the calling thread is inside run()
//     of the scheduler of `ctx` (an io_context or thread_pool;
//     detail::scheduler::can_dispatch).
//
// Written against Boost 1.81. Any other version stops the build with a clear
// message; define CTXEXEC_ASIO_UNCHECKED_BOOST_VERSION to build anyway, at
// your own risk, after checking these three entities in that version.

#ifndef CTXEXEC_ASIO_DETAIL_ASIO_PRIVATE_HPP
#define CTXEXEC_ASIO_DETAIL_ASIO_PRIVATE_HPP

#include <boost/version.hpp>

#if !defined(CTXEXEC_ASIO_UNCHECKED_BOOST_VERSION) && \
    (BOOST_VERSION / 100 != 1081)
#error \
    "ctxexec: <ctxexec/asio/detail/asio_private.hpp> relies on private Boost.Asio entities checked for Boost 1.81 only; this is another Boost version. Check awaitable_handler, thread_context and scheduler::can_dispatch there, then define CTXEXEC_ASIO_UNCHECKED_BOOST_VERSION."
#endif

#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/execution_context.hpp>

#include <type_traits>

namespace boost::asio::detail {
template <class Executor, class... Ts>
class awaitable_handler;
}  // namespace boost::asio::detail

namespace ctxexec::detail {

/// Whether T is the completion handler that resumes an asio::awaitable
/// coroutine (Asio's awaitable_handler), which resumes it inline.
template <class T>
struct is_awaitable_handler : std::false_type {};
template <class Executor, class... Ts>
struct is_awaitable_handler<
    boost::asio::detail::awaitable_handler<Executor, Ts...>> : std::true_type {
};

/// Identifies the innermost Asio event loop run() the calling thread is
/// inside (io_context::run, a thread_pool thread, ...), or nullptr: it
/// changes when the thread enters or leaves one.
inline const void* asio_call_stack_top() noexcept {
  return boost::asio::detail::thread_context::top_of_thread_call_stack();
}

/// Whether the calling thread is running a handler inside some Asio event
/// loop (io_context::run, thread_pool, strand, ...).
inline bool inside_asio_handler() noexcept {
  return asio_call_stack_top() != nullptr;
}

/// Whether the calling thread is inside run() of the scheduler that serves
/// `ctx` (an io_context or a thread_pool): what their executors'
/// running_in_this_thread() ask. False when `ctx` has no scheduler.
inline bool runs_scheduler_of(boost::asio::execution_context& ctx) {
  using scheduler = boost::asio::detail::scheduler;
  return boost::asio::has_service<scheduler>(ctx) &&
         boost::asio::use_service<scheduler>(ctx).can_dispatch();
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_ASIO_DETAIL_ASIO_PRIVATE_HPP
