// Tests of ctxexec::loop_monitor: a blocked handler is reported while it
// still blocks, once, with its context; a busy healthy loop is never
// reported; starting and stopping under load is race-free; nothing is
// reported after stop() and no context is kept.

#include <ctxexec/asio/loop_monitor.hpp>

#include <ctxexec/asio/co_spawn.hpp>
#include "../context_fixture.hpp"
#include "../run_loop.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

class LoopMonitorTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<std::string> trace_id("trace_id");

struct recorded {
  ctxexec::handler_report::kind what;
  std::uint64_t handler;
  std::chrono::steady_clock::duration duration;
  std::string trace;
  bool while_blocked;
};

/// Collects reports from the watchdog thread.
class report_log {
 public:
  ctxexec::loop_monitor::callback callback(const std::atomic<bool>* blocking) {
    return [this, blocking](const ctxexec::handler_report& r) {
      const auto t = r.context.find(trace_id);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        reports_.push_back({r.what, r.handler, r.duration,
                            t != nullptr ? *t : std::string("<none>"),
                            blocking != nullptr && blocking->load()});
      }
      arrived_.notify_all();
    };
  }
  std::vector<recorded> reports() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reports_;
  }
  /// Waits (at most 5 s) until `n` reports arrived; returns whether they did.
  bool wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return arrived_.wait_for(lock, 5s, [&] { return reports_.size() >= n; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<recorded> reports_;
};

TEST_F(LoopMonitorTest, ABlockedHandlerIsReportedOnceWhileItBlocks) {
  asio::io_context io(2);
  report_log log;
  std::atomic<bool> blocking{false};
  ctxexec::loop_monitor monitor(io, {}, log.callback(&blocking));
  {
    auto g = trace_id.scoped_set("4bf92f3577b34da6a3ce929d0e0e4736");
    ctxexec::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await asio::post(use_awaitable);
          blocking = true;
          std::this_thread::sleep_for(300ms);  // the seed's mistake
          blocking = false;
        },
        asio::detached);
  }
  ctxexec_test::run_on_threads(io, 2);
  // The returned report follows within an interval of the return.
  EXPECT_TRUE(log.wait_for(2));
  monitor.stop();
  const auto reports = log.reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].what, ctxexec::handler_report::blocked);
  EXPECT_TRUE(reports[0].while_blocked);
  EXPECT_GE(reports[0].duration, 100ms);
  EXPECT_LT(reports[0].duration, 250ms);
  EXPECT_EQ(reports[0].trace, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(reports[1].what, ctxexec::handler_report::returned);
  EXPECT_EQ(reports[1].handler, reports[0].handler);
  EXPECT_GE(reports[1].duration, 290ms);
  EXPECT_EQ(monitor.statistics().blocked_handlers, 1u);
}

TEST_F(LoopMonitorTest, ABusyHealthyLoopIsNeverReported) {
  asio::io_context io(2);
  report_log log;
  // A threshold well above any preemption of a loaded 2-core machine: a
  // report here means a handler was taken for blocked when it was not.
  ctxexec::loop_monitor monitor(io, {.blocked_threshold = 500ms},
                                log.callback(nullptr));
  const auto until = std::chrono::steady_clock::now() + 3s;
  std::atomic<long> handlers{0};
  for (int t = 0; t < 8; ++t) {
    ctxexec::co_spawn(
        io,
        [&]() -> awaitable<void> {
          auto g = trace_id.scoped_set("busy");
          while (std::chrono::steady_clock::now() < until) {
            co_await asio::post(use_awaitable);  // short handlers, many
            ++handlers;
          }
        },
        asio::detached);
  }
  ctxexec_test::run_on_threads(io, 2);
  monitor.stop();
  EXPECT_GT(handlers.load(), 1000);
  const auto reports = log.reports();
  EXPECT_TRUE(reports.empty())
      << reports.size() << " reports; the first after "
      << std::chrono::duration_cast<std::chrono::milliseconds>(
             reports.front().duration)
             .count()
      << " ms";
  const ctxexec::loop_statistics stats = monitor.statistics();
  EXPECT_GT(stats.overall.samples, 10u);
  EXPECT_LE(stats.overall.p50, stats.overall.max);
  std::ostringstream printed;
  printed << stats;
  EXPECT_NE(printed.str().find("loop lag: samples="), std::string::npos);
}

TEST_F(LoopMonitorTest, StartingAndStoppingUnderLoadIsRaceFree) {
  asio::io_context io(2);
  std::atomic<bool> done{false};
  for (int t = 0; t < 4; ++t) {
    ctxexec::co_spawn(
        io,
        [&]() -> awaitable<void> {
          auto g = trace_id.scoped_set("load");
          while (!done.load()) co_await asio::post(use_awaitable);
        },
        asio::detached);
  }
  std::thread loop_a([&] { io.run(); });
  std::thread loop_b([&] { io.run(); });
  for (int i = 0; i < 40; ++i) {
    ctxexec::loop_monitor monitor(io, {.interval = 1ms});
    (void)monitor.statistics();
  }
  done = true;
  loop_a.join();
  loop_b.join();
}

TEST_F(LoopMonitorTest, NothingIsReportedAfterStopAndNoContextIsKept) {
  asio::io_context io(1);
  report_log log;
  ctxexec::context_var<std::shared_ptr<int>> payload("payload");
  auto value = std::make_shared<int>(1);
  std::weak_ptr<int> watch = value;
  ctxexec::loop_monitor monitor(io, {}, log.callback(nullptr));
  {
    auto g = payload.scoped_set(std::move(value));
    ctxexec::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await asio::post(use_awaitable);
          std::this_thread::sleep_for(150ms);  // reported: its context held
        },
        asio::detached);
  }
  io.run();
  EXPECT_TRUE(log.wait_for(2));
  monitor.stop();
  EXPECT_EQ(log.reports().size(), 2u);
  EXPECT_TRUE(watch.expired());  // the snapshot went with the report
  // After stop(): a blocked handler is not reported.
  io.restart();
  ctxexec::co_spawn(
      io,
      []() -> awaitable<void> {
        std::this_thread::sleep_for(150ms);
        co_return;
      },
      asio::detached);
  io.run();
  EXPECT_EQ(log.reports().size(), 2u);
}

}  // namespace
