// examples/server/json_text.hpp: the JSON the demo writes, by hand: every
// response of a route starts with the same fields (route, trace_id,
// span_id, parent_id, user_id, thread), written without a DOM and without
// allocating beyond the output string.

#ifndef CTXEXEC_EXAMPLES_SERVER_JSON_TEXT_HPP
#define CTXEXEC_EXAMPLES_SERVER_JSON_TEXT_HPP

#include <ctxexec/trace_context.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace demo {

/// Appends `s` as a JSON string (quoted; `"`, `\` and control characters
/// escaped; other bytes, UTF-8 included, as they are).
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

/// Appends `"name":` to an object being written.
inline void append_key(std::string& out, std::string_view name) {
  out += ',';
  append_json_string(out, name);
  out += ':';
}

template <std::size_t N>
void append_id(std::string& out, const ctxexec::hex_id<N>& id) {
  out += '"';
  if (id.is_valid()) {
    std::array<char, 2 * N> text{};
    id.format_to(text);
    out.append(text.data(), text.size());
  }
  out += '"';
}

/// Opens a response object with the fields every JSON response carries.
/// `parent_id` is "" for a trace started here. Close it with `}`.
inline void open_response(std::string& out, std::string_view route,
                          const ctxexec::trace_context& span,
                          std::string_view user, std::string_view thread) {
  out.reserve(out.size() + 256);
  out += "{\"route\":";
  append_json_string(out, route);
  out += ",\"trace_id\":";
  append_id(out, span.trace);
  out += ",\"span_id\":";
  append_id(out, span.span);
  out += ",\"parent_id\":";
  append_id(out, span.parent);
  out += ",\"user_id\":";
  append_json_string(out, user);
  out += ",\"thread\":";
  append_json_string(out, thread);
}

inline void append_number(std::string& out, std::string_view name,
                          std::int64_t v) {
  append_key(out, name);
  out += std::to_string(v);
}

}  // namespace demo

#endif  // CTXEXEC_EXAMPLES_SERVER_JSON_TEXT_HPP
