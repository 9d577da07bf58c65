#include <ctxexec/baggage.hpp>

#include <ctxexec/context.hpp>
#include "context_fixture.hpp"
#include "test_seed.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using ctxexec::baggage;
using ctxexec::baggage_errc;
using ctxexec::baggage_policy;

baggage parse_ok(std::string_view h) {
  auto r = baggage::parse(h);
  EXPECT_TRUE(r.ok()) << h << ": error " << static_cast<int>(r.error);
  return r.value;
}

baggage_errc error_of(std::string_view h) { return baggage::parse(h).error; }

baggage::member only(const baggage& b) {
  EXPECT_EQ(b.size(), 1u);
  return *b.begin();
}

// --- the specification's examples

TEST(BaggageTest, ParsesTheSpecificationExample) {
  const baggage b = parse_ok(
      "key1=value1;property1;property2, key2 = value2, key3=value3; "
      "propertyKey=propertyValue");
  ASSERT_EQ(b.size(), 3u);
  const baggage::member& m1 = b.begin()[0];
  EXPECT_EQ(m1.key, "key1");
  EXPECT_EQ(m1.value, "value1");
  ASSERT_EQ(m1.properties.size(), 2u);
  EXPECT_EQ(m1.properties[0].key, "property1");
  EXPECT_FALSE(m1.properties[0].value);
  EXPECT_EQ(m1.properties[1].key, "property2");
  EXPECT_EQ(b.get("key2"), "value2");
  const baggage::member& m3 = b.begin()[2];
  ASSERT_EQ(m3.properties.size(), 1u);
  EXPECT_EQ(m3.properties[0].key, "propertyKey");
  EXPECT_EQ(m3.properties[0].value, "propertyValue");
}

TEST(BaggageTest, ParsesThePercentEncodedExamples) {
  const baggage b =
      parse_ok("userId=alice,serverNode=DF%2028,isProduction=false");
  EXPECT_EQ(b.get("userId"), "alice");
  EXPECT_EQ(b.get("serverNode"), "DF 28");
  EXPECT_EQ(b.get("isProduction"), "false");
  EXPECT_EQ(b.to_string(),
            "userId=alice,serverNode=DF%2028,isProduction=false");
  EXPECT_EQ(parse_ok("userId=Am%C3%A9lie").get("userId"), "Am\xC3\xA9lie");
}

TEST(BaggageTest, SeveralFieldsAreCombined) {
  std::vector<std::string_view> fields{"userId=alice",
                                       "serverNode=DF%2028,isProduction=false"};
  auto r = baggage::parse(std::span<const std::string_view>(fields));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.to_string(),
            "userId=alice,serverNode=DF%2028,isProduction=false");
  std::vector<std::string_view> spaced{
      "userId =   alice", "serverNode = DF%2028, isProduction = false"};
  auto s = baggage::parse(std::span<const std::string_view>(spaced));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value, r.value);
}

// --- the grammar

TEST(BaggageTest, OwsAroundEverythingIsTrimmed) {
  const baggage b = parse_ok(
      "SomeKey \t = \t SomeValue \t ; \t SomeProp \t , \t SomeKey2 \t = \t "
      "SomeValue2 \t ; \t ValueProp \t = \t PropVal");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b.begin()[0].key, "SomeKey");
  EXPECT_EQ(b.begin()[0].value, "SomeValue");
  EXPECT_EQ(b.begin()[0].properties[0].key, "SomeProp");
  EXPECT_EQ(b.begin()[1].properties[0].key, "ValueProp");
  EXPECT_EQ(b.begin()[1].properties[0].value, "PropVal");
}

TEST(BaggageTest, ValuesMayContainEqualsSigns) {
  EXPECT_EQ(only(parse_ok("SomeKey=SomeValue=equals")).value,
            "SomeValue=equals");
  EXPECT_EQ(only(parse_ok("k=v;p=a=b")).properties[0].value, "a=b");
}

TEST(BaggageTest, EmptyValuesAreAllowed) {
  EXPECT_EQ(only(parse_ok("k=")).value, "");
  EXPECT_EQ(only(parse_ok("k= ;p=")).properties[0].value, "");
  EXPECT_EQ(parse_ok("k=").to_string(), "k=");
}

