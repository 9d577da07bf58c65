// ctxexec/trace_context.hpp
//
// Defines W3C Trace Context for the core: the ids `trace_id` and `span_id`
// (`hex_id<N>`), `trace_flags`, the headers `traceparent`, `tracestate`
// (Level 1) and `traceresponse` (Level 2), the span value `trace_context`,
// and the context variable `current_trace` that carries it with the work.
//
// Example:
//   auto g = ctxexec::current_trace.scoped_set(ctxexec::trace_context::
//       from_request(req["traceparent"], req["tracestate"]));
//   auto call = ctxexec::make_child_span();        // for an outgoing call
//   out["traceparent"] = call.to_traceparent().to_string();
//
// Invalid input: parsing never throws. An invalid `traceparent` parses to
// std::nullopt, which means "start a new trace"; an invalid `tracestate`
// parses to std::nullopt and is dropped. `tracestate::with()` throws
// `header_error` for a key or value outside the grammar. In debug builds
// CTXEXEC_ASSERT checks that only valid ids are formatted.

#ifndef CTXEXEC_TRACE_CONTEXT_HPP
#define CTXEXEC_TRACE_CONTEXT_HPP

#include <ctxexec/context_var.hpp>
#include <ctxexec/detail/config.hpp>
#include <ctxexec/detail/header_text.hpp>
#include <ctxexec/detail/random_ids.hpp>
#include <ctxexec/detail/shared_list.hpp>
#include <ctxexec/errors.hpp>

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctxexec {

/// An id of `N` bytes written as `2 * N` lowercase hex digits: `trace_id`
/// (16 bytes) and `span_id` (8 bytes). All zero bytes is the invalid id, and
/// the value of a default-constructed one.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads
/// (a plain value).
///
/// Propagation: a value; carries no context.
///
/// Errors: none; nothing throws but `to_string()` (std::bad_alloc).
///
/// Example:
///   auto id = ctxexec::trace_id::from_hex("4bf92f3577b34da6a3ce929d0e0e4736");
///   assert(id && id->to_string() == "4bf92f3577b34da6a3ce929d0e0e4736");
///   assert(!ctxexec::span_id{}.is_valid());
template <std::size_t N>
class hex_id {
 public:
  /// The size in bytes and in hex digits.
  static constexpr std::size_t size = N;
  static constexpr std::size_t hex_size = 2 * N;

  /// The invalid (all-zero) id.
  constexpr hex_id() noexcept = default;

  /// The id with these bytes (all zero gives the invalid id).
  constexpr explicit hex_id(const std::array<std::uint8_t, N>& bytes) noexcept
      : bytes_(bytes) {}

  /// A random id from the calling thread's generator (xoshiro256**, seeded
  /// from the operating system; see <ctxexec/detail/random_ids.hpp>). Never
  /// the invalid id.
  [[nodiscard]] static hex_id random() noexcept {
    hex_id id;
    detail::fill_random_nonzero(id.bytes_);
    return id;
  }

  /// The id written by exactly `hex_size` lowercase hex digits, or
  /// std::nullopt for any other text and for the all-zero id.
  [[nodiscard]] static constexpr std::optional<hex_id> from_hex(
      std::string_view hex) noexcept {
    hex_id id;
    if (hex.size() != hex_size ||
        !detail::decode_lower_hex(hex.data(), id.bytes_) || !id.is_valid()) {
      return std::nullopt;
    }
    return id;
  }

  /// Whether some byte is not zero.
  [[nodiscard]] constexpr bool is_valid() const noexcept {
    for (std::uint8_t b : bytes_) {
      if (b != 0) return true;
    }
    return false;
  }

  [[nodiscard]] constexpr const std::array<std::uint8_t, N>& bytes()
      const noexcept {
    return bytes_;
  }

  /// Writes the `hex_size` lowercase hex digits to `out`.
  constexpr void format_to(std::span<char, hex_size> out) const noexcept {
    detail::encode_lower_hex(bytes_, out.data());
  }

  /// The lowercase hex digits. Errors: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    std::string s(hex_size, '0');
    format_to(std::span<char, hex_size>(s.data(), hex_size));
    return s;
  }

  friend constexpr auto operator<=>(const hex_id&, const hex_id&) = default;

  friend std::ostream& operator<<(std::ostream& os, const hex_id& id) {
    char buf[hex_size];
    id.format_to(buf);
    return os.write(buf, hex_size);
  }

 private:
  std::array<std::uint8_t, N> bytes_{};
};

