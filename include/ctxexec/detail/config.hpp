// ctxexec/detail/config.hpp: assertion macro and small portable helpers.
// Not part of the public API.

#ifndef CTXEXEC_DETAIL_CONFIG_HPP
#define CTXEXEC_DETAIL_CONFIG_HPP

#include <cassert>
#include <cstdint>

/// CTXEXEC_ASSERT(cond): checks a documented precondition in debug builds
/// (when NDEBUG is not defined) and compiles to nothing otherwise. Define it
/// before including any ctxexec header to route checks elsewhere.
#ifndef CTXEXEC_ASSERT
#define CTXEXEC_ASSERT(cond) assert(cond)
#endif

namespace ctxexec::detail {

/// Population count that stays branch-free and inline even when the target
/// has no POPCNT instruction (GCC otherwise calls into libgcc).
inline unsigned popcount32(std::uint32_t x) noexcept {
#if defined(__POPCNT__)
  return static_cast<unsigned>(__builtin_popcount(x));
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0F0F0F0Fu;
  return (x * 0x01010101u) >> 24;
#endif
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_CONFIG_HPP
