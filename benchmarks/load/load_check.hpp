// load_check.hpp: what the load client (load_client.cpp, target
// ctxexec_load) checks in every response of the demo server's contract
// (issue 10): the status, the traceresponse header, and that the JSON body
// carries the request's own trace id and user id, at every level of
// /chain's nested "upstream" objects.
//
// It uses its own small parsing (Boost.JSON for the body), never ctxexec's
// trace parsers, so that a bug there cannot hide itself.
//
// Thread safety: check_response is a pure function; concurrent calls are
// safe. Its JSON parse allocates in a stack buffer, and on the heap only
// for a body over a few KiB.
//
// The translation unit that defines main() must include
// <boost/json/src.hpp> once (Boost.JSON header-only).

#ifndef CTXEXEC_BENCHMARKS_LOAD_LOAD_CHECK_HPP
#define CTXEXEC_BENCHMARKS_LOAD_LOAD_CHECK_HPP

#include <boost/json.hpp>

#include <array>
#include <cstddef>
#include <string_view>

namespace ctxexec_load {

/// What one request sent, and so what its response must carry.
struct request_ids {
  std::string_view trace_id;  ///< 32 lowercase hex digits, as sent
  std::string_view user_id;   ///< the x-user-id header, as sent
  int upstream_depth = 0;     ///< /chain?hops=K: K nested "upstream" objects
};

/// The verdict on one response; `ok` is a match, the rest say why not.
enum class check_errc {
  ok,
  bad_status,              ///< not 200
  no_traceresponse,        ///< no traceresponse header, or not parseable
  traceresponse_mismatch,  ///< its trace id is not the request's
  bad_json,                ///< the body is not a JSON object
  missing_field,           ///< route, trace_id, span_id, parent_id,
                           ///< user_id or thread missing or not a string
  trace_mismatch,          ///< trace_id is not the request's
  user_mismatch,           ///< user_id is not the request's
  upstream_missing,        ///< fewer or more "upstream" levels than hops
  upstream_mismatch,       ///< an upstream's trace_id or user_id differs
};
inline constexpr std::size_t check_errc_count = 10;

/// The stable name of a verdict, used as a key in the JSON results.
constexpr std::string_view to_string(check_errc e) noexcept {
  constexpr std::array<std::string_view, check_errc_count> names = {
      "ok",
      "bad_status",
      "no_traceresponse",
      "traceresponse_mismatch",
      "bad_json",
      "missing_field",
      "trace_mismatch",
      "user_mismatch",
      "upstream_missing",
      "upstream_mismatch"};
  return names[static_cast<std::size_t>(e)];
}

/// True for a verdict that counts as an error (the server failed the
/// request) rather than as a propagation mismatch.
constexpr bool is_error(check_errc e) noexcept {
  return e == check_errc::bad_status || e == check_errc::bad_json;
}

namespace detail {

constexpr bool is_lower_hex(std::string_view s) noexcept {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

/// The trace id of a traceresponse `00-<32 hex>-<16 hex>-<2 hex>`, or an
/// empty view when the value does not have that shape.
constexpr std::string_view traceresponse_trace_id(
    std::string_view value) noexcept {
  if (value.size() != 55 || value[2] != '-' || value[35] != '-' ||
      value[52] != '-')
    return {};
  if (!is_lower_hex(value.substr(0, 2)) || !is_lower_hex(value.substr(3, 32)) ||
      !is_lower_hex(value.substr(36, 16)) || !is_lower_hex(value.substr(53)))
    return {};
  return value.substr(3, 32);
}

inline const boost::json::string* string_field(const boost::json::object& o,
                                               std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_string() : nullptr;
}

/// Checks one JSON level: the contract's fields, the ids, then its upstream
/// (`depth` more levels expected below this one).
inline check_errc check_level(const boost::json::object& o,
                              const request_ids& ids, int depth, bool nested) {
  const boost::json::string* trace = nullptr;
  const boost::json::string* user = nullptr;
  for (std::string_view key :
       {"route", "trace_id", "span_id", "parent_id", "user_id", "thread"}) {
    const auto* s = string_field(o, key);
    if (!s) return check_errc::missing_field;
    if (key == "trace_id") trace = s;
    if (key == "user_id") user = s;
  }
  if (std::string_view(*trace) != ids.trace_id)
    return nested ? check_errc::upstream_mismatch : check_errc::trace_mismatch;
  if (std::string_view(*user) != ids.user_id)
    return nested ? check_errc::upstream_mismatch : check_errc::user_mismatch;
  const auto* upstream = o.if_contains("upstream");
  if (depth == 0)
    return upstream ? check_errc::upstream_missing : check_errc::ok;
  if (!upstream || !upstream->is_object()) return check_errc::upstream_missing;
  return check_level(upstream->get_object(), ids, depth - 1, true);
}

}  // namespace detail

/// Checks one response against the request that asked for it.
inline check_errc check_response(const request_ids& ids, unsigned status,
                                 std::string_view traceresponse,
                                 std::string_view body) {
  if (status != 200) return check_errc::bad_status;
  std::string_view tr_trace = detail::traceresponse_trace_id(traceresponse);
  if (tr_trace.empty()) return check_errc::no_traceresponse;
  if (tr_trace != ids.trace_id) return check_errc::traceresponse_mismatch;
  unsigned char scratch[4096];  // the parse allocates here first
  boost::json::monotonic_resource memory(scratch, sizeof scratch);
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(body, ec, &memory);
  if (ec || !v.is_object()) return check_errc::bad_json;
  return detail::check_level(v.get_object(), ids, ids.upstream_depth, false);
}

}  // namespace ctxexec_load

#endif  // CTXEXEC_BENCHMARKS_LOAD_LOAD_CHECK_HPP