/// The 16-byte id of a whole trace.
using trace_id = hex_id<16>;
/// The 8-byte id of one span (one operation) in a trace.
using span_id = hex_id<8>;

/// The 8-bit `trace-flags` field. Level 1 defines `sampled` (0x01), Level 2
/// `random-trace-id` (0x02: at least the right-most 7 bytes of the trace id
/// are random); the other bits are reserved and sent as zero.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
/// Propagation: a value; carries no context.
/// Errors: none.
///
/// Example:
///   ctxexec::trace_flags f(0x01);
///   assert(f.sampled() && !f.random_trace_id());
///   assert(f.with_sampled(false).bits() == 0x00);
class trace_flags {
 public:
  static constexpr std::uint8_t sampled_bit = 0x01;
  static constexpr std::uint8_t random_trace_id_bit = 0x02;
  /// The bits this implementation knows (Level 2).
  static constexpr std::uint8_t known_bits = sampled_bit | random_trace_id_bit;

  /// No flag set.
  constexpr trace_flags() noexcept = default;
  constexpr explicit trace_flags(std::uint8_t bits) noexcept : bits_(bits) {}

  [[nodiscard]] constexpr std::uint8_t bits() const noexcept { return bits_; }
  [[nodiscard]] constexpr bool sampled() const noexcept {
    return (bits_ & sampled_bit) != 0;
  }
  [[nodiscard]] constexpr bool random_trace_id() const noexcept {
    return (bits_ & random_trace_id_bit) != 0;
  }
  [[nodiscard]] constexpr trace_flags with_sampled(bool on) const noexcept {
    return trace_flags(static_cast<std::uint8_t>(on ? bits_ | sampled_bit
                                                    : bits_ & ~sampled_bit));
  }
  [[nodiscard]] constexpr trace_flags with_random_trace_id(
      bool on) const noexcept {
    return trace_flags(static_cast<std::uint8_t>(
        on ? bits_ | random_trace_id_bit : bits_ & ~random_trace_id_bit));
  }
  /// These flags with the reserved bits cleared: what may be sent on.
  [[nodiscard]] constexpr trace_flags known() const noexcept {
    return trace_flags(static_cast<std::uint8_t>(bits_ & known_bits));
  }

  friend constexpr bool operator==(trace_flags, trace_flags) = default;

 private:
  std::uint8_t bits_ = 0;
};

namespace detail {

/// The fields shared by traceparent and traceresponse.
struct trace_header_fields {
  trace_id trace;
  span_id span;
  trace_flags flags;
};

inline constexpr std::size_t trace_header_size = 55;

/// Parses `version "-" trace-id "-" span-id "-" trace-flags` with the
/// versioning rules of Trace Context: OWS around the value ignored; a
/// version of two lowercase hex digits, not ff; version 00 exactly 55
/// characters; a higher version at least 55, its 00 fields parsed and more
/// data accepted only after a '-', with the unknown flags cleared; all-zero
/// ids invalid.
constexpr std::optional<trace_header_fields> parse_trace_header(
    std::string_view s) noexcept {
  s = trim_ows(s);
  if (s.size() < trace_header_size) return std::nullopt;
  const int hi = lower_hex_value(s[0]);
  const int lo = lower_hex_value(s[1]);
  if ((hi | lo) < 0) return std::nullopt;
  const int version = hi << 4 | lo;
  if (version == 0xff) return std::nullopt;
  if (version == 0 && s.size() != trace_header_size) return std::nullopt;
  if (s.size() > trace_header_size && s[trace_header_size] != '-') {
    return std::nullopt;
  }
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
  std::array<std::uint8_t, 16> trace{};
  std::array<std::uint8_t, 8> span{};
  std::array<std::uint8_t, 1> flags{};
  if (!decode_lower_hex(s.data() + 3, trace) ||
      !decode_lower_hex(s.data() + 36, span) ||
      !decode_lower_hex(s.data() + 53, flags)) {
    return std::nullopt;
  }
  trace_header_fields f{trace_id(trace), span_id(span), trace_flags(flags[0])};
  if (!f.trace.is_valid() || !f.span.is_valid()) return std::nullopt;
  if (version != 0) f.flags = f.flags.known();
  return f;
}

/// Writes version 00 of the shared shape.
constexpr void format_trace_header(
    const trace_header_fields& f,
    std::span<char, trace_header_size> out) noexcept {
  CTXEXEC_ASSERT(f.trace.is_valid() && f.span.is_valid());
  char* p = out.data();
  *p++ = '0';
  *p++ = '0';
  *p++ = '-';
  f.trace.format_to(std::span<char, trace_id::hex_size>(p, trace_id::hex_size));
  p += trace_id::hex_size;
  *p++ = '-';
  f.span.format_to(std::span<char, span_id::hex_size>(p, span_id::hex_size));
  p += span_id::hex_size;
  *p++ = '-';
  const std::uint8_t bits = f.flags.bits();
  encode_lower_hex(std::span<const std::uint8_t>(&bits, 1), p);
}

inline std::string trace_header_string(const trace_header_fields& f) {
  std::string s(trace_header_size, '0');
  format_trace_header(
      f, std::span<char, trace_header_size>(s.data(), trace_header_size));
  return s;
}

}  // namespace detail