TEST(BaggageTest, PropertiesKeepTheirOrderAndDuplicates) {
  const auto m =
      only(parse_ok("SomeKey=SomeValue;SomeProp;SomeProp=PropValue;SomeProp="
                    "AnotherPropValue"));
  ASSERT_EQ(m.properties.size(), 3u);
  EXPECT_FALSE(m.properties[0].value);
  EXPECT_EQ(m.properties[1].value, "PropValue");
  EXPECT_EQ(m.properties[2].value, "AnotherPropValue");
}

TEST(BaggageTest, PropertyKeysAreNotDecoded) {
  const auto m =
      only(parse_ok("SomeKey=SomeValue;ValueProp%20%09%20%3D%20%09%20PropVal"));
  ASSERT_EQ(m.properties.size(), 1u);
  EXPECT_EQ(m.properties[0].key, "ValueProp%20%09%20%3D%20%09%20PropVal");
  EXPECT_FALSE(m.properties[0].value);
}

TEST(BaggageTest, PercentDecodingOfValuesAndPropertyValues) {
  // What a percent-encoder that escapes everything but unreserved sends.
  const std::string encoded =
      "%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29";
  const std::string decoded = "\t \"';=asdf!@#$%^&*()";
  EXPECT_EQ(only(parse_ok("SomeKey=" + encoded)).value, decoded);
  EXPECT_EQ(only(parse_ok("SomeKey \t = \t " + encoded + " \t ")).value,
            decoded);
  EXPECT_EQ(only(parse_ok("K=V;P=" + encoded)).properties[0].value, decoded);
  // Lowercase escapes are decoded too.
  EXPECT_EQ(only(parse_ok("k=%c3%a9")).value, "\xC3\xA9");
}

TEST(BaggageTest, EncodingEscapesWhatMustBeEscaped) {
  const baggage b = baggage().with("k", "\t \"';=asdf!@#$%^&*()");
  EXPECT_EQ(b.to_string(), "k=%09%20%22'%3B=asdf!@#$%25^&*()");
  EXPECT_EQ(parse_ok(b.to_string()), b);
  const baggage p = baggage().with({"k", "v", {{"p", "a,b;c\\d"}, {"q", {}}}});
  EXPECT_EQ(p.to_string(), "k=v;p=a%2Cb%3Bc%5Cd;q");
  EXPECT_EQ(parse_ok(p.to_string()), p);
  EXPECT_EQ(baggage().with("k", "Am\xC3\xA9lie").to_string(), "k=Am%C3%A9lie");
}

TEST(BaggageTest, InvalidUtf8DecodesToReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(only(parse_ok("k=%FF")).value, fffd);
  EXPECT_EQ(only(parse_ok("k=a%C3")).value, "a" + fffd);     // truncated
  EXPECT_EQ(only(parse_ok("k=%C0%AF")).value, fffd + fffd);  // overlong
  EXPECT_EQ(only(parse_ok("k=%ED%A0%80")).value,             // surrogate
            fffd + fffd + fffd);
  EXPECT_EQ(only(parse_ok("k=%F4%90%80%80")).value,  // above U+10FFFF
            fffd + fffd + fffd + fffd);
  EXPECT_EQ(only(parse_ok("k=%E2%82x")).value, fffd + "x");  // maximal subpart
  EXPECT_EQ(only(parse_ok("k=%F0%9F%98%80")).value, "\xF0\x9F\x98\x80");
  EXPECT_EQ(only(parse_ok("k=v;p=%80")).properties[0].value, fffd);
  // `with` stores what a receiver would decode.
  EXPECT_EQ(baggage().with("k", "a\xFF").get("k"), "a" + fffd);
}

TEST(BaggageTest, InvalidMembersAreReported) {
  EXPECT_EQ(error_of("novalue"), baggage_errc::missing_equals);
  EXPECT_EQ(error_of("=v"), baggage_errc::invalid_key);
  EXPECT_EQ(error_of("a b=v"), baggage_errc::invalid_key);
  EXPECT_EQ(error_of("k@x=v"), baggage_errc::invalid_key);
  EXPECT_EQ(error_of("k=a b"), baggage_errc::invalid_value);
  EXPECT_EQ(error_of("k=\"v\""), baggage_errc::invalid_value);
  EXPECT_EQ(error_of("k=a\\b"), baggage_errc::invalid_value);
  EXPECT_EQ(error_of("k=caf\xC3\xA9"), baggage_errc::invalid_value);
  EXPECT_EQ(error_of("k=%4"), baggage_errc::invalid_value);
  EXPECT_EQ(error_of("k=%zz"), baggage_errc::invalid_value);
  EXPECT_EQ(error_of("k=v;"), baggage_errc::invalid_property);
  EXPECT_EQ(error_of("k=v;;p"), baggage_errc::invalid_property);
  EXPECT_EQ(error_of("k=v;p q"), baggage_errc::invalid_property);
  EXPECT_EQ(error_of("k=v;=x"), baggage_errc::invalid_property);
  EXPECT_EQ(error_of("k=v;p=a b"), baggage_errc::invalid_property);
}

