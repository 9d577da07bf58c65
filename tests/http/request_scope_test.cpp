// Tests of request_scope: cleanups in reverse order, synchronous ones off
// the loop, every cleanup run even when one throws, the counters, and
// current() outside a request.

#include <ctxexec/http/request_scope.hpp>

#include "../context_fixture.hpp"
#include "http_test_util.hpp"

#include <gtest/gtest.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using ctxexec::http::request_scope;
using ctxexec_test::run_task;

class RequestScopeTest : public ctxexec_test::ContextFixture {};

/// A log written from the loop and from workers.
struct shared_log {
  std::mutex m;
  std::vector<std::string> lines;
  void add(std::string s) {
    std::lock_guard lock(m);
    lines.push_back(std::move(s));
  }
};

TEST_F(RequestScopeTest, CleanupsRunInReverseOrderSyncOnesOffTheLoop) {
  asio::io_context io;
  shared_log log;
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id sync_thread;
  ctxexec::http::request_scope_counters counters;
  run_task(io, [&]() -> awaitable<void> {
    request_scope scope({}, &counters);
    scope.defer([&]() -> awaitable<void> {
      log.add("async 1");
      co_return;
    });
    scope.defer_sync([&] {
      sync_thread = std::this_thread::get_id();
      log.add("sync 2");
    });
    scope.defer([&]() -> awaitable<void> {
      log.add("async 3");
      co_return;
    });
    EXPECT_EQ(scope.size(), 3u);
    co_await scope.close();
    EXPECT_EQ(scope.size(), 0u);
    EXPECT_TRUE(scope.closing());
  }());
  EXPECT_EQ(log.lines,
            (std::vector<std::string>{"async 3", "sync 2", "async 1"}));
  EXPECT_NE(sync_thread, loop_thread);
  EXPECT_EQ(counters.opened.load(), 1u);
  EXPECT_EQ(counters.closed.load(), 1u);
  EXPECT_EQ(counters.cleanups_registered.load(), 3u);
  EXPECT_EQ(counters.cleanups_run.load(), 3u);
  EXPECT_EQ(counters.cleanup_errors.load(), 0u);
}

TEST_F(RequestScopeTest, EveryCleanupRunsAndTheFirstErrorIsRethrown) {
  asio::io_context io;
  shared_log log;
  ctxexec::http::request_scope_counters counters;
  std::string error;
  run_task(io, [&]() -> awaitable<void> {
    request_scope scope({}, &counters);
    scope.defer_sync([&] { log.add("first registered"); });
    scope.defer_sync([&] {
      log.add("sync throws");
      throw std::runtime_error("second");
    });
    scope.defer([&]() -> awaitable<void> {
      log.add("async throws");
      throw std::runtime_error("first");
      co_return;
    });
    try {
      co_await scope.close();
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
  }());
  EXPECT_EQ(error, "first");
  EXPECT_EQ(log.lines, (std::vector<std::string>{"async throws", "sync throws",
                                                 "first registered"}));
  EXPECT_EQ(counters.cleanups_run.load(), 3u);
  EXPECT_EQ(counters.cleanup_errors.load(), 2u);
  EXPECT_EQ(counters.closed.load(), 1u);
}

TEST_F(RequestScopeTest, TryCloseClosesOnlyAnEmptyScope) {
  asio::io_context io;
  ctxexec::http::request_scope_counters counters;
  run_task(io, [&]() -> awaitable<void> {
    request_scope empty({}, &counters);
    EXPECT_TRUE(empty.try_close());
    EXPECT_TRUE(empty.closing());
    request_scope busy({}, &counters);
    busy.defer_sync([] {});
    EXPECT_FALSE(busy.try_close());  // nothing changed: close() runs it
    EXPECT_FALSE(busy.closing());
    co_await busy.close();
  }());
  EXPECT_EQ(counters.opened.load(), 2u);
  EXPECT_EQ(counters.closed.load(), 2u);
  EXPECT_EQ(counters.cleanups_run.load(), 1u);
}

TEST_F(RequestScopeTest, NoCleanupCanBeAddedOnceClosing) {
  asio::io_context io;
  run_task(io, [&]() -> awaitable<void> {
    request_scope scope;
    co_await scope.close();
    EXPECT_THROW(scope.defer_sync([] {}), std::logic_error);
  }());
}

TEST_F(RequestScopeTest, CurrentOutsideARequestThrows) {
  EXPECT_EQ(ctxexec::http::current_request_scope.try_get(), nullptr);
  EXPECT_THROW((void)request_scope::current(), std::logic_error);
}

}  // namespace
