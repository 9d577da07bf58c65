// tests/run_loop.hpp: runs an io_context on its own thread until a latch
// is released, then stops it and joins the thread: the loop is then idle
// and may be destroyed with work still in flight.

#ifndef CTXEXEC_TESTS_RUN_LOOP_HPP
#define CTXEXEC_TESTS_RUN_LOOP_HPP

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <latch>
#include <thread>

namespace ctxexec_test {

inline void run_until_then_stop(boost::asio::io_context& io,
                                std::latch& released) {
  auto work = boost::asio::make_work_guard(io);  // run() waits for the latch
  std::thread loop([&] { io.run(); });
  released.wait();
  io.stop();
  loop.join();
}

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_RUN_LOOP_HPP