/// The `traceparent` request header: the caller's trace id, its span id
/// (this request's parent) and its flags. Formatted as version 00.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
///
/// Propagation: a value; `trace_context::from_request()` turns it into the
/// span of the request, and `trace_context::to_traceparent()` gives the one
/// to send on.
///
/// Errors: `parse` never throws and never allocates; it returns
/// std::nullopt for an invalid header, which means "start a new trace"
/// (and ignore `tracestate`). Only `to_string()` throws (std::bad_alloc).
///
/// Example:
///   auto tp = ctxexec::traceparent::parse(
///       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
///   assert(tp && tp->flags.sampled());
///   assert(!ctxexec::traceparent::parse("ff-" + rest));  // version ff
struct traceparent {
  /// The length of a version 00 header: 55 characters.
  static constexpr std::size_t size = detail::trace_header_size;

  ctxexec::trace_id trace;
  ctxexec::span_id parent;
  trace_flags flags;

  /// Parses one `traceparent` field value (surrounding OWS ignored) by the
  /// versioning rules of Trace Context Level 1: version 00 must be exactly
  /// 55 characters; version ff is invalid; a higher version is parsed as 00
  /// with extra data allowed only after a '-', and its unknown flags
  /// cleared. Hex digits must be lowercase; all-zero ids are invalid.
  [[nodiscard]] static constexpr std::optional<traceparent> parse(
      std::string_view field) noexcept {
    auto f = detail::parse_trace_header(field);
    if (!f) return std::nullopt;
    return traceparent{f->trace, f->span, f->flags};
  }

  /// Parses the `traceparent` fields of one request. More than one field is
  /// invalid (the official test suite restarts the trace), as is none.
  [[nodiscard]] static constexpr std::optional<traceparent> parse(
      std::span<const std::string_view> fields) noexcept {
    if (fields.size() != 1) return std::nullopt;
    return parse(fields[0]);
  }

  /// Writes the 55 characters of the version 00 header to `out`.
  /// Precondition (CTXEXEC_ASSERT): both ids are valid.
  constexpr void format_to(std::span<char, size> out) const noexcept {
    detail::format_trace_header({trace, parent, flags}, out);
  }

  /// The version 00 header. Errors: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    return detail::trace_header_string({trace, parent, flags});
  }

  friend constexpr bool operator==(const traceparent&,
                                   const traceparent&) = default;
};

/// The Level 2 `traceresponse` response header: the trace id the server
/// used (a new one if it restarted the trace), the id of the server's span
/// (`child`), and its flags (`sampled`: the server may have recorded;
/// `random-trace-id`: as in traceparent). Same shape and parsing rules as
/// `traceparent`.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
/// Propagation: a value; `trace_context::to_traceresponse()` makes it.
/// Errors: as for `traceparent`.
///
/// Example:
///   res["traceresponse"] = ctxexec::current_trace.get()
///                              .to_traceresponse().to_string();
struct traceresponse {
  static constexpr std::size_t size = detail::trace_header_size;

  ctxexec::trace_id trace;
  ctxexec::span_id child;
  trace_flags flags;

  /// Parses one `traceresponse` field value, as `traceparent::parse()`.
  [[nodiscard]] static constexpr std::optional<traceresponse> parse(
      std::string_view field) noexcept {
    auto f = detail::parse_trace_header(field);
    if (!f) return std::nullopt;
    return traceresponse{f->trace, f->span, f->flags};
  }

