// Tests of ctxexec::co_spawn, context_executor, bind_context and
// post/dispatch/defer on Boost.Asio: the context follows each task across
// suspensions and threads, and never leaks into other work.

#include <ctxexec/asio/co_spawn.hpp>

#include <ctxexec/asio.hpp>
#include <ctxexec/context_leak_check.hpp>
#include "../context_fixture.hpp"
#include "../run_loop.hpp"
#include "../sharing.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using ctxexec::context_var;

class CoSpawnTest : public ctxexec_test::ContextFixture {};

context_var<int> task_id("task_id", -1);

awaitable<int> set_and_hop(int id) {
  auto tok = task_id.set(id);
  co_await asio::post(use_awaitable);
  const int seen = task_id.get();
  co_return seen;
}

TEST_F(CoSpawnTest, ChildRunsInACopyTakenAtSpawn) {
  asio::io_context io;
  auto t = task_id.set(7);
  int seen_at_start = 0;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        seen_at_start = task_id.get();
        co_return;
      },
      asio::detached);
  auto t2 = task_id.set(8);  // after the spawn: invisible to the child
  task_id.reset(t2);
  task_id.reset(t);
  io.run();
  EXPECT_EQ(seen_at_start, 7);
}

TEST_F(CoSpawnTest, ChildValuesPersistAcrossSuspensionsAndStayInside) {
  asio::io_context io;
  int seen = 0;
  ctxexec::co_spawn(io, set_and_hop(3), [&](std::exception_ptr e, int v) {
    EXPECT_FALSE(e);
    seen = v;
    // The handler runs in the spawner's context.
    EXPECT_EQ(task_id.get(), -1);
  });
  asio::post(io, [] { EXPECT_EQ(task_id.get(), -1); });
  io.run();
  EXPECT_EQ(seen, 3);
  EXPECT_EQ(task_id.get(), -1);
}

// The completion handler runs in a snapshot of the spawner's context for
// every kind of completion token.
TEST_F(CoSpawnTest, CompletionRunsInTheSpawnersContextForEveryToken) {
  asio::io_context io;
  std::vector<std::string> failures;
  auto check = [&](const char* what, int expected) {
    if (task_id.get() != expected) {
      failures.push_back(std::string(what) + " saw " +
                         std::to_string(task_id.get()));
    }
  };
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto tok = task_id.set(1);
        auto ex = co_await asio::this_coro::executor;
        int r = co_await ctxexec::co_spawn(ex, set_and_hop(2), use_awaitable);
        check("use_awaitable parent", 1);
        EXPECT_EQ(r, 2);
        auto op = ctxexec::co_spawn(ex, set_and_hop(3), asio::deferred);
        r = co_await std::move(op)(use_awaitable);
        check("deferred parent", 1);
        EXPECT_EQ(r, 3);
        ctxexec::co_spawn(ex, set_and_hop(4), [&](std::exception_ptr, int v) {
          EXPECT_EQ(v, 4);
          check("callback", 1);
        });
        co_await asio::post(use_awaitable);
        check("parent after callback spawn", 1);
        task_id.reset(tok);
      },
      asio::detached);
  auto t = task_id.set(9);
  auto fut = ctxexec::co_spawn(io, set_and_hop(5), asio::use_future);
  task_id.reset(t);
  io.run();
  EXPECT_EQ(fut.get(), 5);
  EXPECT_TRUE(failures.empty()) << failures.front();
}

TEST_F(CoSpawnTest, CoAwaitOfASubroutineSharesTheTasksContext) {
  asio::io_context io;
  int seen = 0;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto sub = []() -> awaitable<void> {
          (void)task_id.set(42);  // same task: lands in the task's context
          co_await asio::post(use_awaitable);
        };
        co_await sub();
        seen = task_id.get();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(seen, 42);
}

TEST_F(CoSpawnTest,
       ExceptionAfterSuspendReachesTheHandlerInTheSpawnersContext) {
  asio::io_context io;
  std::exception_ptr caught;
  ctxexec::co_spawn(
      io,
      []() -> awaitable<void> {
        auto tok = task_id.set(5);
        co_await asio::post(use_awaitable);
        throw std::runtime_error("task failed");
      },
      [&](std::exception_ptr e) {
        caught = e;
        EXPECT_EQ(task_id.get(), -1);
      });
  io.run();
  ASSERT_TRUE(caught);
  EXPECT_THROW(std::rethrow_exception(caught), std::runtime_error);
}

