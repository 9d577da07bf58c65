// ctxexec/core.hpp
//
// The core of ctxexec: Python's `contextvars` for C++20, with the standard
// library only. Includes `context_var<T>`, `token<T>`, `set_guard<T>`,
// `context`, `copy_context()`, the core's errors, `context_leak_check`, and
// the W3C propagation headers: Trace Context (`trace_context`,
// `current_trace`) and Baggage (`baggage`, `current_baggage`).
// CMake target: `ctxexec::core`.
//
// Example:
//   inline ctxexec::context_var<std::string> request_id{"request_id", "-"};
//   auto guard = request_id.scoped_set("req-1");
//   auto snapshot = ctxexec::copy_context();  // O(1)
//   std::thread([snapshot]() mutable { snapshot.run(work); }).join();

#ifndef CTXEXEC_CORE_HPP
#define CTXEXEC_CORE_HPP

#include <ctxexec/baggage.hpp>
#include <ctxexec/context.hpp>
#include <ctxexec/context_leak_check.hpp>
#include <ctxexec/context_var.hpp>
#include <ctxexec/errors.hpp>
#include <ctxexec/trace_context.hpp>

#endif  // CTXEXEC_CORE_HPP
