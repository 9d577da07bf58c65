// tests/run_loop.hpp: helpers that run an io_context on threads of their
// own: until a latch is released (the loop is then stopped, idle, and may
// be destroyed with work still in flight), or until it runs out of work.

#ifndef CTXEXEC_TESTS_RUN_LOOP_HPP
#define CTXEXEC_TESTS_RUN_LOOP_HPP

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <latch>
#include <thread>
#include <vector>

namespace ctxexec_test {

inline void run_until_then_stop(boost::asio::io_context& io,
                                std::latch& released) {
  auto work = boost::asio::make_work_guard(io);  // run() waits for the latch
  std::thread loop([&] { io.run(); });
  released.wait();
  io.stop();
  loop.join();
}

/// Runs `io` on `threads` threads until it runs out of work, then joins
/// them.
inline void run_on_threads(boost::asio::io_context& io, int threads) {
  std::vector<std::thread> runners;
  for (int t = 0; t < threads; ++t) runners.emplace_back([&] { io.run(); });
  for (auto& r : runners) r.join();
}

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_RUN_LOOP_HPP
