// Fuzz target: baggage. The input is split at '\n' into several fields; its
// first byte picks the policy. Whatever is kept serializes within the limits
// to text that parses, without error or loss, to the same baggage.

#include <ctxexec/baggage.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using ctxexec::baggage;
  using ctxexec::baggage_errc;
  const auto policy = size != 0 && (data[0] & 1)
                          ? ctxexec::baggage_policy::drop_invalid_members
                          : ctxexec::baggage_policy::reject_header;
  const auto fields =
      ctxexec_fuzz::as_fields(ctxexec_fuzz::as_text(data, size));
  const auto r =
      baggage::parse(std::span<const std::string_view>(fields), policy);
  CTXEXEC_FUZZ_CHECK(r.error != baggage_errc::out_of_memory);
  CTXEXEC_FUZZ_CHECK(r.ok() == (r.invalid_members == 0));
  if (!r.ok() && policy == ctxexec::baggage_policy::reject_header) {
    CTXEXEC_FUZZ_CHECK(r.value.empty() && r.invalid_members == 1);
  }
  CTXEXEC_FUZZ_CHECK(r.value.size() <= baggage::max_members);

  const std::string text = r.value.to_string();
  CTXEXEC_FUZZ_CHECK(text.size() <= baggage::max_size);
  const auto again = baggage::parse(text);
  CTXEXEC_FUZZ_CHECK(again.ok() && again.dropped_members == 0);
  CTXEXEC_FUZZ_CHECK(again.value == r.value);
  CTXEXEC_FUZZ_CHECK(again.value.to_string() == text);

  // Re-setting each member keeps it (values are already valid UTF-8).
  for (const auto& m : r.value) {
    const baggage one = baggage().with(m);
    CTXEXEC_FUZZ_CHECK(one.size() == 1 && *one.begin() == m);
    CTXEXEC_FUZZ_CHECK(r.value.get(m.key).has_value());
  }
  return 0;
}
