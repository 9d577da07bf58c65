// tests/fuzz/fuzz_check.hpp: what the fuzz targets share. Each target
// defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer
// (-fsanitize=fuzzer, CTXEXEC_BUILD_FUZZERS) or with replay_main.cpp, which
// runs it over the seed corpus as an ordinary test.

#ifndef CTXEXEC_TESTS_FUZZ_FUZZ_CHECK_HPP
#define CTXEXEC_TESTS_FUZZ_FUZZ_CHECK_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

/// CTXEXEC_FUZZ_CHECK(cond): aborts with the condition's text when it is
/// false, in every build (libFuzzer then saves the input).
#define CTXEXEC_FUZZ_CHECK(cond)                                            \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                  \
      std::abort();                                                         \
    }                                                                       \
  } while (false)

namespace ctxexec_fuzz {

/// The input as text.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The input split at '\n' into the fields of one header received several
/// times.
inline std::vector<std::string_view> as_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  for (;;) {
    const std::size_t nl = text.find('\n');
    fields.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) return fields;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace ctxexec_fuzz

#endif  // CTXEXEC_TESTS_FUZZ_FUZZ_CHECK_HPP
