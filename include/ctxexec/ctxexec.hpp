// ctxexec/ctxexec.hpp
//
// The umbrella header: every part of ctxexec. The core
// (<ctxexec/core.hpp>, standard library only), the Boost.Asio integration
// (<ctxexec/asio.hpp>), the thread executors (<ctxexec/threads.hpp>, Asio
// and Abseil) and the HTTP part (<ctxexec/http.hpp>, Beast). CMake target:
// `ctxexec::ctxexec`. The optional spdlog integration is not included:
// <ctxexec/spdlog/context_flag.hpp>, target `ctxexec::spdlog`.
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
#include <ctxexec/core.hpp>
#include <ctxexec/http.hpp>
#include <ctxexec/threads.hpp>

#endif  // CTXEXEC_CTXEXEC_HPP
