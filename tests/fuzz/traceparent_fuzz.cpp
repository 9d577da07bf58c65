// Fuzz target: traceparent and traceresponse. A valid header formats back
// to 55 characters that parse to the same value (and, for version 00, are
// the input without its OWS); the span built from it sends the same trace.

#include <ctxexec/trace_context.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using ctxexec::traceparent;
  using ctxexec::traceresponse;
  const std::string_view text = ctxexec_fuzz::as_text(data, size);

  const auto tp = traceparent::parse(text);
  const auto tr = traceresponse::parse(text);
  CTXEXEC_FUZZ_CHECK(tp.has_value() == tr.has_value());
  if (tp) {
    CTXEXEC_FUZZ_CHECK(tp->trace.is_valid() && tp->parent.is_valid());
    char buf[traceparent::size];
    tp->format_to(buf);
    const std::string_view formatted(buf, sizeof buf);
    const auto again = traceparent::parse(formatted);
    CTXEXEC_FUZZ_CHECK(again && *again == *tp);
    CTXEXEC_FUZZ_CHECK(tp->to_string() == formatted);
    if (ctxexec::detail::trim_ows(text).substr(0, 2) == "00") {
      CTXEXEC_FUZZ_CHECK(ctxexec::detail::trim_ows(text) == formatted);
    }
    CTXEXEC_FUZZ_CHECK(tr->trace == tp->trace && tr->child == tp->parent &&
                       tr->flags == tp->flags);
    CTXEXEC_FUZZ_CHECK(traceresponse::parse(tr->to_string()) == tr);
  }

  // The processing model over the input as several fields.
  const auto fields = ctxexec_fuzz::as_fields(text);
  const std::span<const std::string_view> all(fields);
  const auto span =
      ctxexec::trace_context::from_request(all.first(1), all.subspan(1));
  CTXEXEC_FUZZ_CHECK(span.trace.is_valid() && span.span.is_valid());
  const auto first = traceparent::parse(fields[0]);
  CTXEXEC_FUZZ_CHECK(span.is_root() == !first);
  if (first) {
    CTXEXEC_FUZZ_CHECK(span.trace == first->trace &&
                       span.parent == first->parent);
  }
  const auto out = span.child().to_traceparent();
  CTXEXEC_FUZZ_CHECK(traceparent::parse(out.to_string()) == out);
  CTXEXEC_FUZZ_CHECK((out.flags.bits() & ~ctxexec::trace_flags::known_bits) ==
                     0);
  return 0;
}
