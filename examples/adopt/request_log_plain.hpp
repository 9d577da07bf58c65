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

#include <iostream>
#include <mutex>
#include <string_view>

// Writes `message` as one line to stderr. Safe from any thread.
inline void log_line(std::string_view message) {
  static std::mutex mutex;
  const std::lock_guard lock(mutex);
  std::cerr << message << '\n';
}

#endif  // ADOPT_REQUEST_LOG_HPP
