// request_log.hpp and request_log_plain.hpp: the log function of the
// servers, with ctxexec (request_log.hpp) and before it (the *_plain.cpp
// twins include request_log_plain.hpp). With ctxexec, the ids of the request
// (its trace id, its user id) live in context variables: set once where the
// request starts (`enter_request`), they are printed on every log line
// written for it (`log_line`), from any thread or handler that runs in the
// request's context, without being passed down. docs/adopting.md shows the
// diff.

#ifndef ADOPT_REQUEST_LOG_HPP
#define ADOPT_REQUEST_LOG_HPP

#include <ctxexec/core.hpp>

#include <iostream>
#include <mutex>
#include <string>
#include <string_view>

// The user id of the current request (its x-user-id header); not set when
// the request has none.
inline ctxexec::context_var<std::string> user_id{"user_id"};

// Sets the ids of a request in the current context, which must be the
// request's own (a task or a `ctx.run()` of this request only): the trace
// of `traceparent`, or a new trace if it is empty or invalid, and `user`
// unless it is empty.
inline void enter_request(std::string_view traceparent, std::string_view user) {
  (void)ctxexec::current_trace.set(
      ctxexec::trace_context::from_request(traceparent));
  if (!user.empty()) (void)user_id.set(std::string(user));
}

// "trace_id=<32 hex digits> user_id=<id>" of the current request, with "-"
// for an id that is not set.
inline std::string request_ids() {
  const ctxexec::trace_context* span = ctxexec::current_trace.try_get();
  const std::string* user = user_id.try_get();
  return "trace_id=" + (span != nullptr ? span->trace.to_string() : "-") +
         " user_id=" + (user != nullptr ? *user : "-");
}

// Writes `message` as one line to stderr, after the current request's ids.
// Safe from any thread.
inline void log_line(std::string_view message) {
  static std::mutex mutex;
  const std::lock_guard lock(mutex);
  std::cerr << request_ids() << ' ' << message << '\n';
}

#endif  // ADOPT_REQUEST_LOG_HPP
