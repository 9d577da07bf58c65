// Zero heap allocations per hop: a counting operator new around the hops of
// a warmed-up task. Its own binary, because it replaces operator new.

#include <ctxexec/asio.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace asio = boost::asio;

ctxexec::context_var<int> id("id");

template <class Spawn>
long allocations_per_1000_hops(Spawn spawn) {
  asio::io_context io(1);
  long during = -1;
  spawn(io, [&]() -> asio::awaitable<void> {
    auto tok = id.set(1);
    for (int i = 0; i < 100; ++i) co_await asio::post(asio::use_awaitable);
    const long before = allocations.load();
    for (int i = 0; i < 1000; ++i) co_await asio::post(asio::use_awaitable);
    during = allocations.load() - before;
    EXPECT_EQ(id.get(), 1);
  });
  io.run();
  return during;
}

TEST(AllocationTest, NoHeapAllocationPerHop) {
  const long plain = allocations_per_1000_hops(
      [](auto& io, auto task) { asio::co_spawn(io, task, asio::detached); });
  const long ours = allocations_per_1000_hops(
      [](auto& io, auto task) { ctxexec::co_spawn(io, task, asio::detached); });
  EXPECT_EQ(plain, 0) << "plain Asio allocates per hop here";
  EXPECT_EQ(ours, 0);
}

TEST(AllocationTest, NoHeapAllocationPerHopOnAStrand) {
  const long plain = allocations_per_1000_hops([](auto& io, auto task) {
    asio::co_spawn(asio::make_strand(io), task, asio::detached);
  });
  const long ours = allocations_per_1000_hops([](auto& io, auto task) {
    ctxexec::co_spawn(asio::make_strand(io), task, asio::detached);
  });
  EXPECT_EQ(plain, 0) << "plain Asio allocates per hop here";
  EXPECT_EQ(ours, 0);
  static_assert(sizeof(ctxexec::context_executor<
                       asio::strand<asio::io_context::executor_type>>) <=
                    sizeof(void*) * 3,
                "must fit any_io_executor's small buffer");
}

// A child spawned on the parent's own executor (an any_io_executor holding
// the parent's adaptor) runs on the concrete strand under it, not on a
// type-erased adaptor too large for the small buffer.
TEST(AllocationTest, NoHeapAllocationPerHopInAChildOfAStrandTask) {
  const long ours = allocations_per_1000_hops([](auto& io, auto task) {
    ctxexec::co_spawn(
        asio::make_strand(io),
        [task]() -> asio::awaitable<void> {
          co_await ctxexec::co_spawn(co_await asio::this_coro::executor, task,
                                     asio::use_awaitable);
        },
        asio::detached);
  });
  EXPECT_EQ(ours, 0);
}

// With BOOST_ASIO_DISABLE_STD_ALIGNED_ALLOC and _BOOST_ALIGN (set for this
// binary) Asio's
// own memory, coroutine frames included, goes through operator new.
TEST(AllocationTest, TheCounterSeesAsiosOwnAllocations) {
  asio::io_context io;
  int done = 0;
  const long before = allocations.load();
  for (int i = 0; i < 100; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await asio::post(asio::use_awaitable);
          ++done;
        },
        asio::detached);
  }
  const long counted = allocations.load() - before;
  io.run();
  EXPECT_EQ(done, 100);
  EXPECT_GE(counted, 100) << "100 live coroutine frames";
}

TEST(AllocationTest, TheCounterCounts) {
  const long before = allocations.load();
  // A direct call: unlike a new-expression, the optimizer may not elide it.
  ::operator delete(::operator new(16));
  EXPECT_EQ(allocations.load() - before, 1);
}

}  // namespace
