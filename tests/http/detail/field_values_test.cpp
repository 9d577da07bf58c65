// Tests of detail::field_values: every field of one name, in order,
// case-insensitive, beyond the four kept inline.

#include <ctxexec/http/detail/field_values.hpp>

#include <gtest/gtest.h>
#include <boost/beast/http/fields.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

using ctxexec::http::detail::field_values;
namespace http = boost::beast::http;

std::vector<std::string> values_of(const http::fields& f,
                                   std::string_view name) {
  const field_values v(f, name);
  return {v.span().begin(), v.span().end()};
}

TEST(FieldValuesTest, NoFieldGivesAnEmptySpan) {
  http::fields f;
  f.insert("other", "x");
  EXPECT_TRUE(values_of(f, "tracestate").empty());
}

TEST(FieldValuesTest, FieldsOfOneNameInOrderWhateverTheirCase) {
  http::fields f;
  f.insert("TraceState", "a=1");
  f.insert("other", "x");
  f.insert("tracestate", "b=2");
  EXPECT_EQ(values_of(f, "tracestate"),
            (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(FieldValuesTest, MoreThanFourFieldsAreAllKept) {
  http::fields f;
  std::vector<std::string> expected;
  for (int i = 0; i < 9; ++i) {
    expected.push_back("k" + std::to_string(i) + "=v");
    f.insert("baggage", expected.back());
  }
  EXPECT_EQ(values_of(f, "baggage"), expected);
}

}  // namespace
