// ctxexec/baggage.hpp
//
// Defines W3C Baggage for the core: `baggage`, an immutable list of
// `key=value;property` members that copies in O(1); `baggage::parse()` with
// its result `baggage_parse_result`, its errors `baggage_errc` and its
// `baggage_policy`; and the context variable `current_baggage`.
//
// Example:
//   auto in = ctxexec::baggage::parse(req.fields("baggage"));
//   auto g = ctxexec::current_baggage.scoped_set(in.value.with("tenant", "a"));
//   out["baggage"] = ctxexec::current_baggage.get().to_string();  // limits
//
// Invalid input: parsing never throws. An invalid header is reported in the
// result's `error`; by default (`baggage_policy::reject_header`) the whole
// header is then dropped, with `drop_invalid_members` only the invalid
// members are. `with()` throws `header_error` for a key that is not a token.

#ifndef CTXEXEC_BAGGAGE_HPP
#define CTXEXEC_BAGGAGE_HPP

#include <ctxexec/context_var.hpp>
#include <ctxexec/detail/header_text.hpp>
#include <ctxexec/detail/percent_codec.hpp>
#include <ctxexec/detail/shared_list.hpp>
#include <ctxexec/errors.hpp>

#include <cstddef>
#include <new>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctxexec {

/// Why a `baggage` header, or one of its members, is invalid.
///
/// Thread safety: a plain enumeration. Errors: none.
/// Example: `if (r.error == ctxexec::baggage_errc::invalid_value) { ... }`
enum class baggage_errc {
  /// Valid.
  ok = 0,
  /// A member without '=' (a value is required, though it may be empty).
  missing_equals,
  /// A member key that is not an RFC 9110 token (empty, or with a
  /// separator such as a space or '@' inside).
  invalid_key,
  /// A value with a character outside baggage-octet, or a '%' not followed
  /// by two hex digits.
  invalid_value,
  /// An empty property (`k=v;`), or a property whose key is not a token or
  /// whose value is invalid.
  invalid_property,
  /// Memory ran out while parsing; nothing was kept.
  out_of_memory,
};

/// What `baggage::parse()` does with an invalid member (the specification
/// leaves it open).
///
/// Thread safety: a plain enumeration. Errors: none.
/// Example: `baggage::parse(h, ctxexec::baggage_policy::drop_invalid_members)`
enum class baggage_policy {
  /// Drop the whole header: the result holds no member.
  reject_header,
  /// Drop the invalid members and keep the others.
  drop_invalid_members,
};

struct baggage_parse_result;

/// A property of a `baggage` member (`baggage::property`): `;key` (no
/// value) or `;key=value` (value decoded).
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
/// Propagation: a value. Errors: none.
/// Example: `baggage::property{"ttl", "60"}` is sent as `;ttl=60`.
struct baggage_property {
  std::string key;
  std::optional<std::string> value;
  friend bool operator==(const baggage_property&,
                         const baggage_property&) = default;
};

/// A list member of a `baggage` (`baggage::member`): key, decoded value,
/// properties in order.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
/// Propagation: a value. Errors: none.
/// Example: `b.with(baggage::member{"userId", "alice", {{"ttl", "60"}}})`
struct baggage_member {
  std::string key;
  std::string value;
  std::vector<baggage_property> properties;
  friend bool operator==(const baggage_member&,
                         const baggage_member&) = default;
};

/// The baggage of a request: an ordered list of members `key=value` with
/// optional properties `;key` or `;key=value`, values held decoded (UTF-8).
///
/// Immutable: `with` and `without` return a new baggage; copies share one
/// list, so copying a baggage, or a context holding one, copies no entry.
/// Duplicate keys may be received and are kept in order; `get` and `find`
/// see the last one, `with` and `without` replace or remove them all.
///
/// Limits: `to_string()` sends at most 64 members and 8192 bytes: it drops
/// whole members that would go over, never part of one. `parse` keeps, in
/// order, the members that fit the same limits and counts the others.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads
/// (every member is const).
///
/// Propagation: a value, carried by `current_baggage`; a copied context
/// shares it.
///
/// Errors: `parse` never throws (see `baggage_parse_result`); `with`
/// throws `header_error` for a key that is not a token; everything else
/// that allocates throws std::bad_alloc only.
///
/// Example:
///   auto r = ctxexec::baggage::parse("userId=alice,serverNode=DF%2028");
///   assert(r.ok() && r.value.get("serverNode") == "DF 28");
///   auto b = r.value.with("isProduction", "false");
///   assert(b.to_string() ==
///   "userId=alice,serverNode=DF%2028,isProduction=false");
class baggage : public detail::shared_list<baggage_member> {
 public:
  using property = baggage_property;
  using member = baggage_member;

