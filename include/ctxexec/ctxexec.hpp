// ctxexec/ctxexec.hpp
//
// The umbrella header: includes every public ctxexec header, the Boost.Asio
// integration and the executors (capacity_limiter, blocking_pool,
// run_sync_with_context, from_thread). The core headers alone need only the
// standard library.
//
// Example:
//   #include <ctxexec/ctxexec.hpp>
//   inline ctxexec::context_var<std::string> trace_id{"trace_id", "-"};
//   auto g = trace_id.scoped_set("4bf92f35");
//   auto snapshot = ctxexec::copy_context();
//   std::thread([snapshot]() mutable { snapshot.run(work); }).join();

#ifndef CTXEXEC_CTXEXEC_HPP
#define CTXEXEC_CTXEXEC_HPP

#include <ctxexec/asio.hpp>
#include <ctxexec/blocking_pool.hpp>
#include <ctxexec/capacity_limiter.hpp>
#include <ctxexec/context.hpp>
#include <ctxexec/context_leak_check.hpp>
#include <ctxexec/context_var.hpp>
#include <ctxexec/errors.hpp>
#include <ctxexec/from_thread.hpp>
#include <ctxexec/run_sync.hpp>

#endif  // CTXEXEC_CTXEXEC_HPP
