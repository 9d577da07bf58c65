// Tests of ctxexec::from_thread: a round trip from a worker to the event
// loop and back, context copies, the event-loop-thread check, and a loop
// destroyed while a worker waits for it.

#include <ctxexec/threads/from_thread.hpp>

#include <ctxexec/asio/co_spawn.hpp>
#include <ctxexec/threads/run_sync.hpp>
#include "context_fixture.hpp"
#include "run_loop.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

ctxexec::context_var<int> ft_var("ft_var", -1);

class FromThreadTest : public ctxexec_test::ContextFixture {};

TEST_F(FromThreadTest, RoundTripFromAWorkerRunsOnTheLoopInACopy) {
  asio::io_context io;
  auto ex = io.get_executor();
  std::thread::id loop_thread;
  struct report {
    int sync_seen, async_seen, worker_after;
    std::thread::id sync_thread;
  };
  report r{};
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        loop_thread = std::this_thread::get_id();
        auto guard = ft_var.scoped_set(5);
        r = co_await ctxexec::run_sync_with_context(
            [&] {
              (void)ft_var.set(6);  // the worker's copy
              report out{};
              out.sync_seen = ctxexec::from_thread::run_sync(ex, [] {
                const int seen = ft_var.get();
                (void)ft_var.set(99);  // the loop-side copy only
                return seen;
              });
              out.sync_thread = ctxexec::from_thread::run_sync(
                  ex, [] { return std::this_thread::get_id(); });
              out.async_seen =
                  ctxexec::from_thread::run(ex, []() -> awaitable<int> {
                    co_await asio::post(use_awaitable);
                    co_return ft_var.get();
                  });
              out.worker_after = ft_var.get();
              return out;
            },
            use_awaitable);
        EXPECT_EQ(ft_var.get(), 5);
      },
      asio::detached);
  io.run();
  EXPECT_EQ(r.sync_seen, 6);  // a copy of the worker's context
  EXPECT_EQ(r.async_seen, 6);
  EXPECT_EQ(r.worker_after, 6);  // the loop's write did not flow back
  EXPECT_EQ(r.sync_thread, loop_thread);
}

// The library's own per-call state (the token a run_sync function holds,
// the tasks it started) rides in the context where the user's values do,
// but never shows: not in size(), not in iteration or printing, on the
// worker or on the loop through from_thread. Python's len(ctx) counts only
// user variables.
TEST_F(FromThreadTest, LibraryStateIsInvisibleInTheContext) {
  asio::io_context io;
  auto ex = io.get_executor();
  struct view {
    std::size_t size;
    std::string printed;
  };
  auto look = [] {
    const ctxexec::context ctx = ctxexec::copy_context();
    std::ostringstream os;
    os << ctx;
    return view{ctx.size(), os.str()};
  };
  view on_worker{}, on_loop{}, in_task{};
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto guard = ft_var.scoped_set(5);  // the user's one variable
        co_await ctxexec::run_sync_with_context(
            [&] {
              on_worker = look();
              on_loop = ctxexec::from_thread::run_sync(ex, look);
              in_task = ctxexec::from_thread::run(
                  ex, [&]() -> awaitable<view> { co_return look(); });
            },
            use_awaitable);
      },
      asio::detached);
  io.run();
  for (const view& v : {on_worker, on_loop, in_task}) {
    EXPECT_EQ(v.size, 1u);
    EXPECT_EQ(v.printed, "{ft_var=5}");
  }
}

TEST_F(FromThreadTest, ExceptionsAndVoidResults) {
  asio::io_context io;
  auto ex = io.get_executor();
  bool ran = false;
  bool threw_sync = false;
  bool threw_async = false;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ctxexec::run_sync_with_context(
            [&] {
              ctxexec::from_thread::run_sync(ex, [&] { ran = true; });
              try {
                ctxexec::from_thread::run_sync(
                    ex, [] { throw std::runtime_error("sync"); });
              } catch (const std::runtime_error&) {
                threw_sync = true;
              }
              try {
                ctxexec::from_thread::run(ex, []() -> awaitable<void> {
                  throw std::logic_error("async");
                  co_return;
                });
              } catch (const std::logic_error&) {
                threw_async = true;
              }
            },
            use_awaitable);
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(threw_sync);
  EXPECT_TRUE(threw_async);
}

TEST_F(FromThreadTest, CallingFromTheLoopThreadIsAnErrorNotADeadlock) {
  asio::io_context io;
  auto ex = io.get_executor();
  int errors = 0;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        try {
          ctxexec::from_thread::run_sync(ex, [] { return 1; });
        } catch (const ctxexec::wrong_thread_error&) {
          ++errors;
        }
        // Through the coroutine's own executor (an any_io_executor holding
        // a context_executor) and a strand of the loop as well.
        auto own = co_await asio::this_coro::executor;
        try {
          ctxexec::from_thread::run(own,
                                    []() -> awaitable<void> { co_return; });
        } catch (const ctxexec::wrong_thread_error&) {
          ++errors;
        }
        co_return;
      },
      asio::detached);
  auto strand = asio::make_strand(io);
  asio::post(strand, [&] {
    try {
      ctxexec::from_thread::run_sync(strand, [] {});
    } catch (const ctxexec::wrong_thread_error&) {
      ++errors;
    }
  });
  // Outside the strand, but on the thread that would have to run it.
  asio::post(io, [&] {
    try {
      ctxexec::from_thread::run_sync(strand, [] {});
    } catch (const ctxexec::wrong_thread_error&) {
      ++errors;
    }
  });
  io.run();
  EXPECT_EQ(errors, 4);
}

