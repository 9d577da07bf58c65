#include <ctxexec/trace_context.hpp>

#include <ctxexec/context.hpp>
#include "context_fixture.hpp"
#include "test_seed.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using ctxexec::span_id;
using ctxexec::trace_context;
using ctxexec::trace_flags;
using ctxexec::trace_id;
using ctxexec::traceparent;
using ctxexec::traceresponse;
using ctxexec::tracestate;

// The ids of the official test suite, and of the specification's examples.
constexpr std::string_view suite_trace = "12345678901234567890123456789012";
constexpr std::string_view suite_parent = "1234567890123456";
constexpr std::string_view spec_header =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

std::string suite_header(std::string_view version, std::string_view flags,
                         std::string_view tail = "") {
  return std::string(version) + "-" + std::string(suite_trace) + "-" +
         std::string(suite_parent) + "-" + std::string(flags) +
         std::string(tail);
}

bool valid(std::string_view header) {
  return traceparent::parse(header).has_value();
}

std::optional<tracestate> parse_fields(std::vector<std::string_view> fields) {
  return tracestate::parse(std::span<const std::string_view>(fields));
}

// Parsing is constexpr: the rules can be checked at compile time.
static_assert(traceparent::parse(spec_header).has_value());
static_assert(!traceparent::parse(
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
static_assert(sizeof(trace_id) == 16 && sizeof(span_id) == 8);

// --- ids and flags

TEST(TraceIdTest, FromHexAcceptsLowercaseHexOfTheExactLength) {
  auto id = trace_id::from_hex("4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->bytes()[0], 0x4b);
  EXPECT_EQ(id->bytes()[15], 0x36);
  EXPECT_EQ(id->to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(trace_id::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736"));
  EXPECT_FALSE(trace_id::from_hex("4bf92f3577b34da6a3ce929d0e0e473"));
  EXPECT_FALSE(trace_id::from_hex("00000000000000000000000000000000"));
  EXPECT_FALSE(span_id::from_hex("00f067aa0ba902bg"));
  EXPECT_TRUE(span_id::from_hex("00f067aa0ba902b7"));
}

TEST(TraceIdTest, DefaultIsTheInvalidAllZeroId) {
  EXPECT_FALSE(trace_id{}.is_valid());
  EXPECT_FALSE(span_id{}.is_valid());
  EXPECT_EQ(span_id{}.to_string(), "0000000000000000");
}

TEST(TraceIdTest, RandomIdsAreValidAndDistinct) {
  std::set<trace_id> traces;
  std::set<span_id> spans;
  for (int i = 0; i < 10000; ++i) {
    const trace_id t = trace_id::random();
    const span_id s = span_id::random();
    ASSERT_TRUE(t.is_valid());
    ASSERT_TRUE(s.is_valid());
    traces.insert(t);
    spans.insert(s);
  }
  EXPECT_EQ(traces.size(), 10000u);
  EXPECT_EQ(spans.size(), 10000u);
}

TEST(TraceIdTest, ThreadsDrawDistinctIds) {
  // Each thread seeds its own generator from the OS: no two threads may
  // produce the same sequence.
  std::vector<std::vector<trace_id>> drawn(4);
  std::vector<std::thread> threads;
  for (auto& ids : drawn) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 1000; ++i) ids.push_back(trace_id::random());
    });
  }
  for (auto& t : threads) t.join();
  std::set<trace_id> all;
  for (const auto& ids : drawn) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), 4000u);
}

TEST(TraceIdTest, RandomBytesAreRoughlyUniform) {
  // Each bit of 20,000 ids is set close to half the time (a broken
  // generator, e.g. one that leaves bytes zero, fails).
  std::vector<int> ones(128, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const trace_id t = trace_id::random();
    for (int bit = 0; bit < 128; ++bit) {
      ones[bit] += (t.bytes()[bit / 8] >> (bit % 8)) & 1;
    }
  }
  for (int bit = 0; bit < 128; ++bit) {
    EXPECT_NEAR(ones[bit], n / 2, 600) << "bit " << bit;
  }
}

