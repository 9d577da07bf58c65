// ctxexec/detail/shared_list.hpp: the storage of the immutable header lists
// (`tracestate`, `baggage`): one shared, never-modified vector of members,
// so that a copy costs one reference count and an update builds a new
// vector. Not part of the public API.

#ifndef CTXEXEC_DETAIL_SHARED_LIST_HPP
#define CTXEXEC_DETAIL_SHARED_LIST_HPP

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace ctxexec::detail {

/// An immutable list of `Member`s (each with a `key`); the empty list holds
/// no allocation. The base of the public list types, which add the header's
/// grammar.
template <class Member>
class shared_list {
 public:
  /// The number of members.
  [[nodiscard]] std::size_t size() const noexcept {
    return members_ ? members_->size() : 0;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  /// The members in order. Valid while this list (or a copy) lives.
  [[nodiscard]] const Member* begin() const noexcept {
    return members_ ? members_->data() : nullptr;
  }
  [[nodiscard]] const Member* end() const noexcept {
    return members_ ? members_->data() + members_->size() : nullptr;
  }

  /// Equal members in the same order.
  friend bool operator==(const shared_list& a, const shared_list& b) noexcept {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 protected:
  shared_list() noexcept = default;
  explicit shared_list(std::vector<Member> members)
      : members_(members.empty() ? nullptr
                                 : std::make_shared<const std::vector<Member>>(
                                       std::move(members))) {}

  /// A copy of the members but those whose key is `key`.
  [[nodiscard]] std::vector<Member> members_except(std::string_view key) const {
    std::vector<Member> out;
    out.reserve(size() + 1);
    for (const Member& m : *this) {
      if (m.key != key) out.push_back(m);
    }
    return out;
  }

 private:
  std::shared_ptr<const std::vector<Member>> members_;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_SHARED_LIST_HPP
