// ctxexec/detail/header_text.hpp: the text helpers shared by the HTTP header
// parsers of the core (traceparent, tracestate, baggage): optional white
// space, comma-separated lists spread over several header fields, and hex
// digits. Not part of the public API.

#ifndef CTXEXEC_DETAIL_HEADER_TEXT_HPP
#define CTXEXEC_DETAIL_HEADER_TEXT_HPP

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ctxexec::detail {

/// OWS of RFC 9110: space or horizontal tab.
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// `s` without leading and trailing OWS.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls `f(member)` for each comma-separated member of the list formed by
/// combining `fields` with ',' (RFC 9110 section 5.3), each member trimmed
/// of OWS; empty members included. Stops early, returning false, when `f`
/// returns false.
template <class F>
constexpr bool for_each_list_member(std::span<const std::string_view> fields,
                                    F&& f) {
  for (std::string_view field : fields) {
    for (;;) {
      const std::size_t comma = field.find(',');
      if (!f(trim_ows(field.substr(0, comma)))) return false;
      if (comma == std::string_view::npos) break;
      field.remove_prefix(comma + 1);
    }
  }
  return true;
}

/// The value of a lowercase hex digit (0-9, a-f), or -1.
constexpr int lower_hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// The value of a hex digit of either case, or -1.
constexpr int any_hex_value(char c) noexcept {
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return lower_hex_value(c);
}

inline constexpr char lower_hex_digits[] = "0123456789abcdef";
inline constexpr char upper_hex_digits[] = "0123456789ABCDEF";

/// Decodes `out.size()` bytes from twice as many lowercase hex digits at
/// `text`; false if one is not a lowercase hex digit.
constexpr bool decode_lower_hex(const char* text,
                                std::span<std::uint8_t> out) noexcept {
  for (std::uint8_t& byte : out) {
    const int hi = lower_hex_value(text[0]);
    const int lo = lower_hex_value(text[1]);
    if ((hi | lo) < 0) return false;
    byte = static_cast<std::uint8_t>(hi << 4 | lo);
    text += 2;
  }
  return true;
}

/// Writes the bytes of `in` as lowercase hex to `out` (twice as many chars).
constexpr char* encode_lower_hex(std::span<const std::uint8_t> in,
                                 char* out) noexcept {
  for (std::uint8_t byte : in) {
    *out++ = lower_hex_digits[byte >> 4];
    *out++ = lower_hex_digits[byte & 0xf];
  }
  return out;
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_HEADER_TEXT_HPP