TEST_F(CoSpawnTest, SpawningFromATaskDoesNotNestExecutors) {
  asio::io_context io;
  bool flat = false;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto parent_ex = co_await asio::this_coro::executor;
        co_await ctxexec::co_spawn(
            parent_ex,
            [&]() -> awaitable<void> {
              auto child_ex = co_await asio::this_coro::executor;
              // One layer, over the io_context's concrete executor.
              using ex_t =
                  ctxexec::context_executor<asio::io_context::executor_type>;
              flat = child_ex.target<ex_t>() != nullptr;
              co_return;
            },
            use_awaitable);
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(flat);
}

// Wrapped coroutine handlers (as_tuple, redirect_error) resume the awaiting
// coroutine in its own context, not in the spawner's snapshot.
TEST_F(CoSpawnTest, WrappedUseAwaitableResumesInTheTasksOwnContext) {
  asio::io_context io;
  std::vector<int> seen;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto tok = task_id.set(1);
        auto ex = co_await asio::this_coro::executor;
        auto [e, r] = co_await ctxexec::co_spawn(ex, set_and_hop(2),
                                                 asio::as_tuple(use_awaitable));
        EXPECT_FALSE(e);
        EXPECT_EQ(r, 2);
        auto t2 = task_id.set(3);  // must land in this task's context
        co_await asio::post(use_awaitable);
        seen.push_back(task_id.get());
        boost::system::error_code ec;
        co_await ctxexec::post(ex, asio::redirect_error(use_awaitable, ec));
        auto t4 = task_id.set(4);
        co_await asio::post(use_awaitable);
        seen.push_back(task_id.get());
      },
      asio::detached);
  io.run();
  EXPECT_EQ(seen, (std::vector<int>{3, 4}));
}

TEST_F(CoSpawnTest, ChannelSidesKeepTheirOwnContexts) {
  asio::io_context io;
  asio::experimental::channel<void(boost::system::error_code, int)> ch(io, 0);
  int receiver_saw = 0;
  int sender_saw = 0;
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto tok = task_id.set(100);
        int v = co_await ch.async_receive(use_awaitable);
        EXPECT_EQ(v, 5);
        receiver_saw = task_id.get();
      },
      asio::detached);
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto tok = task_id.set(200);
        co_await ch.async_send(boost::system::error_code{}, 5, use_awaitable);
        sender_saw = task_id.get();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(receiver_saw, 100);
  EXPECT_EQ(sender_saw, 200);
}

TEST_F(CoSpawnTest, TeardownOfASuspendedTaskReleasesItsContext) {
  auto payload = std::make_shared<int>(1);
  std::weak_ptr<int> watch = payload;
  context_var<std::shared_ptr<int>> holder("holder");
  {
    asio::io_context io;
    ctxexec::co_spawn(
        io,
        [&holder, p = std::move(payload)]() mutable -> awaitable<void> {
          auto tok = holder.set(std::move(p));
          // Destroyed at teardown, outside the task's context: it must not
          // end the program.
          auto guard = task_id.scoped_set(3);
          asio::steady_timer timer(co_await asio::this_coro::executor,
                                   std::chrono::hours(1));
          co_await timer.async_wait(use_awaitable);
        },
        asio::detached);
    io.poll();  // start the task: it suspends on the timer
    EXPECT_FALSE(watch.expired());
    io.stop();
  }  // destroying the io_context destroys the frame and its context
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(holder.try_get(), nullptr);
}

TEST_F(CoSpawnTest, StrandShareIsPerHandler) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  std::atomic<int> wrong{0};
  for (int i = 0; i < 20; ++i) {
    ctxexec::co_spawn(
        strand,
        [&wrong, i]() -> awaitable<void> {
          auto tok = task_id.set(i);
          for (int k = 0; k < 10; ++k) {
            co_await asio::post(use_awaitable);
            if (task_id.get() != i) ++wrong;
          }
        },
        asio::detached);
    asio::post(strand, [&] {
      if (task_id.get() != -1) ++wrong;
    });
  }
  io.run();
  EXPECT_EQ(wrong.load(), 0);
}