TEST(BaggageTest, RejectHeaderDropsEverything) {
  auto r = baggage::parse("a=1,bad,b=2");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, baggage_errc::missing_equals);
  EXPECT_EQ(r.invalid_members, 1u);
  EXPECT_TRUE(r.value.empty());
}

TEST(BaggageTest, DropInvalidMembersKeepsTheOthers) {
  auto r =
      baggage::parse("a=1,bad,b=2,c=x y", baggage_policy::drop_invalid_members);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, baggage_errc::missing_equals);  // the first one
  EXPECT_EQ(r.invalid_members, 2u);
  EXPECT_EQ(r.value.to_string(), "a=1,b=2");
}

TEST(BaggageTest, EmptyFieldsAndMembersAreDropped) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok(" \t ").empty());
  EXPECT_EQ(parse_ok(",a=1, ,,b=2,").to_string(), "a=1,b=2");
}

TEST(BaggageTest, DuplicateKeysAreKeptInOrderAndTheLastWins) {
  const baggage b = parse_ok("k=1,x=2,k=3");
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.get("k"), "3");
  EXPECT_EQ(b.to_string(), "k=1,x=2,k=3");
  EXPECT_EQ(b.with("k", "4").to_string(), "x=2,k=4");
  EXPECT_EQ(b.without("k").to_string(), "x=2");
}

// --- limits

TEST(BaggageTest, SerializesAtLeast64Members) {
  baggage b;
  for (int i = 0; i < 64; ++i)
    b = b.with(std::string("key").append(std::to_string(i)), "value");
  const std::string s = b.to_string();
  EXPECT_EQ(std::count(s.begin(), s.end(), ','), 63);
  EXPECT_EQ(parse_ok(s), b);
}

TEST(BaggageTest, SerializesA8192ByteMember) {
  const std::string value = [] {
    std::string v;
    for (int i = 0; i < 819; ++i) v += "0123456789";
    return v;
  }();
  const baggage b = baggage().with("a", value);
  EXPECT_EQ(b.to_string().size(), 8192u);
  EXPECT_EQ(baggage().with("a", value + "0").to_string(), "");
}

TEST(BaggageTest, SerializingDropsWholeMembersPastTheLimits) {
  baggage many;
  for (int i = 0; i < 70; ++i)
    many = many.with(std::string("k").append(std::to_string(i)), "v");
  const baggage first64 = parse_ok(many.to_string());
  EXPECT_EQ(first64.size(), 64u);
  EXPECT_EQ(first64.begin()[63].key, "k63");

  // 512 members of 15 bytes: 8192 bytes hold 512 of them less the commas.
  baggage big;
  for (int i = 0; i < 600; ++i) {
    char key[4];
    std::snprintf(key, sizeof key, "%03d", i % 1000);
    big = big.with(key, "0123456789a");
  }
  const std::string s = big.to_string();
  EXPECT_LE(s.size(), baggage::max_size);
  EXPECT_EQ(std::count(s.begin(), s.end(), ','), 63);  // 64 members first

  // A member too large is skipped, a later one that fits is still sent.
  const baggage mixed = baggage()
                            .with("a", std::string(5000, 'x'))
                            .with("b", std::string(5000, 'y'))
                            .with("c", "small");
  const baggage sent = parse_ok(mixed.to_string());
  EXPECT_EQ(sent.size(), 2u);
  EXPECT_TRUE(sent.get("a"));
  EXPECT_FALSE(sent.get("b"));
  EXPECT_EQ(sent.get("c"), "small");
}