  /// Writes the 55 characters of the version 00 header to `out`.
  /// Precondition (CTXEXEC_ASSERT): both ids are valid.
  constexpr void format_to(std::span<char, size> out) const noexcept {
    detail::format_trace_header({trace, child, flags}, out);
  }

  /// The version 00 header. Errors: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    return detail::trace_header_string({trace, child, flags});
  }

  friend constexpr bool operator==(const traceresponse&,
                                   const traceresponse&) = default;
};

/// One `key=value` member of a `tracestate` (`tracestate::member`).
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
/// Propagation: a value. Errors: none.
/// Example: `for (const auto& m : state) log(m.key, m.value);`
struct tracestate_member {
  std::string key;
  std::string value;
  friend bool operator==(const tracestate_member&,
                         const tracestate_member&) = default;
};

/// The `tracestate` header (Trace Context Level 1): up to 32 vendor entries
/// `key=value`, in order, keys unique. Immutable: `with` and `without`
/// return a new value, and copies share one list.
///
/// Keys are `(lcalpha / DIGIT) 0*255(lcalpha / DIGIT / _ - * / @)`, the
/// grammar of the current Level 1 text and of the W3C test suite (which
/// folded the multi-tenant `tenant@system` form into it). Values are 1 to
/// 256 characters in 0x20-0x7E except ',' and '=', not ending in a space.
/// Of several entries with one key, the first is kept and the later ones
/// are discarded, as the specification lets a vendor do.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads
/// (every member is const).
///
/// Propagation: a value, carried in `trace_context::state`; copied into
/// child spans without copying its entries.
///
/// Errors: `parse` never throws: an invalid header (bad key or value, a
/// member without '=', more than 32 members) and a failed allocation give
/// std::nullopt, and the header is dropped. `with` throws
/// `header_error` for a key or value outside the grammar. Others throw
/// std::bad_alloc only.
///
/// Example:
///   auto ts = ctxexec::tracestate::parse("rojo=00f067aa0ba902b7,congo=t61");
///   assert(ts && ts->get("congo") == "t61");
///   auto mine = ts->with("acme", "s1");   // "acme=s1,rojo=...,congo=t61"
class tracestate : public detail::shared_list<tracestate_member> {
 public:
  using member = tracestate_member;

  static constexpr std::size_t max_members = 32;
  static constexpr std::size_t max_value_size = 256;

  /// The empty list. Allocates nothing.
  tracestate() noexcept = default;

  /// Parses one `tracestate` field value.
  [[nodiscard]] static std::optional<tracestate> parse(
      std::string_view field) noexcept {
    return parse(std::span<const std::string_view>(&field, 1));
  }

  /// Parses the `tracestate` fields of one request, combined in order as
  /// one list joined by ','. Empty and OWS-only members are allowed and
  /// dropped; OWS around members is ignored; leading spaces of a value are
  /// kept.
  [[nodiscard]] static std::optional<tracestate> parse(
      std::span<const std::string_view> fields) noexcept {
    try {
      std::vector<member> members;
      bool valid = true;
      detail::for_each_list_member(fields, [&](std::string_view m) {
        if (m.empty()) return true;
        const std::size_t eq = m.find('=');
        valid = eq != std::string_view::npos && members.size() < max_members;
        if (!valid) return false;
        const std::string_view key = m.substr(0, eq);
        const std::string_view value = m.substr(eq + 1);
        valid = is_valid_key(key) && is_valid_value(value);
        const bool duplicate =
            std::any_of(members.begin(), members.end(),
                        [&](const member& m) { return m.key == key; });
        if (valid && !duplicate) {
          members.push_back({std::string(key), std::string(value)});
        }
        return valid;
      });
      if (!valid) return std::nullopt;
      return tracestate(std::move(members));
    } catch (const std::bad_alloc&) {
      return std::nullopt;
    }
  }