// The sentinel: many tasks on 4 threads sharing one io_context, half of them
// on strands, hopping through post, dispatch, timers, a thread pool, nested
// awaitables, deferred operations and loopback TCP sockets, while plain
// handlers keep re-posting themselves and check they run in the root context.
TEST_F(CoSpawnTest, SentinelNoTaskSeesAnotherTasksValues) {
  constexpr int kTasks = 200;
  constexpr int kIterations = 50;
  constexpr int kThreads = 4;
  asio::io_context io(kThreads);
  asio::thread_pool pool(2);
  std::atomic<long> wrong{0};
  std::atomic<long> leaked{0};
  std::atomic<long> checks{0};
  std::atomic<long> sentinel_runs{0};
  std::atomic<int> remaining{kTasks};

  std::function<void()> sentinel = [&] {
    ++sentinel_runs;
    if (task_id.value_or(-1) != -1) ++leaked;
    if (remaining.load() > 0) asio::post(io, sentinel);
  };
  asio::post(io, sentinel);
  asio::post(io, sentinel);

  // A connected loopback TCP pair per task, made up front.
  asio::ip::tcp::acceptor acceptor(
      io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> clients, servers;
  for (int i = 0; i < kTasks; ++i) {
    clients.push_back(std::make_unique<asio::ip::tcp::socket>(io));
    servers.push_back(std::make_unique<asio::ip::tcp::socket>(io));
    clients.back()->connect(acceptor.local_endpoint());
    acceptor.accept(*servers.back());
  }

  auto body = [&](int id) -> awaitable<void> {
    auto tok = task_id.set(id);
    auto ex = co_await asio::this_coro::executor;
    auto check = [&] {
      ++checks;
      if (task_id.get() != id) ++wrong;
    };
    asio::ip::tcp::socket& a = *clients[id];
    asio::ip::tcp::socket& b = *servers[id];
    for (int it = 0; it < kIterations; ++it) {
      switch ((id + it) % 7) {
        case 0:
          co_await asio::post(use_awaitable);
          break;
        case 1:
          co_await asio::dispatch(use_awaitable);
          break;
        case 2: {
          asio::steady_timer t(ex, std::chrono::steady_clock::duration(0));
          co_await t.async_wait(use_awaitable);
          break;
        }
        case 3:
          co_await asio::post(pool, use_awaitable);  // resumes on `ex`
          break;
        case 4:
          co_await [&]() -> awaitable<void> {
            co_await asio::post(use_awaitable);
            check();
          }();
          break;
        case 5: {
          auto op = asio::post(ex, asio::deferred);
          co_await std::move(op)(use_awaitable);
          break;
        }
        default: {
          char out = static_cast<char>(id), in = 0;
          co_await asio::async_write(a, asio::buffer(&out, 1), use_awaitable);
          co_await asio::async_read(b, asio::buffer(&in, 1), use_awaitable);
          if (in != out) ++wrong;
          break;
        }
      }
      check();
    }
  };
  for (int i = 0; i < kTasks; ++i) {
    auto done = [&](std::exception_ptr e) {
      if (e) ++wrong;
      if (task_id.value_or(-1) != -1) ++leaked;  // the spawner's: root
      --remaining;
    };
    if (i % 2 == 0) {
      ctxexec::co_spawn(asio::make_strand(io), body(i), done);
    } else {
      ctxexec::co_spawn(io, body(i), done);
    }
  }
  std::atomic<int> roots_left{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ctxexec::context_leak_check root;
      io.run();
      if (!root.intact()) ++roots_left;
      root.dismiss();
    });
  }
  for (auto& th : threads) th.join();
  pool.join();
  std::cout << "[ sentinel ] " << kTasks << " tasks x " << kIterations
            << " iterations on " << kThreads << " threads: " << checks.load()
            << " checks, " << sentinel_runs.load() << " sentinel runs, "
            << wrong.load() << " wrong, " << leaked.load() << " leaked\n";
  EXPECT_EQ(remaining.load(), 0);
  long expected_checks = 0;
  for (int id = 0; id < kTasks; ++id) {
    for (int it = 0; it < kIterations; ++it) {
      expected_checks += (id + it) % 7 == 4 ? 2 : 1;  // nested ones check too
    }
  }
  EXPECT_EQ(checks.load(), expected_checks);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(leaked.load(), 0);
  EXPECT_EQ(roots_left.load(), 0);
}