TEST_F(FromThreadTest, AnyOtherThreadMayCallIt) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  auto guard = ft_var.scoped_set(12);
  EXPECT_EQ(ctxexec::from_thread::run_sync(io.get_executor(),
                                           [] { return ft_var.get(); }),
            12);
  work.reset();
  loop.join();
}

TEST_F(FromThreadTest, LoopDestroyedWhileAWorkerWaitsIsAnError) {
  auto io = std::make_unique<asio::io_context>();
  std::latch task_started(1);
  auto waiter = std::async(std::launch::async, [&, ex = io->get_executor()] {
    try {
      ctxexec::from_thread::run(ex, [&]() -> awaitable<void> {
        task_started.count_down();
        asio::steady_timer t(co_await asio::this_coro::executor,
                             std::chrono::hours(1));
        co_await t.async_wait(use_awaitable);
      });
      return false;
    } catch (const ctxexec::shutdown_error&) {
      return true;
    }
  });
  ctxexec_test::run_until_then_stop(*io, task_started);
  io.reset();  // the waiting task is destroyed with the loop
  EXPECT_TRUE(waiter.get());
}

}  // namespace

namespace {

// A worker calls from_thread while its loop is being destroyed: the loop's
// watch wakes it with shutdown_error (or refuses it), so the pool can be
// drained instead of waiting for a loop that will never run again.
TEST_F(FromThreadTest, CallDuringTheLoopsDestructionFailsInsteadOfHanging) {
  auto io = std::make_unique<asio::io_context>();
  auto ex = io->get_executor();
  std::latch started(1);
  std::promise<void> gate;
  std::shared_future<void> gate_open = gate.get_future().share();
  std::atomic<int> shutdown_errors{0};
  ctxexec::co_spawn(
      *io,
      [&]() -> awaitable<void> {
        co_await ctxexec::run_sync_with_context(
            [&] {
              started.count_down();
              gate_open.wait();
              try {
                ctxexec::from_thread::run_sync(ex, [] {});  // loop stopped
              } catch (const ctxexec::shutdown_error&) {
                ++shutdown_errors;
              }
            },
            use_awaitable);
      },
      asio::detached);
  ctxexec_test::run_until_then_stop(*io, started);
  // Open the gate before or during the destruction: the call either waits
  // and is woken when the loop's service shuts down, or is refused.
  auto destroyed = std::async(std::launch::async, [&] { io.reset(); });
  gate.set_value();
  destroyed.get();
  EXPECT_EQ(shutdown_errors.load(), 1);
}

// A handler on the loop shuts the pool down while a worker waits in
// from_thread for that same loop: the worker's call fails, the pool joins,
// nothing deadlocks.
TEST_F(FromThreadTest, PoolShutdownFromTheLoopWakesWaitingWorkers) {
  asio::io_context io;
  auto ex = io.get_executor();
  ctxexec::blocking_pool pool;
  std::latch waiting(1);
  std::atomic<int> shutdown_errors{0};
  ctxexec::run_sync_options options{.pool = &pool};
  // Queued first, so that it runs before anything the worker queues: else
  // the loop could serve the worker's call before it blocks in shutdown().
  asio::post(io, [&] {
    waiting.wait();   // the worker is about to call from_thread
    pool.shutdown();  // "graceful shutdown" from a handler on the loop
  });
  ctxexec::run_sync_with_context(
      options,
      [&] {
        waiting.count_down();
        try {
          // Waits for the loop, which is blocked in shutdown() above (or
          // already past it: then the call is refused).
          ctxexec::from_thread::run_sync(ex, [] {});
        } catch (const ctxexec::shutdown_error&) {
          ++shutdown_errors;
        }
      },
      asio::bind_executor(io, [](std::exception_ptr) {}));
  io.run();
  EXPECT_EQ(shutdown_errors.load(), 1);
  EXPECT_EQ(pool.statistics().threads, 0u);
}

// Turns a missed cancellation into a failure instead of a hang: a task
// that should be cancelled waits at most this long.
constexpr auto kBound = std::chrono::seconds(20);

/// What a from_thread::run call saw: "aborted" when its task was
/// cancelled, "completed" when it ran to its end.
template <class F>
std::string outcome_of(F&& call) {
  try {
    call();
    return "completed";
  } catch (const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted ? "aborted" : e.what();
  }
}

/// A task for from_thread::run that waits (for kBound) until cancelled;
/// `on_start` runs first, on the loop.
template <class F>
auto waits_until_cancelled(F on_start) {
  return [on_start]() -> awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, kBound);
    on_start();
    co_await timer.async_wait(use_awaitable);
  };
}

