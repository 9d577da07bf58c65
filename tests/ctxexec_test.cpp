#include <ctxexec/ctxexec.hpp>

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace {

inline ctxexec::context_var<std::string> trace_id{"trace_id", "-"};

// The README example, compiled and checked.
TEST(UmbrellaTest, ReadmeExample) {
  auto guard = trace_id.scoped_set("4bf92f35");
  ctxexec::context snapshot = ctxexec::copy_context();
  std::string seen;
  std::thread([&]() mutable {
    seen = trace_id.get();  // a new thread starts empty: the default
    snapshot.run([&] { seen += "/" + trace_id.get(); });
  }).join();
  EXPECT_EQ(seen, "-/4bf92f35");
}

}  // namespace
