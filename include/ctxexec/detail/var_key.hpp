// ctxexec/detail/var_key.hpp
//
// The identity of a context variable: a process-unique 64-bit id (never
// reused, so a destroyed variable's leftover entries can never be mistaken
// for a new variable's) and a 32-bit hash of it. Also the registry that maps
// live ids to names for printing. Not part of the public API.

#ifndef CTXEXEC_DETAIL_VAR_KEY_HPP
#define CTXEXEC_DETAIL_VAR_KEY_HPP

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ctxexec::detail {

inline std::uint32_t mix_hash(std::uint64_t x) noexcept {
  // SplitMix64 finalizer: consecutive ids spread over all 32 bits.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<std::uint32_t>(x);
}

/// Live variables by id, for printing names. Never destroyed.
class var_registry {
 public:
  static var_registry& instance() {
    static var_registry* registry = new var_registry;
    return *registry;
  }

  void add(std::uint64_t id, std::string_view name) {
    std::lock_guard<std::mutex> lock(mutex_);
    names_.emplace(id, std::string(name));
  }
  void remove(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    names_.erase(id);
  }
  std::optional<std::string> name(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = names_.find(id);
    if (it == names_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::string> names_;
};

/// Selects the constructor that pins a variable's hash. For tests of hash
/// collisions only.
struct forced_hash_t {
  std::uint32_t hash;
};

/// Marks the id of a hidden variable: the library's own per-call state,
/// which a context carries but never counts, lists or prints.
inline constexpr std::uint64_t kHiddenKeyBit = std::uint64_t{1} << 63;

inline bool is_hidden_key(std::uint64_t id) noexcept {
  return (id & kHiddenKeyBit) != 0;
}

/// How many hidden variables exist (none, in a program that does not use
/// the executors): while none do, a context's size is its map's size.
inline std::atomic<int>& hidden_var_count() noexcept {
  static std::atomic<int> count{0};
  return count;
}

/// Selects the constructor of a hidden variable.
struct hidden_t {};

class var_key {
 public:
  explicit var_key(std::string_view name) : var_key(name, std::nullopt) {}
  var_key(std::string_view name, std::optional<std::uint32_t> forced_hash)
      : id_(next_id()),
        hash_(forced_hash ? *forced_hash : mix_hash(id_)),
        name_(name) {
    var_registry::instance().add(id_, name_);
  }
  var_key(std::string_view name, hidden_t)
      : id_(next_id() | kHiddenKeyBit), hash_(mix_hash(id_)), name_(name) {
    var_registry::instance().add(id_, name_);
    hidden_var_count().fetch_add(1, std::memory_order_relaxed);
  }
  var_key(const var_key&) = delete;
  var_key& operator=(const var_key&) = delete;
  ~var_key() {
    var_registry::instance().remove(id_);
    if (is_hidden_key(id_)) {
      hidden_var_count().fetch_sub(1, std::memory_order_relaxed);
    }
  }

  std::uint64_t id() const noexcept { return id_; }
  std::uint32_t hash() const noexcept { return hash_; }
  std::string_view name() const noexcept { return name_; }

 private:
  static std::uint64_t next_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  std::uint64_t id_;
  std::uint32_t hash_;
  std::string name_;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_VAR_KEY_HPP
