// Tests of the Beast adapters: extracting Trace Context and Baggage from an
// incoming request (several fields combined, invalid headers dropped or
// restarted), injecting them into an outgoing request as a child span, and
// the traceresponse header.

#include <ctxexec/http/beast.hpp>

#include <ctxexec/context.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <initializer_list>
#include <string>

namespace {

namespace http = boost::beast::http;
using ctxexec::trace_context;
using request = http::request<http::string_body>;

class BeastAdapterTest : public ctxexec_test::ContextFixture {};

constexpr const char* kParent =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A request with kParent and one tracestate field per value.
request with_tracestate(std::initializer_list<const char*> states) {
  request r;
  r.set("TraceParent", kParent);
  for (const char* s : states) r.insert("tracestate", s);
  return r;
}

TEST_F(BeastAdapterTest, ContinuesAValidTraceparentWithANewSpan) {
  const request r =
      with_tracestate({"rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"});
  const trace_context span = ctxexec::http::extract_trace_context(r);
  EXPECT_EQ(span.trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.parent.to_string(), "00f067aa0ba902b7");
  EXPECT_NE(span.span.to_string(), "00f067aa0ba902b7");
  EXPECT_TRUE(span.flags.sampled());
  EXPECT_EQ(span.state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

TEST_F(BeastAdapterTest, MissingDuplicatedOrInvalidTraceparentStartsANewTrace) {
  request none;
  none.set("tracestate", "rojo=1");
  const trace_context a = ctxexec::http::extract_trace_context(none);
  EXPECT_TRUE(a.is_root());
  EXPECT_TRUE(a.state.empty());  // ignored without a traceparent

  request twice;
  twice.insert("traceparent", kParent);
  twice.insert("traceparent", kParent);
  const trace_context b = ctxexec::http::extract_trace_context(twice);
  EXPECT_TRUE(b.is_root());
  EXPECT_NE(b.trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");

  request bad;
  bad.set("traceparent",
          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
  EXPECT_TRUE(ctxexec::http::extract_trace_context(bad).is_root());
}

TEST_F(BeastAdapterTest, AnInvalidTracestateIsDroppedAndTheTraceContinued) {
  const request r = with_tracestate({"rojo=1", "Upper=2"});
  const trace_context span = ctxexec::http::extract_trace_context(r);
  EXPECT_FALSE(span.is_root());
  EXPECT_TRUE(span.state.empty());
}

TEST_F(BeastAdapterTest, BaggageFieldsAreCombinedAndInvalidOnesRejected) {
  request r;
  r.insert("baggage", "userId=alice");
  r.insert("Baggage", "serverNode=DF%2028;ttl=60");
  const auto ok = ctxexec::http::extract_baggage(r);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value.get("userId"), "alice");
  EXPECT_EQ(ok.value.get("serverNode"), "DF 28");

  request bad;
  bad.set("baggage", "userId=alice,no equals here");
  const auto rejected = ctxexec::http::extract_baggage(bad);
  EXPECT_FALSE(rejected.ok());
  EXPECT_TRUE(rejected.value.empty());

  request none;
  const auto empty = ctxexec::http::extract_baggage(none);
  EXPECT_TRUE(empty.ok());
  EXPECT_TRUE(empty.value.empty());
}

TEST_F(BeastAdapterTest, EnterRequestSetsTheCurrentTraceAndBaggage) {
  request r = with_tracestate({});
  r.set("baggage", "user.id=bob");
  ctxexec::context request_context;
  request_context.run([&] {
    const auto bag = ctxexec::http::enter_request(r);
    EXPECT_TRUE(bag.ok());
    ASSERT_NE(ctxexec::current_trace.try_get(), nullptr);
    EXPECT_EQ(ctxexec::current_trace.get().trace.to_string(),
              "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(ctxexec::current_baggage.get().get("user.id"), "bob");
  });
  EXPECT_EQ(ctxexec::current_trace.try_get(), nullptr);  // caller untouched
}

TEST_F(BeastAdapterTest, InjectWritesAChildSpanItsStateAndTheBaggage) {
  const request in = with_tracestate({"rojo=00f067aa0ba902b7"});
  ctxexec::context request_context;
  request_context.run([&] {
    (void)ctxexec::http::enter_request(in);
    (void)ctxexec::current_baggage.set(
        ctxexec::current_baggage.get().with("user.id", "carol dee"));
    http::request<http::empty_body> out{http::verb::get, "/next", 11};
    out.set("baggage", "stale=1");
    const trace_context call = ctxexec::http::inject(out);
    const trace_context& server = ctxexec::current_trace.get();
    EXPECT_EQ(call.parent, server.span);
    EXPECT_EQ(call.trace, server.trace);
    const auto sent = ctxexec::traceparent::parse(
        std::string(out.find("traceparent")->value()));
    ASSERT_TRUE(sent);
    EXPECT_EQ(sent->trace, server.trace);
    EXPECT_EQ(sent->parent, call.span);  // the child's id, not the server's
    EXPECT_NE(sent->parent, server.span);
    EXPECT_EQ(std::string(out.find("tracestate")->value()),
              "rojo=00f067aa0ba902b7");
    EXPECT_EQ(std::string(out.find("baggage")->value()),
              "user.id=carol%20dee");  // replaced, percent-encoded
  });
}

TEST_F(BeastAdapterTest, InjectWithoutStateOrBaggageRemovesThoseFields) {
  http::request<http::empty_body> out;
  out.set("tracestate", "old=1");
  out.set("baggage", "old=1");
  const trace_context call = ctxexec::http::inject(out);  // no current span
  EXPECT_TRUE(call.is_root());
  EXPECT_EQ(out.count("tracestate"), 0u);
  EXPECT_EQ(out.count("baggage"), 0u);
  EXPECT_EQ(out.count("traceparent"), 1u);
}

TEST_F(BeastAdapterTest, TraceresponseCarriesTheServersSpan) {
  const trace_context span = trace_context::start();
  http::response<http::string_body> res;
  ctxexec::http::set_traceresponse(res, span);
  const auto parsed = ctxexec::traceresponse::parse(
      std::string(res.find("traceresponse")->value()));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->trace, span.trace);
  EXPECT_EQ(parsed->child, span.span);

  http::response<http::string_body> fresh;  // no current span: a new one
  ctxexec::http::set_traceresponse(fresh);
  EXPECT_TRUE(ctxexec::traceresponse::parse(
      std::string(fresh.find("traceresponse")->value())));
}

}  // namespace