// anyio: a task started by from_thread.run lives in the host task's
// cancel scope. Without abandon_on_cancel the host still waits for its
// function, whose from_thread::run task is cancelled.
TEST_F(FromThreadTest, CancellingTheHostCancelsItsFromThreadTask) {
  asio::io_context io;
  auto ex = io.get_executor();
  asio::cancellation_signal cancel;
  std::string seen;
  bool host_done = false;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        seen = co_await ctxexec::run_sync_with_context(
            [&] {
              return outcome_of([&] {
                ctxexec::from_thread::run(
                    ex, waits_until_cancelled([&] {
                      // The host is cancelled while
                      // this task runs.
                      asio::post(ex, [&] {
                        cancel.emit(asio::cancellation_type::terminal);
                      });
                    }));
              });
            },
            use_awaitable);
      },
      asio::bind_cancellation_slot(
          cancel.slot(), [&](std::exception_ptr) { host_done = true; }));
  io.run();
  EXPECT_EQ(seen, "aborted");
  EXPECT_TRUE(host_done);
}

// With abandon_on_cancel the host resumes at once; the tasks its function
// started through from_thread::run are cancelled too, and so is one it
// starts afterwards (it begins cancelled).
TEST_F(FromThreadTest, AnAbandonedHostCancelsItsFromThreadTasksToo) {
  asio::io_context io;
  auto ex = io.get_executor();
  asio::cancellation_signal cancel;
  std::string first;
  std::string later;
  std::exception_ptr host_error;
  std::atomic<bool> finished{false};
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ctxexec::run_sync_with_context(
            {.abandon_on_cancel = true},
            [&] {
              first = outcome_of([&] {
                ctxexec::from_thread::run(
                    ex, waits_until_cancelled([&] {
                      asio::post(ex, [&] {
                        cancel.emit(asio::cancellation_type::terminal);
                      });
                    }));
              });
              later = outcome_of([&] {
                ctxexec::from_thread::run(ex, waits_until_cancelled([] {}));
              });
              finished = true;
            },
            use_awaitable);
      },
      asio::bind_cancellation_slot(
          cancel.slot(), [&](std::exception_ptr e) { host_error = e; }));
  io.run();  // returns once the abandoned function has finished
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(first, "aborted");
  EXPECT_EQ(later, "aborted");
  ASSERT_TRUE(host_error);
  try {
    std::rethrow_exception(host_error);
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
}

}  // namespace

namespace {

// Partial and total cancellation promise no side effects, which a running
// function has had: they are not forwarded to its from_thread::run tasks.
TEST_F(FromThreadTest, PartialAndTotalCancellationAreNotForwarded) {
  asio::io_context io;
  auto ex = io.get_executor();
  asio::cancellation_signal cancel;
  asio::cancellation_type seen_by_task = asio::cancellation_type::terminal;
  bool done = false;
  ctxexec::run_sync_with_context(
      [&] {
        ctxexec::from_thread::run(ex, [&]() -> awaitable<void> {
          asio::steady_timer timer(ex, kBound);
          asio::post(ex, [&] {
            cancel.emit(asio::cancellation_type::total);
            cancel.emit(asio::cancellation_type::partial);
            // Two rounds later, after anything forwarded has arrived, the
            // task is released another way.
            asio::post(ex, [&] { asio::post(ex, [&] { timer.cancel(); }); });
          });
          (void)co_await timer.async_wait(asio::as_tuple(use_awaitable));
          seen_by_task =
              (co_await asio::this_coro::cancellation_state).cancelled();
        });
      },
      asio::bind_cancellation_slot(
          cancel.slot(),
          asio::bind_executor(io, [&](std::exception_ptr) { done = true; })));
  io.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(seen_by_task, asio::cancellation_type::none);
}

// A run_sync function waits in from_thread::run for a task of a loop that
// is destroyed meanwhile: the call fails with shutdown_error, and the
// task's cancellation signal, which the call owns, is never used after it
// is freed (ASan), whichever of the two goes first.
TEST_F(FromThreadTest, LoopDestroyedUnderAFromThreadTaskOfAWorkerIsSafe) {
  auto io = std::make_unique<asio::io_context>();
  auto ex = io->get_executor();
  std::latch task_started(1);
  std::atomic<int> shutdown_errors{0};
  ctxexec::co_spawn(
      *io,
      [&]() -> awaitable<void> {
        co_await ctxexec::run_sync_with_context(
            [&] {
              try {
                ctxexec::from_thread::run(ex, waits_until_cancelled([&] {
                                            task_started.count_down();
                                          }));
              } catch (const ctxexec::shutdown_error&) {
                ++shutdown_errors;
              }
            },
            use_awaitable);
      },
      asio::detached);
  ctxexec_test::run_until_then_stop(*io, task_started);
  io.reset();  // the task is destroyed with the loop
  EXPECT_EQ(shutdown_errors.load(), 1);
}

}  // namespace
