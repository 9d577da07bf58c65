// ctxexec/detail/percent_codec.hpp: percent-encoding (RFC 3986 section 2.1)
// of baggage values, and the replacement of invalid UTF-8 by U+FFFD. Not
// part of the public API.

#ifndef CTXEXEC_DETAIL_PERCENT_CODEC_HPP
#define CTXEXEC_DETAIL_PERCENT_CODEC_HPP

#include <ctxexec/detail/header_text.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace ctxexec::detail {

/// baggage-octet of W3C Baggage: 0x21-0x7E except '"', ',', ';' and '\'.
constexpr bool is_baggage_octet(char c) noexcept {
  return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' &&
         c != '\\';
}

/// tchar of RFC 9110 (the characters of a token).
constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// Whether `s` is a token: one or more tchar.
constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

/// Appends `bytes` to `out` with every maximal ill-formed UTF-8 subpart
/// replaced by U+FFFD (the WHATWG "UTF-8 decode" rule, as Unicode
/// recommends): overlong forms, surrogates, code points above U+10FFFF,
/// stray continuation bytes and truncated sequences.
inline void append_utf8_sanitized(std::string& out, std::string_view bytes) {
  static constexpr char replacement[] = "\xEF\xBF\xBD";
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (b < 0x80) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    std::size_t need = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b == 0xe0) lo = 0xa0;
      if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b == 0xf0) lo = 0x90;
      if (b == 0xf4) hi = 0x8f;
    }
    std::size_t j = i + 1;
    bool ok = need > 0;
    for (std::size_t k = 0; ok && k < need; ++k, ++j) {
      if (j >= bytes.size()) {
        ok = false;
        break;
      }
      const auto c = static_cast<unsigned char>(bytes[j]);
      if (c < (k == 0 ? lo : 0x80) || c > (k == 0 ? hi : 0xbf)) ok = false;
      if (!ok) break;
    }
    if (ok) {
      out.append(bytes.substr(i, need + 1));
    } else {
      out += replacement;
    }
    i = j;
  }
}

/// Decodes a baggage value: baggage-octets with %XX escapes (either case).
/// Writes the decoded text, invalid UTF-8 replaced by U+FFFD, to `out`.
/// Returns false if a character is not a baggage-octet or an escape is
/// malformed (then `out` is unspecified).
inline bool percent_decode(std::string_view in, std::string& out) {
  std::string raw;
  raw.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (!is_baggage_octet(c)) return false;
    if (c != '%') {
      raw += c;
      continue;
    }
    if (in.size() - i < 3) return false;  // '%' and two digits
    const int hi = any_hex_value(in[i + 1]);
    const int lo = any_hex_value(in[i + 2]);
    if ((hi | lo) < 0) return false;
    raw += static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  out.clear();
  append_utf8_sanitized(out, raw);
  return true;
}

/// The size of `percent_encode(in)`.
constexpr std::size_t percent_encoded_size(std::string_view in) noexcept {
  std::size_t n = 0;
  for (char c : in) n += is_baggage_octet(c) && c != '%' ? 1 : 3;
  return n;
}

/// Appends `in` to `out`, every byte that is not a baggage-octet, and '%',
/// written as %XX (uppercase hex).
inline void percent_encode(std::string_view in, std::string& out) {
  for (char c : in) {
    if (is_baggage_octet(c) && c != '%') {
      out += c;
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += upper_hex_digits[b >> 4];
      out += upper_hex_digits[b & 0xf];
    }
  }
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_PERCENT_CODEC_HPP