  /// The limits the specification requires a platform to propagate.
  static constexpr std::size_t max_members = 64;
  static constexpr std::size_t max_size = 8192;

  /// The empty baggage. Allocates nothing.
  baggage() noexcept = default;

  /// Parses one `baggage` field value; see the overload for all fields.
  [[nodiscard]] static baggage_parse_result parse(
      std::string_view field,
      baggage_policy policy = baggage_policy::reject_header) noexcept;

  /// Parses the `baggage` fields of one request, combined in order as one
  /// list joined by ','. OWS around members, keys, values and properties is
  /// ignored; empty and OWS-only members are dropped. Values and property
  /// values are percent-decoded, invalid UTF-8 becoming U+FFFD. Keys are
  /// kept as received (they are tokens, never decoded).
  [[nodiscard]] static baggage_parse_result parse(
      std::span<const std::string_view> fields,
      baggage_policy policy = baggage_policy::reject_header) noexcept;

  /// Whether `key` can be a member or property key: an RFC 9110 token.
  [[nodiscard]] static constexpr bool is_valid_key(
      std::string_view key) noexcept {
    return detail::is_token(key);
  }

  /// The last member with `key`, or nullptr. Valid while this baggage (or a
  /// copy) lives.
  [[nodiscard]] const member* find(std::string_view key) const noexcept {
    for (const member* m = end(); m != begin();) {
      if ((--m)->key == key) return m;
    }
    return nullptr;
  }

  /// The value of the last member with `key`, or std::nullopt.
  [[nodiscard]] std::optional<std::string_view> get(
      std::string_view key) const noexcept {
    const member* m = find(key);
    if (m == nullptr) return std::nullopt;
    return std::string_view(m->value);
  }

  /// A copy where `key` has `value` and no property: every older member of
  /// `key` is removed, the new one is last. `value` is any text; invalid
  /// UTF-8 in it is replaced by U+FFFD, as a receiver would decode it.
  ///
  /// Errors: `header_error` if `key` is not a token; std::bad_alloc.
  [[nodiscard]] baggage with(std::string_view key,
                             std::string_view value) const {
    return with(member{std::string(key), std::string(value), {}});
  }

  /// A copy with `m` as its last member and every older member of
  /// `m.key` removed. Values are sanitized as above.
  ///
  /// Errors: `header_error` if the key or a property key is not a token;
  /// std::bad_alloc.
  [[nodiscard]] baggage with(member m) const {
    check_key(m.key);
    m.value = sanitized(m.value);
    for (property& p : m.properties) {
      check_key(p.key);
      if (p.value) p.value = sanitized(*p.value);
    }
    std::vector<member> members = members_except(m.key);
    members.push_back(std::move(m));
    return baggage(std::move(members));
  }

  /// A copy without any member of `key`. Errors: std::bad_alloc.
  [[nodiscard]] baggage without(std::string_view key) const {
    if (find(key) == nullptr) return *this;
    return baggage(members_except(key));
  }

  /// The header value, values percent-encoded (every byte outside
  /// baggage-octet, and '%', as %XX). Members are taken in order while the
  /// result stays within 64 members and 8192 bytes; a member that would go
  /// over is dropped whole and later ones are still tried. Empty when there
  /// is nothing to send. Errors: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    std::string s;
    std::size_t count = 0;
    for (const member& m : *this) {
      if (!fits(count, s.size(), m)) continue;
      if (count++ != 0) s += ',';
      s += m.key;
      s += '=';
      detail::percent_encode(m.value, s);
      for (const property& p : m.properties) {
        s += ';';
        s += p.key;
        if (p.value) {
          s += '=';
          detail::percent_encode(*p.value, s);
        }
      }
    }
    return s;
  }

  /// Prints the header value (for logs and `context::for_each`).
  friend std::ostream& operator<<(std::ostream& os, const baggage& b) {
    return os << b.to_string();
  }

 private:
  explicit baggage(std::vector<member> members)
      : shared_list(std::move(members)) {}

  static void check_key(const std::string& key) {
    if (!is_valid_key(key)) {
      throw header_error("baggage: key '" + key + "' is not a token");
    }
  }

  static std::string sanitized(const std::string& s) {
    std::string out;
    detail::append_utf8_sanitized(out, s);
    return out;
  }

  /// The size of `m` once encoded.
  static std::size_t encoded_size(const member& m) noexcept {
    std::size_t n = m.key.size() + 1 + detail::percent_encoded_size(m.value);
    for (const property& p : m.properties) {
      n += 1 + p.key.size();
      if (p.value) n += 1 + detail::percent_encoded_size(*p.value);
    }
    return n;
  }

  /// Whether `m` fits after `count` members taking `size` bytes.
  static bool fits(std::size_t count, std::size_t size,
                   const member& m) noexcept {
    return count < max_members &&
           size + (count != 0 ? 1 : 0) + encoded_size(m) <= max_size;
  }

  /// Parses one list member (trimmed, not empty) into `out`.
  static baggage_errc parse_member(std::string_view text, member& out);
};

