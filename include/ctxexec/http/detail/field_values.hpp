// ctxexec/http/detail/field_values.hpp: the values of every field of one
// name in a Beast header, as string_views, without allocating for up to
// four of them. Not part of the public API.

#ifndef CTXEXEC_HTTP_DETAIL_FIELD_VALUES_HPP
#define CTXEXEC_HTTP_DETAIL_FIELD_VALUES_HPP

#include <array>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace ctxexec::http::detail {

/// The values of the fields named `name` in `fields` (case-insensitive,
/// in order): a span valid while `fields` and this object live and are
/// unchanged.
class field_values {
 public:
  template <class Fields>
  field_values(const Fields& fields, std::string_view name) {
    auto [first, last] = fields.equal_range(name);
    for (auto it = first; it != last; ++it) {
      const auto v = it->value();
      push(std::string_view(v.data(), v.size()));
    }
  }

  field_values(const field_values&) = delete;
  field_values& operator=(const field_values&) = delete;

  [[nodiscard]] std::span<const std::string_view> span() const noexcept {
    if (!more_.empty()) return more_;
    return {inline_.data(), count_};
  }

 private:
  void push(std::string_view v) {
    if (count_ < inline_.size()) {
      inline_[count_++] = v;
      return;
    }
    if (more_.empty()) more_.assign(inline_.begin(), inline_.end());
    more_.push_back(v);
  }

  std::array<std::string_view, 4> inline_{};
  std::size_t count_ = 0;
  std::vector<std::string_view> more_;
};

}  // namespace ctxexec::http::detail

#endif  // CTXEXEC_HTTP_DETAIL_FIELD_VALUES_HPP
