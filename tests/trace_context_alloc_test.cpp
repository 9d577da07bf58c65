// No allocation on the hot path of Trace Context: parsing a valid
// traceparent, continuing its trace, making child spans and formatting
// their headers into a caller's buffer. Its own binary, because it replaces
// the global operator new to count allocations.

#include <ctxexec/trace_context.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string_view>

namespace {

thread_local long allocations = 0;

}  // namespace

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using ctxexec::trace_context;
using ctxexec::traceparent;

constexpr std::string_view header =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContextAllocTest, TheCounterCounts) {
  const long before = allocations;
  int* volatile p = new int(1);  // volatile: the allocation is not elided
  delete p;
  EXPECT_EQ(allocations, before + 1);
}

TEST(TraceContextAllocTest, ParsingATraceparentAllocatesNothing) {
  const std::string_view fields[] = {header};
  const long before = allocations;
  auto a = traceparent::parse(header);
  auto b = traceparent::parse(
      "\t cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future ");
  auto c = traceparent::parse(std::span<const std::string_view>(fields));
  auto invalid = traceparent::parse(
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  char buf[traceparent::size];
  a->format_to(buf);
  EXPECT_EQ(allocations, before);
  EXPECT_TRUE(a && b && c && !invalid);
  EXPECT_EQ(std::string_view(buf, sizeof buf), header);
}

TEST(TraceContextAllocTest,
     ContinuingATraceAndMakingChildSpansAllocatesNothing) {
  (void)ctxexec::span_id::random();  // seeds this thread's generator
  const long before = allocations;
  const trace_context server = trace_context::from_request(header);
  const trace_context call = server.child();
  char buf[traceparent::size];
  call.to_traceparent().format_to(buf);
  server.to_traceresponse().format_to(buf);
  const trace_context fresh = trace_context::start();
  EXPECT_EQ(allocations, before);
  EXPECT_EQ(call.trace, server.trace);
  EXPECT_TRUE(fresh.is_root());
}

}  // namespace