/// What `baggage::parse()` found: the baggage to use, whether the header
/// was valid, and what was left out.
///
/// Thread safety: distinct objects: safe; shared objects: safe for reads.
/// Propagation: a value; set `value` in `current_baggage` to propagate it.
/// Errors: none.
///
/// Example:
///   auto r = ctxexec::baggage::parse(h);
///   if (!r.ok()) log("baggage dropped: ", static_cast<int>(r.error));
///   auto g = ctxexec::current_baggage.scoped_set(r.value);
struct baggage_parse_result {
  /// The members kept: all valid members within the limits, or none if the
  /// header was rejected.
  ctxexec::baggage value;
  /// The first error found, or `baggage_errc::ok`.
  baggage_errc error = baggage_errc::ok;
  /// Invalid members (with `reject_header`, 1 when the header was
  /// rejected: parsing stops at the first).
  std::size_t invalid_members = 0;
  /// Valid members left out because they did not fit 64 members and 8192
  /// bytes.
  std::size_t dropped_members = 0;

  /// Whether the header was valid (members may still have been dropped by
  /// the limits).
  [[nodiscard]] bool ok() const noexcept { return error == baggage_errc::ok; }
};

inline baggage_parse_result baggage::parse(std::string_view field,
                                           baggage_policy policy) noexcept {
  return parse(std::span<const std::string_view>(&field, 1), policy);
}

inline baggage_parse_result baggage::parse(
    std::span<const std::string_view> fields, baggage_policy policy) noexcept {
  baggage_parse_result r;
  try {
    std::vector<member> members;
    std::size_t size = 0;
    member m;
    detail::for_each_list_member(fields, [&](std::string_view text) {
      if (text.empty()) return true;
      const baggage_errc e = parse_member(text, m);
      if (e != baggage_errc::ok) {
        if (r.error == baggage_errc::ok) r.error = e;
        ++r.invalid_members;
        return policy == baggage_policy::drop_invalid_members;
      }
      if (!fits(members.size(), size, m)) {
        ++r.dropped_members;
        return true;
      }
      size += (members.empty() ? 0 : 1) + encoded_size(m);
      members.push_back(std::move(m));
      m = member();
      return true;
    });
    if (r.error == baggage_errc::ok ||
        policy == baggage_policy::drop_invalid_members) {
      r.value = baggage(std::move(members));
    }
  } catch (const std::bad_alloc&) {
    r.value = baggage();
    r.error = baggage_errc::out_of_memory;
  }
  return r;
}

inline baggage_errc baggage::parse_member(std::string_view text, member& out) {
  std::size_t semi = text.find(';');
  const std::string_view head = text.substr(0, semi);
  const std::size_t eq = head.find('=');
  if (eq == std::string_view::npos) return baggage_errc::missing_equals;
  out.key = detail::trim_ows(head.substr(0, eq));
  if (!is_valid_key(out.key)) return baggage_errc::invalid_key;
  if (!detail::percent_decode(detail::trim_ows(head.substr(eq + 1)),
                              out.value)) {
    return baggage_errc::invalid_value;
  }
  out.properties.clear();
  while (semi != std::string_view::npos) {
    text.remove_prefix(semi + 1);
    semi = text.find(';');
    const std::string_view p = detail::trim_ows(text.substr(0, semi));
    const std::size_t peq = p.find('=');
    property prop{std::string(detail::trim_ows(p.substr(0, peq))), {}};
    if (!is_valid_key(prop.key)) return baggage_errc::invalid_property;
    if (peq != std::string_view::npos) {
      prop.value.emplace();
      if (!detail::percent_decode(detail::trim_ows(p.substr(peq + 1)),
                                  *prop.value)) {
        return baggage_errc::invalid_property;
      }
    }
    out.properties.push_back(std::move(prop));
  }
  return baggage_errc::ok;
}

/// The current baggage; the empty baggage by default.
///
/// Thread safety, Propagation and Errors: those of `context_var`.
///
/// Example:
///   auto g = ctxexec::current_baggage.scoped_set(
///       ctxexec::current_baggage.get().with("tenant", "acme"));
inline context_var<baggage> current_baggage{"ctxexec.current_baggage",
                                            baggage()};

}  // namespace ctxexec

#endif  // CTXEXEC_BAGGAGE_HPP
