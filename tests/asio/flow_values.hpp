// tests/asio/flow_values.hpp: the values that concurrent flows write into
// one context object in the sharing tests, and the check that a read
// returns one of them ("some flow really set it"), not a torn or freed one.

#ifndef CTXEXEC_TESTS_ASIO_FLOW_VALUES_HPP
#define CTXEXEC_TESTS_ASIO_FLOW_VALUES_HPP

#include <charconv>
#include <initializer_list>
#include <string>
#include <string_view>

namespace ctxexec_test {

/// "<flow>:<i>": the i-th value that flow `flow` sets.
inline std::string flow_value(std::string_view flow, int i) {
  return std::string(flow) + ":" + std::to_string(i);
}

/// Whether `v` is the i-th value of one of `flows`, for some i < `limit`.
inline bool is_flow_value(std::string_view v,
                          std::initializer_list<std::string_view> flows,
                          int limit) {
  const auto colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  bool known = false;
  for (std::string_view f : flows) known |= v.substr(0, colon) == f;
  int i = -1;
  const std::string_view digits = v.substr(colon + 1);
  const auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), i);
  return known && ec == std::errc() && end == digits.data() + digits.size() &&
         i >= 0 && i < limit;
}

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_ASIO_FLOW_VALUES_HPP