  /// Whether `key` follows the key grammar: 1 to 256 characters of
  /// [a-z0-9_*/@-], the first a letter or a digit.
  [[nodiscard]] static constexpr bool is_valid_key(
      std::string_view key) noexcept {
    if (key.empty() || key.size() > 256) return false;
    const char first = key.front();
    if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9'))) {
      return false;
    }
    for (char c : key) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
            c == '-' || c == '*' || c == '/' || c == '@')) {
        return false;
      }
    }
    return true;
  }

  /// Whether `value` is a valid value: 1 to 256 characters of 0x20-0x7E
  /// except ',' and '=', the last not a space.
  [[nodiscard]] static constexpr bool is_valid_value(
      std::string_view value) noexcept {
    if (value.empty() || value.size() > max_value_size || value.back() == ' ') {
      return false;
    }
    for (char c : value) {
      if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
    }
    return true;
  }

  /// The value of `key`, or std::nullopt. Valid while this object (or a
  /// copy) lives.
  [[nodiscard]] std::optional<std::string_view> get(
      std::string_view key) const noexcept {
    for (const member& m : *this) {
      if (m.key == key) return std::string_view(m.value);
    }
    return std::nullopt;
  }

  /// A copy with `key=value` first and any older entry of `key` removed;
  /// the right-most entry is dropped if the list would exceed 32 (the
  /// mutation rules of Level 1).
  ///
  /// Errors: `header_error` if `key` or `value` is invalid; std::bad_alloc.
  [[nodiscard]] tracestate with(std::string_view key,
                                std::string_view value) const {
    if (!is_valid_key(key)) {
      throw header_error("tracestate: invalid key '" + std::string(key) + "'");
    }
    if (!is_valid_value(value)) {
      throw header_error("tracestate: invalid value '" + std::string(value) +
                         "' for key '" + std::string(key) + "'");
    }
    std::vector<member> members;
    members.reserve(size() + 1);
    members.push_back({std::string(key), std::string(value)});
    for (const member& m : *this) {
      if (m.key != key && members.size() < max_members) members.push_back(m);
    }
    return tracestate(std::move(members));
  }

  /// A copy without the entry of `key`. Errors: std::bad_alloc.
  [[nodiscard]] tracestate without(std::string_view key) const {
    if (!get(key)) return *this;
    return tracestate(members_except(key));
  }

  /// The header value: the entries joined by ','. Empty for the empty list
  /// (send no header then). Errors: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    return to_string(static_cast<std::size_t>(-1));
  }

  /// The header value cut to at most `max_size` characters by dropping
  /// whole entries as Level 1 says: entries longer than 128 characters
  /// first, then entries from the end. Errors: std::bad_alloc.
  [[nodiscard]] std::string to_string(std::size_t max_size) const {
    std::vector<bool> keep(size(), true);
    auto kept_size = [&] {
      std::size_t total = 0, count = 0;
      for (std::size_t i = 0; i < size(); ++i) {
        if (keep[i]) total += entry_size(begin()[i]) + (count++ != 0 ? 1 : 0);
      }
      return total;
    };
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t i = size(); i-- > 0 && kept_size() > max_size;) {
        if (pass == 0 && entry_size(begin()[i]) <= 128) continue;
        keep[i] = false;
      }
    }
    std::string s;
    for (std::size_t i = 0; i < size(); ++i) {
      if (!keep[i]) continue;
      if (!s.empty()) s += ',';
      s += begin()[i].key;
      s += '=';
      s += begin()[i].value;
    }
    return s;
  }

 private:
  explicit tracestate(std::vector<member> members)
      : shared_list(std::move(members)) {}

  static std::size_t entry_size(const member& m) noexcept {
    return m.key.size() + 1 + m.value.size();
  }
};

/// One span of a trace as this process sees it: the value of
/// `current_trace`. `span` is the id of the current operation, `parent` the
/// span it was called from (the incoming `parent-id`; invalid for a trace
/// started here), `flags` and `state` what is sent on.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
///
/// Propagation: a value. Set it in `current_trace` when a request starts;
/// the context carries it into everything that runs for the request. For
/// each outgoing call, make a `child()` and send its `to_traceparent()` and
/// `state.to_string()`.
///
/// Errors: nothing throws; ids come from the per-thread generator.
///
/// Example:
///   auto span = ctxexec::trace_context::from_request(tp_header, ts_header);
///   auto call = span.child();            // same trace, parent == span.span
///   send("traceparent", call.to_traceparent().to_string());
struct trace_context {
  ctxexec::trace_id trace;
  ctxexec::span_id span;
  ctxexec::span_id parent;
  trace_flags flags;
  ctxexec::tracestate state;

  /// Starts a new trace: random trace and span ids, no parent, empty
  /// tracestate, `flags` with `random-trace-id` set (all 16 bytes of the
  /// trace id are random). Reserved bits of `flags` are cleared.
  [[nodiscard]] static trace_context start(trace_flags flags = {}) noexcept {
    return {ctxexec::trace_id::random(),
            ctxexec::span_id::random(),
            {},
            flags.known().with_random_trace_id(true),
            {}};
  }

