// Tests of the spdlog integration: the flag prints the chosen context
// variables of the logging thread's current context, `-` for a variable
// without a value, and nothing else the context holds.

#include <ctxexec/spdlog/context_flag.hpp>

#include <ctxexec/context.hpp>
#include <ctxexec/trace_context.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <sstream>
#include <string>
#include <thread>

namespace {

using ctxexec::logging::field;

class ContextFlagTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<std::string> user_id("user_id");
ctxexec::context_var<int> tenant("tenant", 7);
ctxexec::context_var<std::string> secret("secret");

struct capture {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  capture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_formatter(ctxexec::logging::make_formatter(
        "[%*] %v", {field::trace_id(), field::span_id("span"),
                    field::of("user", user_id), field::of("tenant", tenant)}));
  }
  std::string line() {
    std::string s = out.str();
    out.str("");
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
};

TEST_F(ContextFlagTest, PrintsTheChosenVariablesOfTheCurrentContext) {
  capture c;
  ctxexec::context request;
  const auto span = ctxexec::trace_context::start();
  request.run([&] {
    (void)ctxexec::current_trace.set(span);
    (void)user_id.set("alice");
    (void)secret.set("hunter2");
    c.logger->info("charged");
  });
  EXPECT_EQ(c.line(), "[trace_id=" + span.trace.to_string() +
                          " span=" + span.span.to_string() +
                          " user=alice tenant=7] charged");
}

TEST_F(ContextFlagTest, AVariableWithoutAValuePrintsADash) {
  capture c;
  c.logger->info("idle");
  EXPECT_EQ(c.line(), "[trace_id=- span=- user=- tenant=7] idle");
}

TEST_F(ContextFlagTest, ReadsTheContextOfTheThreadThatLogs) {
  capture c;
  ctxexec::context request;
  request.run([&] { (void)user_id.set("bob"); });
  std::thread([&] {
    request.run([&] { c.logger->info("on a worker"); });
  }).join();
  EXPECT_EQ(c.line(), "[trace_id=- span=- user=bob tenant=7] on a worker");
}

TEST_F(ContextFlagTest, NeverPrintsTheWholeContext) {
  capture c;
  ctxexec::context request;
  request.run([&] {
    (void)secret.set("hunter2");
    c.logger->info("x");
  });
  EXPECT_EQ(c.line().find("hunter2"), std::string::npos);
}

}  // namespace
