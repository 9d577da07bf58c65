// Fuzz target: tracestate. The input is split at '\n' into several fields.
// A valid list formats to text that parses to the same list; truncation
// keeps whole, valid entries within the bound; with() and without() keep
// the list valid.

#include <ctxexec/trace_context.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using ctxexec::tracestate;
  const auto fields =
      ctxexec_fuzz::as_fields(ctxexec_fuzz::as_text(data, size));
  const auto ts = tracestate::parse(std::span<const std::string_view>(fields));
  if (!ts) return 0;
  CTXEXEC_FUZZ_CHECK(ts->size() <= tracestate::max_members);
  for (const auto& m : *ts) {
    CTXEXEC_FUZZ_CHECK(tracestate::is_valid_key(m.key));
    CTXEXEC_FUZZ_CHECK(tracestate::is_valid_value(m.value));
    CTXEXEC_FUZZ_CHECK(ts->get(m.key) == m.value);
  }
  const std::string text = ts->to_string();
  const auto again = tracestate::parse(text);
  CTXEXEC_FUZZ_CHECK(again && *again == *ts);
  CTXEXEC_FUZZ_CHECK(again->to_string() == text);

  // Truncation to a bound taken from the input.
  const std::size_t bound = size == 0 ? 0 : data[0] * 4u;
  const std::string cut = ts->to_string(bound);
  CTXEXEC_FUZZ_CHECK(cut.size() <= bound || cut == text);
  const auto cut_back = tracestate::parse(cut);
  CTXEXEC_FUZZ_CHECK(cut_back && cut_back->size() <= ts->size());
  for (const auto& m : *cut_back) CTXEXEC_FUZZ_CHECK(ts->get(m.key) == m.value);

  // Mutations: the first entry moved to the front again, the last removed.
  if (!ts->empty()) {
    const auto& last = ts->end()[-1];
    const tracestate moved = ts->with(last.key, last.value);
    CTXEXEC_FUZZ_CHECK(moved.size() == ts->size());
    CTXEXEC_FUZZ_CHECK(moved.begin()->key == last.key);
    CTXEXEC_FUZZ_CHECK(tracestate::parse(moved.to_string()) == moved);
    CTXEXEC_FUZZ_CHECK(ts->without(last.key).size() == ts->size() - 1);
  }
  return 0;
}
