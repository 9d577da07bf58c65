// Allocation failure injected at each allocation of run_sync_with_context
// (the n-th operator new on this thread throws std::bad_alloc): no token is
// ever leaked, the handler is called or the initiating call throws, and
// nothing escapes io_context::run(). Also: a context_executor over a strand
// reports std::bad_alloc instead of terminating. Its own binary, because it
// replaces operator new (so not under TSan, whose runtime defines it).

#include <ctxexec/threads/run_sync.hpp>

#include <ctxexec/asio/context_executor.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <cstdlib>
#include <exception>
#include <new>

namespace {
thread_local long fail_countdown = 0;  // 0: disarmed
}  // namespace

void* operator new(std::size_t n) {
  if (fail_countdown > 0 && --fail_countdown == 0) throw std::bad_alloc();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace asio = boost::asio;

TEST(RunSyncAllocFailureTest, InitiationNeverLeaksATokenOrAHandler) {
  int failures_injected = 0;
  for (int n = 1; n < 500; ++n) {
    asio::io_context io;
    ctxexec::capacity_limiter limiter(io, 4);
    bool called = false;
    bool threw = false;
    fail_countdown = n;
    try {
      ctxexec::run_sync_with_context(
          limiter, [] { return 1; },
          asio::bind_executor(io,
                              [&](std::exception_ptr, int) { called = true; }));
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    const bool fired = fail_countdown == 0;
    fail_countdown = 0;
    io.run();
    if (!fired) break;  // past the last allocation
    ++failures_injected;
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u) << "allocation #" << n;
    EXPECT_TRUE(threw || called) << "allocation #" << n << ": handler lost";
  }
  EXPECT_GT(failures_injected, 3);
}

TEST(RunSyncAllocFailureTest, AQueuedCallNeverLeaksATokenOrEscapesRun) {
  int failures_injected = 0;
  for (int n = 1; n < 500; ++n) {
    asio::io_context io;
    ctxexec::capacity_limiter limiter(io, 1);
    ASSERT_TRUE(limiter.try_acquire());
    asio::cancellation_signal cancel;
    bool called = false;
    ctxexec::run_sync_with_context(
        ctxexec::run_sync_options{.limiter = &limiter,
                                  .abandon_on_cancel = true},
        [] { return 1; },
        asio::bind_cancellation_slot(
            cancel.slot(),
            asio::bind_executor(
                io, [&](std::exception_ptr, int) { called = true; })));
    limiter.release();  // grants the queued call: it continues on the loop
    bool escaped = false;
    fail_countdown = n;
    try {
      io.run();
    } catch (const std::bad_alloc&) {
      escaped = true;
    }
    const bool fired = fail_countdown == 0;
    fail_countdown = 0;
    io.restart();
    io.run();
    if (!fired) break;
    ++failures_injected;
    EXPECT_FALSE(escaped) << "allocation #" << n;
    EXPECT_TRUE(called) << "allocation #" << n;
    EXPECT_EQ(limiter.statistics().borrowed_tokens, 0u) << "allocation #" << n;
  }
  EXPECT_GT(failures_injected, 0);
}

TEST(RunSyncAllocFailureTest, StrandContextExecutorReportsBadAlloc) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  ctxexec::context ctx;
  for (long n = 1; n <= 2; ++n) {  // the binding, then its strand copy
    fail_countdown = n;
    EXPECT_THROW((void)ctxexec::make_context_executor(strand, ctx),
                 std::bad_alloc);
    fail_countdown = 0;
  }
}

}  // namespace
