// ctxexec/asio/detail/strand_binding.hpp
//
// Not API. What a `context_executor` over a strand of an io_context shares
// among its copies: the strand, one copy of it per combination of the
// executor's run-time properties (blocking.never, relationship.continuation;
// made on first use), and the context object it names. It keeps the
// adaptor at 16 bytes, inside any_io_executor's small buffer, where a
// strand plus a context reference would need 40 and an allocation per
// conversion (two per hop).

#ifndef CTXEXEC_ASIO_DETAIL_STRAND_BINDING_HPP
#define CTXEXEC_ASIO_DETAIL_STRAND_BINDING_HPP

#include <ctxexec/detail/context_impl.hpp>

#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace ctxexec::detail {

/// An io_context executor with no tracked work and default run-time
/// properties: what every strand in a binding wraps.
using plain_io_executor = boost::asio::io_context::executor_type;
using plain_io_strand = boost::asio::strand<plain_io_executor>;

/// Whether T is an io_context executor with std::allocator (any work
/// tracking).
template <class T>
struct is_std_io_executor : std::false_type {};
template <std::uintptr_t Bits>
struct is_std_io_executor<
    boost::asio::io_context::basic_executor_type<std::allocator<void>, Bits>>
    : std::true_type {};

/// The index of `ex`'s run-time properties: bit 0 blocking.never, bit 1
/// relationship.continuation.
template <class IoExecutor>
unsigned runtime_properties(const IoExecutor& ex) noexcept {
  unsigned bits = 0;
  if (boost::asio::query(ex, boost::asio::execution::blocking) ==
      boost::asio::execution::blocking.never) {
    bits |= 1;
  }
  if (boost::asio::query(ex, boost::asio::execution::relationship) ==
      boost::asio::execution::relationship.continuation) {
    bits |= 2;
  }
  return bits;
}

class strand_binding {
 public:
  /// Throws std::bad_alloc.
  strand_binding(const plain_io_strand& strand, context_impl* context,
                 std::uint64_t generation)
      : context_(context), generation_(generation) {
    variants_[0].store(std::make_unique<plain_io_strand>(strand).release(),
                       std::memory_order_relaxed);
  }

  strand_binding(const strand_binding&) = delete;
  strand_binding& operator=(const strand_binding&) = delete;

  ~strand_binding() {
    for (auto& v : variants_) delete v.load(std::memory_order_relaxed);
  }

  static strand_binding* make(const plain_io_strand& strand,
                              context_impl* context, std::uint64_t generation) {
    return std::make_unique<strand_binding>(strand, context, generation)
        .release();
  }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }

  void drop_ref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  context_impl* context() const noexcept { return context_; }
  std::uint64_t generation() const noexcept { return generation_; }

  /// The strand with default run-time properties.
  const plain_io_strand& base() const noexcept {
    return *variants_[0].load(std::memory_order_relaxed);
  }

  /// The strand with run-time properties `bits` (see runtime_properties),
  /// made on first use. Throws std::bad_alloc at most.
  const plain_io_strand& variant(unsigned bits) {
    plain_io_strand* s = variants_[bits].load(std::memory_order_acquire);
    if (s != nullptr) return *s;
    namespace ex = boost::asio::execution;
    plain_io_strand v = base();
    if (bits & 1) v = boost::asio::require(v, ex::blocking.never);
    if (bits & 2) v = boost::asio::require(v, ex::relationship.continuation);
    auto* made = new plain_io_strand(std::move(v));
    if (variants_[bits].compare_exchange_strong(s, made,
                                                std::memory_order_acq_rel)) {
      return *made;
    }
    delete made;  // another thread made it first
    return *s;
  }

 private:
  std::atomic<std::size_t> refs_{1};
  context_impl* const context_;
  const std::uint64_t generation_;
  std::array<std::atomic<plain_io_strand*>, 4> variants_{};
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_ASIO_DETAIL_STRAND_BINDING_HPP
