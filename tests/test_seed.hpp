// tests/test_seed.hpp: the seed of a randomized test, taken from an
// environment variable when it is set (to replay a run), random otherwise,
// and printed either way.

#ifndef CTXEXEC_TESTS_TEST_SEED_HPP
#define CTXEXEC_TESTS_TEST_SEED_HPP

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>

namespace ctxexec_test {

inline std::uint64_t test_seed(const char* env, const char* test) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv(env)) seed = std::strtoull(s, nullptr, 10);
  std::cout << "[ " << test << " ] seed " << seed << " (set " << env
            << " to replay)\n";
  return seed;
}

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_TEST_SEED_HPP