TEST(BaggageTest, ParsingKeepsWhatFitsAndCountsTheRest) {
  std::string h;
  for (int i = 0; i < 70; ++i)
    h += std::string("k").append(std::to_string(i)) + "=v,";
  auto r = baggage::parse(h);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.value.size(), 64u);
  EXPECT_EQ(r.dropped_members, 6u);
  EXPECT_EQ(r.value.begin()[63].key, "k63");  // the first 64, in order
  EXPECT_FALSE(r.value.get("k64"));

  auto big = baggage::parse("a=" + std::string(8190, 'x') +
                            ",b=1,c=" + std::string(8191, 'y'));
  EXPECT_TRUE(big.ok());
  EXPECT_EQ(big.value.size(), 1u);
  EXPECT_EQ(big.dropped_members, 2u);
}

TEST(BaggageTest, TheSizeLimitCountsMembersAsTheyWillBeSent) {
  // 3,004 bytes received, but 9,004 once the invalid octets, decoded to
  // U+FFFD, are encoded again: over the limit, so dropped whole.
  std::string big = "big=";
  for (int i = 0; i < 1000; ++i) big += "%FF";
  auto r = baggage::parse("small=1," + big + ",after=2");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.dropped_members, 1u);
  EXPECT_EQ(r.value.to_string(), "small=1,after=2");
}

// --- immutability and the context variable

TEST(BaggageTest, UpdatesReturnACopyAndCopiesShareEntries) {
  const baggage a = parse_ok("k=1");
  const baggage b = a.with("j", "2");
  EXPECT_EQ(a.to_string(), "k=1");
  EXPECT_EQ(b.to_string(), "k=1,j=2");
  const baggage c = b;
  EXPECT_EQ(c.begin(), b.begin());  // the same storage
  EXPECT_EQ(baggage().begin(), nullptr);
}

TEST(BaggageTest, WithRejectsKeysThatAreNotTokens) {
  EXPECT_THROW((void)baggage().with("a b", "v"), ctxexec::header_error);
  EXPECT_THROW((void)baggage().with("", "v"), ctxexec::header_error);
  EXPECT_THROW((void)baggage().with({"k", "v", {{"p;", {}}}}),
               ctxexec::header_error);
  EXPECT_TRUE(baggage::is_valid_key("!#$%&'*+-.^_`|~09azAZ"));
}

TEST(BaggageTest, PrintsTheHeader) {
  std::ostringstream os;
  os << parse_ok("a=1;p");
  EXPECT_EQ(os.str(), "a=1;p");
}

TEST(BaggageTest, RandomBaggagesRoundTrip) {
  std::mt19937_64 rng(
      ctxexec_test::test_seed("CTXEXEC_BAGGAGE_SEED", "baggage"));
  auto text = [&](std::size_t max) {
    std::string s;
    for (std::size_t n = rng() % max; n > 0; --n) {
      s += static_cast<char>(rng() % 256);
    }
    return s;
  };
  const std::string tchars = "!#$%&'*+-.^_`|~0aZ";
  for (int round = 0; round < 300; ++round) {
    baggage b;
    for (std::size_t n = rng() % 80; n > 0; --n) {
      baggage::member m{std::string(1, tchars[rng() % tchars.size()]) +
                            std::to_string(rng() % 50),
                        text(12),
                        {}};
      for (std::size_t p = rng() % 3; p > 0; --p) {
        m.properties.push_back(
            {std::string("p").append(std::to_string(p)),
             rng() % 2 ? std::optional(text(6)) : std::nullopt});
      }
      b = b.with(std::move(m));
    }
    const std::string s = b.to_string();
    auto r = baggage::parse(s);
    ASSERT_TRUE(r.ok()) << s;
    EXPECT_EQ(r.dropped_members, 0u);
    EXPECT_EQ(r.value.to_string(), s);
    if (b.size() <= baggage::max_members) {
      EXPECT_EQ(r.value, b) << s;
    }
  }
}

class CurrentBaggageTest : public ctxexec_test::ContextFixture {};

TEST_F(CurrentBaggageTest, DefaultsToEmptyAndFollowsACopiedContext) {
  EXPECT_TRUE(ctxexec::current_baggage.get().empty());
  auto guard = ctxexec::current_baggage.scoped_set(
      ctxexec::current_baggage.get().with("tenant", "acme"));
  ctxexec::context snapshot = ctxexec::copy_context();
  std::string seen;
  std::thread([&] {
    seen =
        snapshot.run([] { return ctxexec::current_baggage.get().to_string(); });
  }).join();
  EXPECT_EQ(seen, "tenant=acme");
  // The snapshot shares the caller's entries.
  EXPECT_EQ(snapshot.find(ctxexec::current_baggage)->begin(),
            ctxexec::current_baggage.get().begin());
}

}  // namespace
