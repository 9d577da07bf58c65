// The core's umbrella header on its own: everything a server that is not
// on Asio needs, with the standard library only.

#include <ctxexec/core.hpp>

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace {

inline ctxexec::context_var<std::string> tenant{"tenant", "-"};

TEST(CoreTest, UmbrellaBringsTheWholeCore) {
  ctxexec::context_leak_check check;
  {
    auto guard = tenant.scoped_set("acme");
    ctxexec::context snapshot = ctxexec::copy_context();
    std::string seen;
    std::thread([&] {
      seen = snapshot.run([] { return tenant.get(); });
    }).join();
    EXPECT_EQ(seen, "acme");
    EXPECT_THROW((void)ctxexec::context_var<int>("no_default").get(),
                 ctxexec::lookup_error);
  }
  EXPECT_TRUE(check.intact());
}

TEST(CoreTest, UmbrellaBringsThePropagationHeaders) {
  ctxexec::context_leak_check check;
  {
    auto span =
        ctxexec::current_trace.scoped_set(ctxexec::trace_context::start());
    auto bag = ctxexec::current_baggage.scoped_set(
        ctxexec::baggage::parse("k=v").value);
    EXPECT_FALSE(ctxexec::make_child_span().is_root());
    EXPECT_EQ(ctxexec::current_baggage.get().get("k"), "v");
  }
  EXPECT_TRUE(check.intact());
}

}  // namespace