TEST(TraceFlagsTest, BitsAreMaskedNotCompared) {
  const trace_flags f(0x09);  // sampled plus a reserved bit
  EXPECT_TRUE(f.sampled());
  EXPECT_FALSE(f.random_trace_id());
  EXPECT_EQ(f.known().bits(), 0x01);
  EXPECT_EQ(f.with_sampled(false).bits(), 0x08);
  EXPECT_EQ(f.with_random_trace_id(true).bits(), 0x0b);
  EXPECT_EQ(trace_flags{}.bits(), 0);
}

// --- traceparent: the specification's examples and the test suite's cases

TEST(TraceparentTest, ParsesTheSpecificationExamples) {
  auto sampled = traceparent::parse(spec_header);
  ASSERT_TRUE(sampled);
  EXPECT_EQ(sampled->trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(sampled->parent.to_string(), "00f067aa0ba902b7");
  EXPECT_TRUE(sampled->flags.sampled());
  auto unsampled = traceparent::parse(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->flags.sampled());
}

TEST(TraceparentTest, FormatsVersion00IntoACallerBuffer) {
  const traceparent tp = *traceparent::parse(spec_header);
  char buf[traceparent::size];
  tp.format_to(buf);
  EXPECT_EQ(std::string_view(buf, sizeof buf), spec_header);
  EXPECT_EQ(tp.to_string(), spec_header);
}

TEST(TraceparentTest, Version00MustBeExactly55Characters) {
  EXPECT_TRUE(valid(suite_header("00", "01")));
  EXPECT_FALSE(valid(suite_header("00", "01", ".")));
  EXPECT_FALSE(
      valid(suite_header("00", "01", "-what-the-future-will-be-like")));
  EXPECT_FALSE(valid(suite_header("00", "01", "-")));
}

TEST(TraceparentTest, HigherVersionAcceptsExtraDataOnlyAfterADash) {
  EXPECT_TRUE(valid(suite_header("cc", "01")));
  auto future = traceparent::parse(
      suite_header("cc", "01", "-what-the-future-will-be-like"));
  ASSERT_TRUE(future);
  EXPECT_EQ(future->trace.to_string(), suite_trace);
  EXPECT_EQ(future->parent.to_string(), suite_parent);
  EXPECT_FALSE(
      valid(suite_header("cc", "01", ".what-the-future-will-be-like")));
  // Shorter than 55 characters: not parsed.
  EXPECT_FALSE(valid(suite_header("cc", "01").substr(0, 54)));
}

TEST(TraceparentTest, HigherVersionKeepsOnlyTheKnownFlags) {
  auto future = traceparent::parse(suite_header("01", "ff", "-x"));
  ASSERT_TRUE(future);
  EXPECT_EQ(future->flags.bits(), trace_flags::known_bits);
  // Version 00 keeps every bit as received.
  EXPECT_EQ(traceparent::parse(suite_header("00", "ff"))->flags.bits(), 0xff);
  // It is formatted back as version 00.
  EXPECT_EQ(future->to_string(), suite_header("00", "03"));
}

TEST(TraceparentTest, VersionFfIsInvalid) {
  EXPECT_FALSE(valid(suite_header("ff", "01")));
  EXPECT_FALSE(valid(suite_header("ff", "01", "-more")));
}

TEST(TraceparentTest, VersionMustBeTwoLowercaseHexDigits) {
  for (std::string_view v : {".0", "0.", "000", "0000", "0", "CC", "0A"}) {
    EXPECT_FALSE(valid(suite_header(v, "01"))) << v;
  }
}

TEST(TraceparentTest, IdRules) {
  // Trace id, then parent id: all zero, a bad first or last digit, one
  // digit too many or too few, upper case.
  for (std::string_view h :
       {"00-00000000000000000000000000000000-1234567890123456-01",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        "00-123456789012345678901234567890123-1234567890123456-01",
        "00-1234567890123456789012345678901-1234567890123456-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-12345678901234567890123456789012-0000000000000000-01",
        "00-12345678901234567890123456789012-.234567890123456-01",
        "00-12345678901234567890123456789012-123456789012345.-01",
        "00-12345678901234567890123456789012-12345678901234567-01",
        "00-12345678901234567890123456789012-123456789012345-01",
        "00-12345678901234567890123456789012-00F067AA0BA902B7-01"}) {
    EXPECT_FALSE(valid(h)) << h;
  }
}

TEST(TraceparentTest, TraceFlagsRules) {
  for (std::string_view f : {".0", "0.", "001", "1", "0A"}) {
    EXPECT_FALSE(valid(suite_header("00", f))) << f;
  }
  EXPECT_TRUE(valid(suite_header("00", "0a")));
}

TEST(TraceparentTest, DelimitersMustBeDashes) {
  std::string h(spec_header);
  for (std::size_t i : {2u, 35u, 52u}) {
    std::string bad = h;
    bad[i] = '_';
    EXPECT_FALSE(valid(bad)) << bad;
  }
}

TEST(TraceparentTest, SurroundingOwsIsIgnored) {
  const std::string h = suite_header("00", "01");
  for (const std::string& s :
       {" " + h, "\t" + h, h + " ", h + "\t", "\t " + h + " \t"}) {
    auto tp = traceparent::parse(s);
    ASSERT_TRUE(tp) << s;
    EXPECT_EQ(tp->trace.to_string(), suite_trace);
  }
  EXPECT_FALSE(valid(""));
  EXPECT_FALSE(valid("   "));
}

TEST(TraceparentTest, MoreThanOneFieldIsInvalid) {
  const std::string a =
      "00-12345678901234567890123456789011-1234567890123456-01";
  const std::string b =
      "00-12345678901234567890123456789012-1234567890123456-01";
  std::vector<std::string_view> one{a}, two{a, b}, none;
  EXPECT_TRUE(traceparent::parse(std::span<const std::string_view>(one)));
  EXPECT_FALSE(traceparent::parse(std::span<const std::string_view>(two)));
  EXPECT_FALSE(traceparent::parse(std::span<const std::string_view>(none)));
  // Two fields joined into one by a proxy are invalid as well.
  EXPECT_FALSE(valid(a + "," + b));
  EXPECT_FALSE(valid(suite_header("cc", "01") + "," + b));
}

TEST(TraceparentTest, FormatThenParseIsIdentity) {
  const traceparent tp{trace_id::random(), span_id::random(),
                       trace_flags(0x03)};
  EXPECT_EQ(traceparent::parse(tp.to_string()), tp);
}

// --- traceresponse (Level 2)

TEST(TraceresponseTest, SameShapeAsTraceparent) {
  auto tr = traceresponse::parse(
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03");
  ASSERT_TRUE(tr);
  EXPECT_EQ(tr->child.to_string(), "b7ad6b7169203331");
  EXPECT_TRUE(tr->flags.sampled());
  EXPECT_TRUE(tr->flags.random_trace_id());
  EXPECT_EQ(tr->to_string(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03");
  char buf[traceresponse::size];
  tr->format_to(buf);
  EXPECT_EQ(std::string_view(buf, sizeof buf), tr->to_string());
  EXPECT_FALSE(traceresponse::parse(
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"));
  EXPECT_FALSE(traceresponse::parse(
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
}

// --- tracestate

TEST(TracestateTest, ParsesTheSpecificationExamples) {
  auto one = tracestate::parse("rojo=00f067aa0ba902b7");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->get("rojo"), "00f067aa0ba902b7");
  auto two = tracestate::parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(two);
  EXPECT_EQ(two->size(), 2u);
  EXPECT_EQ(two->begin()[0].key, "rojo");
  EXPECT_EQ(two->get("congo"), "t61rcWkgMzE");
  EXPECT_EQ(two->to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  EXPECT_FALSE(two->get("missing"));
}

TEST(TracestateTest, SeveralFieldsAreCombinedInOrder) {
  auto ts = parse_fields({"foo=1,bar=2", "rojo=1,congo=2", "baz=3"});
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->to_string(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
}

TEST(TracestateTest, EmptyFieldsAndMembersAreAllowedAndDropped) {
  auto empty = tracestate::parse("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->to_string(), "");
  EXPECT_EQ(parse_fields({"foo=1", ""})->to_string(), "foo=1");
  EXPECT_EQ(parse_fields({"", "foo=1"})->to_string(), "foo=1");
  EXPECT_EQ(tracestate::parse(" , foo=1,,\t,bar=2, ")->to_string(),
            "foo=1,bar=2");
}

TEST(TracestateTest, OwsAroundMembersIsIgnored) {
  for (std::string_view h :
       {"foo=1 \t , \t bar=2, \t baz=3", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"}) {
    auto ts = tracestate::parse(h);
    ASSERT_TRUE(ts) << h;
    EXPECT_EQ(ts->get("foo"), "1");
    EXPECT_EQ(ts->get("bar"), "2");
    EXPECT_EQ(ts->get("baz"), "3");
  }
  for (std::string_view h :
       {" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"}) {
    auto ts = tracestate::parse(h);
    ASSERT_TRUE(ts) << h;
    EXPECT_EQ(ts->get("foo"), "1") << h;
  }
}

TEST(TracestateTest, LeadingSpacesOfAValueAreKept) {
  auto ts = tracestate::parse("foo=  1  ");
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->get("foo"), "  1");
  EXPECT_EQ(ts->to_string(), "foo=  1");
}

TEST(TracestateTest, AcceptsEveryAllowedCharacter) {
  const std::string key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
  std::string value;
  for (char c = 0x20; c <= 0x7e; ++c) {
    if (c != ',' && c != '=') value += c;
  }
  auto simple = tracestate::parse(key + "=" + value);
  ASSERT_TRUE(simple);
  EXPECT_EQ(simple->get(key), value);
  auto tenant = tracestate::parse(key + "@a-z0-9_-*/@=" + value);
  ASSERT_TRUE(tenant);
  EXPECT_EQ(tenant->get(key + "@a-z0-9_-*/@"), value);
}

TEST(TracestateTest, IllegalKeysInvalidateTheHeader) {
  for (std::string_view h : {"foo =1", "FOO=1", "foo.bar=1", "=1", "fOo=1",
                             "foo=1,Bar=2", "@foo=1,bar=2", "_foo=1"}) {
    EXPECT_FALSE(tracestate::parse(h)) << h;
  }
}

TEST(TracestateTest, KeysMayHoldAtSignsAnywhereButFirst) {
  // The key grammar of the current text and of the W3C test suite: the
  // multi-tenant form is one case of it.
  for (std::string_view h :
       {"fw529a3039@dt=1", "1tenant@sys=1", "foo@=1,bar=2", "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2", "foo@1bar=1", "1foo=1"}) {
    auto ts = tracestate::parse(h);
    ASSERT_TRUE(ts) << h;
    EXPECT_EQ(ts->get(h.substr(0, h.find('='))), "1") << h;
  }
}

TEST(TracestateTest, KeyLengthLimits) {
  EXPECT_TRUE(parse_fields({"foo=1", std::string(256, 'z') + "=1"}));
  EXPECT_FALSE(parse_fields({"foo=1", std::string(257, 'z') + "=1"}));
  EXPECT_TRUE(tracestate::parse(std::string(241, 't') + "@" +
                                std::string(14, 'v') + "=1"));
  EXPECT_TRUE(tracestate::parse(std::string(242, 't') + "@v=1"));
  EXPECT_TRUE(tracestate::parse("t@" + std::string(254, 'v') + "=1"));
  EXPECT_FALSE(tracestate::parse("t@" + std::string(255, 'v') + "=1"));
}

TEST(TracestateTest, ValueRules) {
  EXPECT_FALSE(tracestate::parse("foo=bar=baz"));
  EXPECT_FALSE(tracestate::parse("foo=,bar=3"));
  EXPECT_FALSE(tracestate::parse("foo"));
  EXPECT_FALSE(tracestate::parse("foo=a\tb"));
  EXPECT_FALSE(tracestate::parse("foo=\x7f"));
  EXPECT_FALSE(tracestate::parse("foo=caf\xc3\xa9"));
  EXPECT_TRUE(tracestate::parse("foo=" + std::string(256, 'v')));
  EXPECT_FALSE(tracestate::parse("foo=" + std::string(257, 'v')));
  EXPECT_TRUE(tracestate::is_valid_value(" x"));
  EXPECT_FALSE(tracestate::is_valid_value("x "));
  EXPECT_FALSE(tracestate::is_valid_value(" "));
}

std::vector<std::string> numbered_members(int n) {
  std::vector<std::string> members;
  for (int i = 1; i <= n; ++i) {
    members.push_back(std::string("bar").append(std::to_string(i)) + "=" +
                      std::to_string(i));
  }
  return members;
}

TEST(TracestateTest, AtMost32Members) {
  auto fields_of = [](const std::vector<std::string>& members) {
    // Spread over fields of at most 10 members, as the test suite does.
    std::vector<std::string> fields;
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i % 10 == 0) fields.emplace_back();
      if (!fields.back().empty()) fields.back() += ',';
      fields.back() += members[i];
    }
    return fields;
  };
  std::vector<std::string> f32 = fields_of(numbered_members(32));
  std::vector<std::string> f33 = fields_of(numbered_members(33));
  auto ts32 = parse_fields({f32.begin(), f32.end()});
  ASSERT_TRUE(ts32);
  EXPECT_EQ(ts32->size(), 32u);
  EXPECT_EQ(ts32->get("bar1"), "1");
  EXPECT_FALSE(parse_fields({f33.begin(), f33.end()}));
  // Empty members do not count.
  EXPECT_TRUE(tracestate::parse(",,," + f32[0] + ",," + f32[1] + "," + f32[2] +
                                ",," + f32[3]));
}

TEST(TracestateTest, OfDuplicateKeysTheFirstEntryIsKept) {
  for (const auto& ts :
       {tracestate::parse("foo=1,foo=2"), parse_fields({"foo=1", "foo=2"}),
        tracestate::parse("foo=1,bar=3,foo=2")}) {
    ASSERT_TRUE(ts);
    EXPECT_EQ(ts->get("foo"), "1");
  }
  EXPECT_EQ(tracestate::parse("foo=1,foo=1")->to_string(), "foo=1");
  EXPECT_EQ(tracestate::parse("foo=1,bar=3,foo=2")->to_string(), "foo=1,bar=3");
  EXPECT_EQ(tracestate::parse("foo=1,foo@x=2")->size(), 2u);
}

TEST(TracestateTest, WithPutsTheEntryFirstAndReplacesTheOldOne) {
  const tracestate ts = *tracestate::parse("rojo=1,congo=2");
  const tracestate added = ts.with("acme", "a");
  EXPECT_EQ(added.to_string(), "acme=a,rojo=1,congo=2");
  EXPECT_EQ(added.with("congo", "3").to_string(), "congo=3,acme=a,rojo=1");
  EXPECT_EQ(ts.to_string(), "rojo=1,congo=2");  // unchanged
  EXPECT_EQ(added.without("rojo").to_string(), "acme=a,congo=2");
  EXPECT_EQ(added.without("none"), added);
}

TEST(TracestateTest, WithDropsTheRightMostEntryPast32) {
  std::string h;
  for (const std::string& m : numbered_members(32)) h += m + ",";
  const tracestate full = *tracestate::parse(h);
  const tracestate added = full.with("acme", "a");
  EXPECT_EQ(added.size(), 32u);
  EXPECT_EQ(added.begin()[0].key, "acme");
  EXPECT_FALSE(added.get("bar32"));
  EXPECT_EQ(added.get("bar31"), "31");
}

TEST(TracestateTest, WithRejectsInvalidKeysAndValues) {
  const tracestate ts;
  EXPECT_THROW((void)ts.with("Vendor", "x"), ctxexec::header_error);
  EXPECT_THROW((void)ts.with("vendor", "a,b"), ctxexec::header_error);
  EXPECT_THROW((void)ts.with("vendor", ""), ctxexec::header_error);
  EXPECT_TRUE(ts.empty());
}

TEST(TracestateTest, TruncationDropsLongEntriesFirstThenFromTheEnd) {
  const std::string long_value(150, 'x');
  const tracestate ts =
      *tracestate::parse("a=1,big=" + long_value + ",b=2,c=3");
  EXPECT_EQ(ts.to_string(1000), ts.to_string());
  EXPECT_EQ(ts.to_string(11), "a=1,b=2,c=3");
  EXPECT_EQ(ts.to_string(7), "a=1,b=2");
  EXPECT_EQ(ts.to_string(2), "");
}

TEST(TracestateTest, CopiesShareTheEntries) {
  const tracestate ts = *tracestate::parse("rojo=1");
  const tracestate copy = ts;
  EXPECT_EQ(&*copy.begin(), &*ts.begin());
}

TEST(TracestateTest, RandomListsRoundTrip) {
  std::mt19937_64 rng(
      ctxexec_test::test_seed("CTXEXEC_TRACE_SEED", "tracestate"));
  const std::string key_chars = "abz09_-*/";
  for (int round = 0; round < 500; ++round) {
    tracestate ts;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      std::string key(1, static_cast<char>('a' + rng() % 26));
      for (std::size_t k = rng() % 6; k > 0; --k) {
        key += key_chars[rng() % key_chars.size()];
      }
      if (rng() % 3 == 0) key += "@s";
      std::string value;
      for (std::size_t k = 1 + rng() % 8; k > 0; --k) {
        char c = static_cast<char>(0x20 + rng() % 95);
        value += c == ',' || c == '=' ? 'x' : c;
      }
      if (value.back() == ' ') value.back() = 'y';
      ts = ts.with(key, value);
    }
    const std::string text = ts.to_string();
    auto back = tracestate::parse(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, ts) << text;
    EXPECT_LE(ts.size(), tracestate::max_members);
  }
}

// --- the span and the context variable

class TraceContextTest : public ctxexec_test::ContextFixture {};

TEST_F(TraceContextTest, ContinuesAValidIncomingTrace) {
  const auto t =
      trace_context::from_request(suite_header("00", "01"), "foo=1,bar=2");
  EXPECT_EQ(t.trace.to_string(), suite_trace);
  EXPECT_EQ(t.parent.to_string(), suite_parent);
  EXPECT_NE(t.span.to_string(), suite_parent);
  EXPECT_TRUE(t.span.is_valid());
  EXPECT_TRUE(t.flags.sampled());
  EXPECT_FALSE(t.is_root());
  EXPECT_EQ(t.state.to_string(), "foo=1,bar=2");
}

TEST_F(TraceContextTest,
       InvalidTraceparentStartsANewTraceAndIgnoresTracestate) {
  const auto t = trace_context::from_request(
      "00-00000000000000000000000000000000-1234567890123456-01", "foo=1");
  EXPECT_TRUE(t.trace.is_valid());
  EXPECT_TRUE(t.is_root());
  EXPECT_TRUE(t.state.empty());
  EXPECT_TRUE(t.flags.random_trace_id());
  EXPECT_FALSE(t.flags.sampled());
  const auto missing = trace_context::from_request("", "foo=1");
  EXPECT_TRUE(missing.is_root());
  EXPECT_TRUE(missing.state.empty());
}

TEST_F(TraceContextTest, DuplicatedTraceparentStartsANewTrace) {
  const std::string a = suite_header("00", "01");
  std::vector<std::string_view> tps{a, a};
  std::vector<std::string_view> tss{"foo=1"};
  const auto t = trace_context::from_request(tps, tss);
  EXPECT_NE(t.trace.to_string(), suite_trace);
  EXPECT_TRUE(t.state.empty());
}

TEST_F(TraceContextTest, InvalidTracestateIsDroppedAndTheTraceKept) {
  const auto t =
      trace_context::from_request(suite_header("00", "00"), "foo=1,Foo=2");
  EXPECT_EQ(t.trace.to_string(), suite_trace);
  EXPECT_TRUE(t.state.empty());
}

TEST_F(TraceContextTest, RandomTraceIdFlagIsPropagatedAsReceived) {
  const auto with = trace_context::from_request(suite_header("00", "02"));
  EXPECT_TRUE(with.child().to_traceparent().flags.random_trace_id());
  const auto without = trace_context::from_request(suite_header("00", "01"));
  EXPECT_FALSE(without.child().to_traceparent().flags.random_trace_id());
}

TEST_F(TraceContextTest, ReservedFlagsAreNotSentOn) {
  const auto t = trace_context::from_request(suite_header("00", "fd"));
  EXPECT_EQ(t.to_traceparent().flags.bits(), 0x01);
  EXPECT_EQ(t.to_traceresponse().flags.bits(), 0x01);
}

TEST_F(TraceContextTest, StartMakesARootWithTheRandomFlag) {
  const auto t = trace_context::start(trace_flags(trace_flags::sampled_bit));
  EXPECT_TRUE(t.is_root());
  EXPECT_TRUE(t.flags.sampled());
  EXPECT_TRUE(t.flags.random_trace_id());
  EXPECT_NE(trace_context::start().trace, t.trace);
  EXPECT_EQ(trace_context::start(trace_flags(0xf0)).flags.bits(), 0x02);
}

TEST_F(TraceContextTest, ChildKeepsTheTraceAndPointsAtItsParent) {
  const auto server =
      trace_context::from_request(suite_header("00", "01"), "foo=1");
  std::set<span_id> ids;
  for (int i = 0; i < 3; ++i) {
    const auto call = server.child();
    EXPECT_EQ(call.trace, server.trace);
    EXPECT_EQ(call.parent, server.span);
    EXPECT_EQ(call.flags, server.flags);
    EXPECT_EQ(call.state, server.state);
    const traceparent out = call.to_traceparent();
    EXPECT_EQ(out.trace.to_string(), suite_trace);
    EXPECT_EQ(out.parent, call.span);
    ids.insert(out.parent);
  }
  EXPECT_EQ(ids.size(), 3u);  // a new parent-id for every call
}

TEST_F(TraceContextTest, TraceresponseNamesTheServerSpan) {
  const auto server = trace_context::from_request(suite_header("00", "03"));
  const traceresponse r = server.to_traceresponse();
  EXPECT_EQ(r.trace, server.trace);
  EXPECT_EQ(r.child, server.span);
  EXPECT_EQ(r.flags.bits(), 0x03);
}

TEST_F(TraceContextTest, PrintsForLogs) {
  auto t = trace_context::from_request(suite_header("00", "01"));
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), "trace=" + std::string(suite_trace) +
                          " span=" + t.span.to_string() +
                          " parent=" + std::string(suite_parent) + " flags=01");
  std::ostringstream root;
  root << trace_context::start();
  EXPECT_NE(root.str().find("parent=- flags=02"), std::string::npos);
}

TEST_F(TraceContextTest, CurrentTraceFollowsACopiedContext) {
  EXPECT_EQ(ctxexec::current_trace.try_get(), nullptr);
  const auto server = trace_context::from_request(suite_header("00", "01"));
  auto guard = ctxexec::current_trace.scoped_set(server);
  ctxexec::context snapshot = ctxexec::copy_context();
  trace_context seen;
  std::thread([&] {
    seen = snapshot.run([] { return ctxexec::make_child_span(); });
  }).join();
  EXPECT_EQ(seen.trace, server.trace);
  EXPECT_EQ(seen.parent, server.span);
}

TEST_F(TraceContextTest, MakeChildSpanStartsATraceWhenThereIsNone) {
  const auto t = ctxexec::make_child_span(trace_flags(0x01));
  EXPECT_TRUE(t.is_root());
  EXPECT_EQ(t.flags.bits(), 0x03);
}

TEST_F(TraceContextTest, AppearsInTheContextPrintout) {
  auto guard = ctxexec::current_trace.scoped_set(
      trace_context::from_request(suite_header("00", "01")));
  std::ostringstream os;
  os << ctxexec::copy_context();
  EXPECT_NE(
      os.str().find("ctxexec.current_trace=trace=" + std::string(suite_trace)),
      std::string::npos)
      << os.str();
}

}  // namespace