// asyncio's create_task(coro, context=ctx) runs the task in ctx itself
// (CPython's test_context_6 expects [None, 1, 2]): so does co_spawn on a
// context_executor, and what the tasks set stays in ctx.
TEST_F(CoSpawnTest, SpawningOnAContextExecutorRunsTheTaskInItsContext) {
  context_var<int> cvar("cvar");
  asio::io_context io;
  ctxexec::context ctx;
  auto ex = ctxexec::make_context_executor(io.get_executor(), ctx);
  std::vector<std::optional<int>> seen;
  auto task = [&](int value) -> awaitable<void> {
    const int* v = cvar.try_get();
    seen.push_back(v != nullptr ? std::optional<int>(*v) : std::nullopt);
    (void)cvar.set(value);
    co_await asio::post(use_awaitable);
  };
  ctxexec::co_spawn(ex, task(1), asio::detached);
  io.run();
  io.restart();
  ctxexec::co_spawn(ex, task(2), asio::detached);
  io.run();
  ctx.run([&] {
    const int* v = cvar.try_get();
    seen.push_back(v != nullptr ? std::optional<int>(*v) : std::nullopt);
  });
  EXPECT_EQ(seen, (std::vector<std::optional<int>>{std::nullopt, 1, 2}));
  EXPECT_EQ(cvar.try_get(), nullptr);  // the spawner's context: untouched
}

// Asio's own operators run both branches in the parent task's context
// object, on whichever threads resume them: the object must never be used
// by two threads at once (no data race, no freed value read), whatever the
// interleaving of the branches' sets.
TEST_F(CoSpawnTest, AsiosOwnOperatorsOnManyThreadsNeverRace) {
  constexpr int kIterations = 2000;
  constexpr int kThreads = 3;
  context_var<std::string> tag("tag");
  asio::io_context io(kThreads);
  std::atomic<long> reads{0};
  std::atomic<long> bad{0};
  auto check = [&] {
    ++reads;
    const std::string* v = tag.try_get();
    if (v == nullptr ||
        !ctxexec_test::is_flow_value(*v, {"a", "b", "parent"}, kIterations)) {
      ++bad;
    }
  };
  auto branch = [&](std::string name) -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < kIterations; ++i) {
      auto guard = tag.scoped_set(ctxexec_test::flow_value(name, i));
      co_await asio::post(ex, use_awaitable);
      check();
    }
  };
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        auto guard = tag.scoped_set(ctxexec_test::flow_value("parent", 0));
        co_await (branch("a") && branch("b"));
        check();
      },
      asio::detached);
  ctxexec_test::run_on_threads(io, kThreads);
  EXPECT_EQ(reads.load(), 2 * kIterations + 1);
  EXPECT_EQ(bad.load(), 0);
}

// A task's own context object, run by another thread with context::run()
// while the task keeps setting, hopping and reading on the loop: run()
// either gets the object between the task's steps or fails with
// context_error; it never shares it with the running task.
TEST_F(CoSpawnTest, RunningATasksContextElsewhereNeverRaces) {
  constexpr int kIterations = 3000;
  context_var<std::string> tag("tag");
  asio::io_context io(1);
  std::mutex mutex;
  std::optional<ctxexec::context> published;  // the task's own object
  std::atomic<bool> task_done{false};
  std::atomic<long> bad{0};
  std::atomic<long> lost{0};
  ctxexec::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        using io_ex = asio::io_context::executor_type;
        {
          std::lock_guard<std::mutex> lock(mutex);
          published.emplace(
              ex.target<ctxexec::context_executor<io_ex>>()->get_context());
        }
        for (int i = 0; i < kIterations; ++i) {
          auto guard = tag.scoped_set(ctxexec_test::flow_value("task", i));
          co_await asio::post(ex, use_awaitable);
          if (*tag.try_get() != ctxexec_test::flow_value("task", i)) ++lost;
        }
        task_done = true;
      },
      asio::detached);
  long entered = 0;
  long refused = 0;
  std::thread runner([&] {
    for (int i = 0; !task_done.load(); ++i) {
      std::optional<ctxexec::context> ctx;
      {
        std::lock_guard<std::mutex> lock(mutex);
        ctx = published;
      }
      if (!ctx) continue;
      try {
        ctx->run([&] {
          const std::string* before = tag.try_get();
          if (before != nullptr &&
              !ctxexec_test::is_flow_value(*before, {"task"}, kIterations)) {
            ++bad;
          }
          auto guard = tag.scoped_set(ctxexec_test::flow_value("runner", i));
        });
        ++entered;
      } catch (const ctxexec::context_error&) {
        ++refused;
      }
    }
  });
  io.run();
  runner.join();
  std::cout << "[ run() ] entered " << entered << ", refused " << refused
            << "\n";
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(lost.load(), 0);
}

}  // namespace
