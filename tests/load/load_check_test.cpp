#include "load_check.hpp"

#include <gtest/gtest.h>
#include <boost/json/src.hpp>

#include <string>

namespace {

using ctxexec_load::check_errc;
using ctxexec_load::check_response;
using ctxexec_load::request_ids;

constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kOtherTrace = "4bf92f3577b34da6a3ce929d0e0e4737";
constexpr const char* kUser = "u1234abcd-42";

std::string traceresponse(const std::string& trace = kTrace) {
  return "00-" + trace + "-00f067aa0ba902b7-01";
}

// One level of the contract's JSON, with an optional upstream object.
std::string level(const std::string& trace, const std::string& user,
                  const std::string& upstream = "") {
  std::string body = R"({"route":"/chain","trace_id":")" + trace +
                     R"(","span_id":"00f067aa0ba902b7",)" +
                     R"("parent_id":"b7ad6b7169203331","user_id":")" + user +
                     R"(","thread":"loop")";
  if (!upstream.empty()) body += R"(,"upstream":)" + upstream;
  return body + "}";
}

check_errc check(const std::string& body, int depth = 0,
                 const std::string& tr = traceresponse(),
                 unsigned status = 200) {
  return check_response(request_ids{kTrace, kUser, depth}, status, tr, body);
}

TEST(LoadCheckTest, OwnIdsMatch) {
  EXPECT_EQ(check(level(kTrace, kUser)), check_errc::ok);
}

TEST(LoadCheckTest, ChainMatchesAtEveryDepth) {
  const std::string inner = level(kTrace, kUser);
  const std::string middle = level(kTrace, kUser, inner);
  EXPECT_EQ(check(level(kTrace, kUser, middle), 2), check_errc::ok);
}

TEST(LoadCheckTest, StatusOtherThan200IsAnError) {
  EXPECT_EQ(check(level(kTrace, kUser), 0, traceresponse(), 500),
            check_errc::bad_status);
  EXPECT_TRUE(ctxexec_load::is_error(check_errc::bad_status));
}

TEST(LoadCheckTest, TraceresponseMustCarryTheRequestsTrace) {
  const std::string body = level(kTrace, kUser);
  EXPECT_EQ(check(body, 0, ""), check_errc::no_traceresponse);
  EXPECT_EQ(check(body, 0, "00-" + std::string(kTrace) + "-00f067aa0ba902b7"),
            check_errc::no_traceresponse);
  EXPECT_EQ(check(body, 0,
                  "00-4BF92F3577B34DA6A3CE929D0E0E4736-"
                  "00f067aa0ba902b7-01"),
            check_errc::no_traceresponse);
  EXPECT_EQ(check(body, 0, traceresponse(kOtherTrace)),
            check_errc::traceresponse_mismatch);
}

TEST(LoadCheckTest, BodyMustBeAJsonObjectWithEveryField) {
  EXPECT_EQ(check("not json"), check_errc::bad_json);
  EXPECT_EQ(check("[1,2]"), check_errc::bad_json);
  EXPECT_TRUE(ctxexec_load::is_error(check_errc::bad_json));
  EXPECT_EQ(check(R"({"route":"/async","trace_id":")" + std::string(kTrace) +
                  R"(","user_id":")" + kUser + R"("})"),
            check_errc::missing_field);
  EXPECT_EQ(check(R"({"route":"/async","trace_id":")" + std::string(kTrace) +
                  R"(","span_id":"00f067aa0ba902b7",)" +
                  R"("parent_id":"b7ad6b7169203331","user_id":")" + kUser +
                  R"(","thread":1})"),
            check_errc::missing_field);
}

TEST(LoadCheckTest, AnotherRequestsIdsAreMismatches) {
  EXPECT_EQ(check(level(kOtherTrace, kUser)), check_errc::trace_mismatch);
  EXPECT_EQ(check(level(kTrace, "u1234abcd-43")), check_errc::user_mismatch);
  EXPECT_EQ(check(level(kTrace, "anonymous")), check_errc::user_mismatch);
  EXPECT_FALSE(ctxexec_load::is_error(check_errc::user_mismatch));
}

TEST(LoadCheckTest, UpstreamDepthMustBeTheHops) {
  const std::string one = level(kTrace, kUser, level(kTrace, kUser));
  EXPECT_EQ(check(level(kTrace, kUser), 1), check_errc::upstream_missing);
  EXPECT_EQ(check(one, 0), check_errc::upstream_missing);
  EXPECT_EQ(check(one, 2), check_errc::upstream_missing);
  EXPECT_EQ(check(level(kTrace, kUser, "\"text\""), 1),
            check_errc::upstream_missing);
}

TEST(LoadCheckTest, UpstreamMustCarryTheSameIds) {
  EXPECT_EQ(check(level(kTrace, kUser, level(kTrace, "anonymous")), 1),
            check_errc::upstream_mismatch);
  EXPECT_EQ(check(level(kTrace, kUser, level(kOtherTrace, kUser)), 1),
            check_errc::upstream_mismatch);
  const std::string deep_wrong = level(kTrace, kUser, level(kTrace, "other"));
  EXPECT_EQ(check(level(kTrace, kUser, deep_wrong), 2),
            check_errc::upstream_mismatch);
}

TEST(LoadCheckTest, VerdictNamesAreDistinct) {
  for (std::size_t i = 0; i < ctxexec_load::check_errc_count; ++i)
    for (std::size_t j = i + 1; j < ctxexec_load::check_errc_count; ++j)
      EXPECT_NE(ctxexec_load::to_string(static_cast<check_errc>(i)),
                ctxexec_load::to_string(static_cast<check_errc>(j)));
}

}  // namespace
