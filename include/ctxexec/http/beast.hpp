// ctxexec/http/beast.hpp
//
// Defines the Boost.Beast adapters of W3C Trace Context and Baggage:
// `extract_trace_context()` and `extract_baggage()` read an incoming
// request's headers (several fields of one name are combined, as the
// specifications say), `enter_request()` sets them in `current_trace` and
// `current_baggage`, `inject()` writes an outgoing client request's
// `traceparent` (a child span), `tracestate` and `baggage`, and
// `set_traceresponse()` writes a response's Level 2 `traceresponse`.
//
// Example:
//   // server side, in the request's own context
//   ctxexec::http::enter_request(req);
//   ...
//   ctxexec::http::set_traceresponse(res);
//   // client side, anywhere below
//   http::request<http::empty_body> out{http::verb::get, "/x", 11};
//   ctxexec::http::inject(out);
//
// Invalid input never throws: an invalid traceparent starts a new trace,
// an invalid tracestate is dropped, an invalid baggage is dropped (by the
// default policy).

#ifndef CTXEXEC_HTTP_BEAST_HPP
#define CTXEXEC_HTTP_BEAST_HPP

#include <ctxexec/baggage.hpp>
#include <ctxexec/http/detail/field_values.hpp>
#include <ctxexec/trace_context.hpp>

#include <boost/beast/http/fields.hpp>

#include <array>
#include <string>
#include <string_view>

namespace ctxexec::http {

/// The span for an incoming request with these header `fields` (a Beast
/// `request` or its `basic_fields`): the trace of a valid `traceparent`
/// (exactly one field) continued with a new span id and its `tracestate`
/// (dropped if invalid, several fields combined), else a new trace.
///
/// Thread safety: reads `fields` only. Propagation: sets nothing.
/// Errors: none; allocates only to keep tracestate entries (and for more
/// than four fields of one name).
///
/// Example: `auto span = ctxexec::http::extract_trace_context(req);`
template <class Fields>
[[nodiscard]] trace_context extract_trace_context(const Fields& fields) {
  const detail::field_values parents(fields, "traceparent");
  if (parents.span().empty()) return trace_context::start();
  const detail::field_values states(fields, "tracestate");
  return trace_context::from_request(parents.span(), states.span());
}

/// The baggage of these header `fields`, all `baggage` fields combined.
///
/// Thread safety: reads `fields` only. Propagation: sets nothing.
/// Errors: none: an invalid header is reported in the result (and its
/// members dropped by `policy`).
///
/// Example:
///   auto r = ctxexec::http::extract_baggage(req);
///   if (!r.ok()) log("baggage dropped");
template <class Fields>
[[nodiscard]] baggage_parse_result extract_baggage(
    const Fields& fields,
    baggage_policy policy = baggage_policy::reject_header) {
  const detail::field_values values(fields, "baggage");
  if (values.span().empty()) return {};
  return baggage::parse(values.span(), policy);
}

/// Sets `current_trace` to `extract_trace_context(fields)` and
/// `current_baggage` to the extracted baggage, in the current context, and
/// returns the baggage's parse result (to log a rejected header). Call it
/// in the request's own context (a middleware under `serve_request()`):
/// the values stay until that context is dropped.
///
/// Thread safety: as `context_var::set`. Propagation: writes the current
/// context. Errors: std::bad_alloc.
///
/// Example: `ctxexec::http::enter_request(req);  // first middleware`
template <class Fields>
baggage_parse_result enter_request(
    const Fields& fields,
    baggage_policy policy = baggage_policy::reject_header) {
  (void)current_trace.set(extract_trace_context(fields));
  baggage_parse_result bag = extract_baggage(fields, policy);
  // Without baggage, and none current (a new request's copy), there is
  // nothing to set: the variable's default is the empty baggage.
  if (!bag.value.empty() || !current_baggage.get().empty()) {
    (void)current_baggage.set(bag.value);
  }
  return bag;
}

/// Writes the propagation headers of an outgoing request for the span
/// `call` (usually a fresh `make_child_span()`): `traceparent`,
/// `tracestate` (when not empty, at most 512 characters, cut as Trace
/// Context says) and `baggage` (when not empty, within its limits).
/// Fields of those names already present are replaced.
///
/// Thread safety: writes `fields` only. Propagation: reads nothing.
/// Errors: std::bad_alloc.
///
/// Example: `ctxexec::http::inject(out, span.child(), bag);`
template <class Fields>
void inject(Fields& fields, const trace_context& call, const baggage& bag) {
  std::array<char, traceparent::size> parent{};
  call.to_traceparent().format_to(parent);
  fields.set("traceparent", std::string_view(parent.data(), parent.size()));
  if (call.state.empty()) {
    fields.erase("tracestate");
  } else {
    fields.set("tracestate", call.state.to_string(512));
  }
  std::string b = bag.to_string();
  if (b.empty()) {
    fields.erase("baggage");
  } else {
    fields.set("baggage", b);
  }
}

/// `inject(fields, make_child_span(), current_baggage.get())`: the headers
/// of an outgoing call made from the current context. Returns the call's
/// span.
///
/// Thread safety: as `context_var::get`. Propagation: reads
/// `current_trace` and `current_baggage`. Errors: std::bad_alloc.
///
/// Example:
///   http::request<http::string_body> out{http::verb::post, "/cb", 11};
///   ctxexec::http::inject(out);
template <class Fields>
trace_context inject(Fields& fields) {
  trace_context call = make_child_span();
  inject(fields, call, current_baggage.get());
  return call;
}

/// Sets the `traceresponse` field (Trace Context Level 2) for the server
/// span `span`: its trace id, its own span id and its flags.
///
/// Thread safety: writes `fields` only. Propagation: none.
/// Errors: std::bad_alloc.
///
/// Example: `ctxexec::http::set_traceresponse(res, span);`
template <class Fields>
void set_traceresponse(Fields& fields, const trace_context& span) {
  std::array<char, traceresponse::size> text{};
  span.to_traceresponse().format_to(text);
  fields.set("traceresponse", std::string_view(text.data(), text.size()));
}

/// `set_traceresponse(fields, span)` for the current span; a new trace's
/// span when none is current.
///
/// Thread safety: as `context_var::get`. Propagation: reads
/// `current_trace`. Errors: std::bad_alloc.
///
/// Example: `ctxexec::http::set_traceresponse(res);`
template <class Fields>
void set_traceresponse(Fields& fields) {
  if (const trace_context* span = current_trace.try_get()) {
    set_traceresponse(fields, *span);
  } else {
    set_traceresponse(fields, trace_context::start());
  }
}

}  // namespace ctxexec::http

#endif  // CTXEXEC_HTTP_BEAST_HPP
