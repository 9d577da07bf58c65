// ctxexec/detail/random_ids.hpp: the per-thread generator of trace and span
// ids. Not part of the public API.
//
// Each thread owns a xoshiro256** generator (Blackman and Vigna), seeded on
// first use with 128 bits from the operating system expanded by splitmix64.
// On Linux with libstdc++ the seed comes from `std::random_device` with the
// "getentropy" token, which calls getrandom(2): the kernel's CSPRNG, with no
// file descriptor. Elsewhere, or if that token is unavailable, it comes from
// the default `std::random_device` (with libstdc++ on x86 that is the CPU's
// RDSEED or RDRAND instruction where present, else /dev/urandom). If no
// random_device works at all, the seed is mixed from the clock, the thread
// id and addresses; ids are then unique but predictable.
//
// The generator is not cryptographically secure: ids must be unique, not
// secret. A forked child keeps its parent's state for a thread that already
// drew ids, and would repeat them; fork before drawing ids, or exec.

#ifndef CTXEXEC_DETAIL_RANDOM_IDS_HPP
#define CTXEXEC_DETAIL_RANDOM_IDS_HPP

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <thread>

namespace ctxexec::detail {

/// splitmix64 (Steele, Lea and Flood): expands a seed into well-mixed words.
inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// xoshiro256**: 256 bits of state, period 2^256 - 1, passes BigCrush.
class xoshiro256ss {
 public:
  /// Seeds the four state words from `seed` through splitmix64, so that the
  /// state is never all zero.
  explicit xoshiro256ss(std::array<std::uint64_t, 2> seed) noexcept {
    std::uint64_t sm = seed[0];
    for (std::uint64_t& word : s_) word = splitmix64(sm) ^ seed[1];
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
  }

  std::uint64_t operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }

  std::array<std::uint64_t, 4> s_;
};

/// 128 bits of seed from `rd`.
inline std::array<std::uint64_t, 2> draw_seed(std::random_device& rd) {
  std::array<std::uint64_t, 2> seed{};
  for (std::uint64_t& word : seed) {
    word = (std::uint64_t{rd()} << 32) ^ std::uint64_t{rd()};
  }
  return seed;
}

/// A seed from the operating system; see the banner for the sources.
inline std::array<std::uint64_t, 2> os_seed() noexcept {
#if defined(__linux__) && defined(__GLIBCXX__)
  try {
    std::random_device rd("getentropy");
    return draw_seed(rd);
  } catch (...) {
    // fall through to the default device
  }
#endif
  try {
    std::random_device rd;
    return draw_seed(rd);
  } catch (...) {
    // fall through to the last resort
  }
  static thread_local int anchor;
  const auto now = static_cast<std::uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  const auto wall = static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count());
  const auto tid = static_cast<std::uint64_t>(
      std::hash<std::thread::id>{}(std::this_thread::get_id()));
  return {now ^ (tid << 1), wall ^ reinterpret_cast<std::uintptr_t>(&anchor)};
}

/// The calling thread's generator, seeded on first use.
inline xoshiro256ss& thread_id_generator() noexcept {
  static thread_local xoshiro256ss generator(os_seed());
  return generator;
}

/// Fills `out` with random bytes, never all zero.
template <std::size_t N>
void fill_random_nonzero(std::array<std::uint8_t, N>& out) noexcept {
  xoshiro256ss& g = thread_id_generator();
  for (;;) {
    std::uint8_t any = 0;
    for (std::size_t i = 0; i < N; i += 8) {
      std::uint64_t word = g();
      for (std::size_t j = i; j < N && j < i + 8; ++j) {
        out[j] = static_cast<std::uint8_t>(word);
        any |= out[j];
        word >>= 8;
      }
    }
    if (any != 0) return;
  }
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_RANDOM_IDS_HPP