  /// Continues the trace of a valid incoming `traceparent`: same trace id,
  /// a new span id, `parent` = its parent-id, its known flags (so
  /// `random-trace-id` is kept as received).
  [[nodiscard]] static trace_context continue_from(
      const traceparent& incoming, ctxexec::tracestate state = {}) noexcept {
    return {incoming.trace, ctxexec::span_id::random(), incoming.parent,
            incoming.flags.known(), std::move(state)};
  }

  /// The processing model of Trace Context for an incoming request, given
  /// all its `traceparent` and `tracestate` fields: a valid traceparent
  /// (exactly one field) is continued with its tracestate, or with an empty
  /// one if that is invalid; otherwise a new trace is started with
  /// `new_trace_flags` and the tracestate is ignored.
  [[nodiscard]] static trace_context from_request(
      std::span<const std::string_view> traceparent_fields,
      std::span<const std::string_view> tracestate_fields,
      trace_flags new_trace_flags = {}) noexcept {
    const auto incoming = traceparent::parse(traceparent_fields);
    if (!incoming) return start(new_trace_flags);
    return continue_from(
        *incoming,
        tracestate::parse(tracestate_fields).value_or(ctxexec::tracestate()));
  }

  /// As above, for a request with at most one field of each; an empty
  /// `traceparent_field` means none was received.
  [[nodiscard]] static trace_context from_request(
      std::string_view traceparent_field,
      std::string_view tracestate_field = {},
      trace_flags new_trace_flags = {}) noexcept {
    return from_request(
        std::span<const std::string_view>(&traceparent_field, 1),
        std::span<const std::string_view>(&tracestate_field, 1),
        new_trace_flags);
  }

  /// A child span for an outgoing call: same trace, flags and tracestate, a
  /// new span id, `parent` = this span.
  [[nodiscard]] trace_context child() const noexcept {
    return {trace, ctxexec::span_id::random(), span, flags, state};
  }

  /// Whether the trace was started here (there is no parent span).
  [[nodiscard]] bool is_root() const noexcept { return !parent.is_valid(); }

  /// The `traceparent` to send for this span: this span's id as parent-id,
  /// reserved flag bits cleared.
  [[nodiscard]] traceparent to_traceparent() const noexcept {
    return {trace, span, flags.known()};
  }

  /// The Level 2 `traceresponse` for this span (a server's own span).
  [[nodiscard]] traceresponse to_traceresponse() const noexcept {
    return {trace, span, flags.known()};
  }

  friend bool operator==(const trace_context&, const trace_context&) = default;

  /// Prints `trace=<hex> span=<hex> parent=<hex or -> flags=<hex>`, for
  /// logs and `context::for_each`.
  friend std::ostream& operator<<(std::ostream& os, const trace_context& t) {
    os << "trace=" << t.trace << " span=" << t.span << " parent=";
    if (t.parent.is_valid()) {
      os << t.parent;
    } else {
      os << '-';
    }
    const char flags[2] = {detail::lower_hex_digits[t.flags.bits() >> 4],
                           detail::lower_hex_digits[t.flags.bits() & 0xf]};
    os << " flags=";
    return os.write(flags, 2);
  }
};

/// The current span: set it when a request starts (usually from
/// `trace_context::from_request()`). It has no default: `try_get()` is
/// nullptr outside any trace.
///
/// Thread safety, Propagation and Errors: those of `context_var`.
///
/// Example:
///   auto g = ctxexec::current_trace.scoped_set(
///       ctxexec::trace_context::from_request(tp, ts));
inline context_var<trace_context> current_trace{"ctxexec.current_trace"};

/// The span for an outgoing call: a `child()` of the current span, or a new
/// trace (`trace_context::start(new_trace_flags)`) when there is none.
///
/// Thread safety: safe; reads the calling thread's current context.
/// Propagation: reads `current_trace` in the current context; sets nothing.
/// Errors: none.
///
/// Example:
///   auto call = ctxexec::make_child_span();
///   req.set("traceparent", call.to_traceparent().to_string());
///   if (!call.state.empty()) req.set("tracestate", call.state.to_string());
[[nodiscard]] inline trace_context make_child_span(
    trace_flags new_trace_flags = {}) noexcept {
  if (const trace_context* current = current_trace.try_get()) {
    return current->child();
  }
  return trace_context::start(new_trace_flags);
}

}  // namespace ctxexec

#endif  // CTXEXEC_TRACE_CONTEXT_HPP
