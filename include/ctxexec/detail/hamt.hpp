// ctxexec/detail/hamt.hpp
//
// The persistent map behind every context: a hash array mapped trie in the
// CHAMP layout (one bitmap for inline entries, one for child nodes), keyed by
// a variable's 64-bit id and 32-bit hash, holding type-erased value boxes.
// Not part of the public API.
//
// Ownership rules:
//   * Nodes and boxes are reference counted. A node owns one reference to
//     every slot it holds.
//   * Published nodes are immutable, except that a node whose reference
//     count is 1, reached through a chain of such nodes from a root that
//     only the current context owns, is edited in place. Nobody else can
//     observe it, so this is invisible and saves the path copy on the hot
//     set/reset path.
//   * Hash bits are consumed 5 at a time from the low end. After all 32 bits
//     are used, equal hashes go to a collision node (a plain array).
//
// Exception safety: every operation either completes or leaves the map as it
// was (strong guarantee); only std::bad_alloc can be thrown.

#ifndef CTXEXEC_DETAIL_HAMT_HPP
#define CTXEXEC_DETAIL_HAMT_HPP

#include <ctxexec/detail/config.hpp>
#include <ctxexec/detail/refcount.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <new>
#include <utility>

namespace ctxexec::detail {

struct box;

/// Type-specific operations of a value box.
struct box_vtable {
  void (*destroy)(box*) noexcept;
  void (*print)(const box*, std::ostream&);
};

/// An immutable, reference-counted value of some context_var<T>. The typed
/// part follows the header (see typed_box in context_var.hpp).
struct box {
  box(std::uint64_t k, std::uint32_t h, const box_vtable* vt) noexcept
      : hash(h), key(k), vtable(vt) {}

  std::atomic<std::uint32_t> refs{1};
  std::uint32_t hash;
  std::uint64_t key;
  const box_vtable* vtable;
};

/// Takes one more reference. The caller must already hold one.
inline void retain(box* b) noexcept { add_ref(b->refs); }

/// Drops one reference and destroys the box with the last one.
inline void release(box* b) noexcept {
  if (drop_ref(b->refs)) b->vtable->destroy(b);
}

inline constexpr unsigned kBitsPerLevel = 5;
inline constexpr unsigned kHashBits = 32;

/// Marks a `rank` entry that names a child node rather than a box.
inline constexpr std::uint8_t kRankChild = 0x80;

/// A trie node. Slots follow the header: first the boxes (for a bitmap node
/// one per bit of `datamap`, in bit order), then the children (one per bit
/// of `nodemap`). A collision node holds only boxes, which share one full
/// hash.
///
/// `rank` indexes a bitmap node by 5-bit fragment: 0 when empty, else the
/// slot position plus one, with kRankChild set for a child. Lookups and edits
/// of existing keys read it instead of counting bits, which costs several
/// nanoseconds per level on targets without a POPCNT instruction.
struct node {
  std::atomic<std::uint32_t> refs{1};
  std::uint32_t datamap = 0;
  std::uint32_t nodemap = 0;
  std::uint32_t size = 0;  // slots in use
  std::uint32_t capacity = 0;
  std::uint8_t ndata = 0;  // bitmap node: boxes among the slots
  bool collision = false;
  std::uint8_t rank[32] = {};

  // The slots live in the same allocation, right after the header.
  void** slots() noexcept {
    return std::launder(reinterpret_cast<void**>(
        reinterpret_cast<std::byte*>(this) + sizeof(node)));
  }
  void* const* slots() const noexcept {
    return std::launder(reinterpret_cast<void* const*>(
        reinterpret_cast<const std::byte*>(this) + sizeof(node)));
  }
  std::uint32_t data_count() const noexcept { return collision ? size : ndata; }
  box* data(std::uint32_t i) const noexcept {
    return static_cast<box*>(slots()[i]);
  }
  node* child(std::uint32_t i) const noexcept {
    return static_cast<node*>(slots()[ndata + i]);
  }
};
static_assert(sizeof(node) % alignof(void*) == 0);

/// Recomputes `rank` and `ndata` after the maps of a bitmap node changed.
inline void rebuild_rank(node* m) noexcept {
  std::memset(m->rank, 0, sizeof m->rank);
  std::uint8_t pos = 0;
  for (std::uint32_t x = m->datamap; x != 0; x &= x - 1) {
    m->rank[__builtin_ctz(x)] = ++pos;
  }
  m->ndata = pos;
  for (std::uint32_t x = m->nodemap; x != 0; x &= x - 1) {
    m->rank[__builtin_ctz(x)] = static_cast<std::uint8_t>(++pos | kRankChild);
  }
}

inline std::uint32_t index_below(std::uint32_t map,
                                 std::uint32_t bit) noexcept {
  return popcount32(map & (bit - 1));
}

inline std::uint32_t fragment(std::uint32_t hash, unsigned shift) noexcept {
  return (hash >> shift) & 31u;
}

inline std::uint32_t fragment_bit(std::uint32_t hash, unsigned shift) noexcept {
  return std::uint32_t{1} << fragment(hash, shift);
}

/// Allocates an empty node with room for `capacity` slots and one reference.
inline node* allocate_node(std::uint32_t capacity, bool collision) {
  void* p = ::operator new(sizeof(node) + capacity * sizeof(void*));
  node* n = ::new (p) node;
  n->capacity = capacity;
  n->collision = collision;
  return n;
}

/// Frees a node's memory without touching its slots (their references have
/// been moved elsewhere).
inline void free_shell(node* n) noexcept {
  n->~node();
  ::operator delete(static_cast<void*>(n));
}

inline void release(node* n) noexcept;

inline void release_slots(node* n) noexcept {
  const std::uint32_t data = n->data_count();
  for (std::uint32_t i = 0; i < data; ++i) release(n->data(i));
  for (std::uint32_t i = data; i < n->size; ++i) {
    release(static_cast<node*>(n->slots()[i]));
  }
}

inline void retain(node* n) noexcept { add_ref(n->refs); }

inline void release(node* n) noexcept {
  if (drop_ref(n->refs)) {
    release_slots(n);
    free_shell(n);
  }
}

inline bool is_unique(const node* n) noexcept {
  return n->refs.load(std::memory_order_acquire) == 1;
}

/// Rounds a slot count up to an allocation size, leaving room to grow in
/// place.
inline std::uint32_t capacity_for(std::uint32_t n) noexcept {
  if (n <= 2) return 2;
  if (n <= 4) return 4;
  if (n <= 8) return 8;
  if (n <= 16) return 16;
  if (n <= 32) return 32;
  return n + n / 2;
}

/// Returns a node the caller may edit in place, with room for `need` slots,
/// that owns a reference to every slot of `n`:
///   * `shared`: a fresh copy; `n` is untouched (the caller still owns its
///     reference to `n`).
///   * otherwise: `n` itself, or a larger node that took over n's slots and
///     freed n's shell.
/// On std::bad_alloc nothing has changed.
inline node* editable(node* n, bool shared, std::uint32_t need) {
  if (!shared && n->capacity >= need) return n;
  node* m = allocate_node(capacity_for(need), n->collision);
  m->datamap = n->datamap;
  m->nodemap = n->nodemap;
  m->size = n->size;
  m->ndata = n->ndata;
  std::memcpy(m->rank, n->rank, sizeof m->rank);
  if (n->size != 0) {
    std::memcpy(m->slots(), n->slots(), n->size * sizeof(void*));
  }
  if (shared) {
    const std::uint32_t data = n->data_count();
    for (std::uint32_t i = 0; i < data; ++i) retain(m->data(i));
    for (std::uint32_t i = data; i < n->size; ++i) {
      retain(static_cast<node*>(m->slots()[i]));
    }
  } else {
    free_shell(n);
  }
  return m;
}

/// Inserts `p` at slot position `pos` of an editable node with room.
inline void insert_slot(node* m, std::uint32_t pos, void* p) noexcept {
  CTXEXEC_ASSERT(m->size < m->capacity);
  void** s = m->slots();
  std::memmove(s + pos + 1, s + pos, (m->size - pos) * sizeof(void*));
  s[pos] = p;
  ++m->size;
}

/// Removes slot position `pos` of an editable node.
inline void erase_slot(node* m, std::uint32_t pos) noexcept {
  void** s = m->slots();
  std::memmove(s + pos, s + pos + 1, (m->size - pos - 1) * sizeof(void*));
  --m->size;
}

/// Looks a key up. Returns the box, or nullptr.
inline box* find(const node* n, std::uint64_t key,
                 std::uint32_t hash) noexcept {
  for (unsigned shift = 0; n != nullptr; shift += kBitsPerLevel) {
    if (n->collision) {
      for (std::uint32_t i = 0; i < n->size; ++i) {
        if (n->data(i)->key == key) return n->data(i);
      }
      return nullptr;
    }
    const std::uint8_t r = n->rank[fragment(hash, shift)];
    if (r == 0) return nullptr;
    void* p = n->slots()[(r & ~kRankChild) - 1];
    if (!(r & kRankChild)) {
      box* b = static_cast<box*>(p);
      return b->key == key ? b : nullptr;
    }
    n = static_cast<const node*>(p);
  }
  return nullptr;
}

/// Builds the smallest subtrie at `shift` holding two boxes with different
/// keys. Takes no references: the caller moves its references into the
/// result once this returns. On std::bad_alloc nothing leaks.
inline node* make_pair(box* a, box* b, unsigned shift) {
  if (shift >= kHashBits) {
    node* n = allocate_node(2, true);
    n->slots()[0] = a;
    n->slots()[1] = b;
    n->size = 2;
    return n;
  }
  const std::uint32_t bit_a = fragment_bit(a->hash, shift);
  const std::uint32_t bit_b = fragment_bit(b->hash, shift);
  node* n = allocate_node(2, false);
  if (bit_a == bit_b) {
    node* sub;
    try {
      sub = make_pair(a, b, shift + kBitsPerLevel);
    } catch (...) {
      free_shell(n);
      throw;
    }
    n->nodemap = bit_a;
    n->slots()[0] = sub;
    n->size = 1;
  } else {
    n->datamap = bit_a | bit_b;
    n->slots()[bit_a < bit_b ? 0 : 1] = a;
    n->slots()[bit_a < bit_b ? 1 : 0] = b;
    n->size = 2;
  }
  rebuild_rank(n);
  return n;
}

/// Maps b->key to `b` in the subtrie `n` (non-null) at `shift`.
///
/// `shared` says whether anything besides the caller may reach `n`; if so
/// `n` is copied, else edited in place. Returns the resulting node, which the
/// caller now owns in place of `n` (when `shared`, the caller still owns its
/// reference to `n` as well and must drop it). Takes over the caller's
/// reference to `b` on success. `*replaced` receives an owned reference to
/// the box that held the same key, or nullptr.
inline node* assoc(node* n, bool shared, unsigned shift, box* b,
                   box** replaced) {
  if (n->collision) {
    for (std::uint32_t i = 0; i < n->size; ++i) {
      if (n->data(i)->key == b->key) {
        node* m = editable(n, shared, n->size);
        *replaced = m->data(i);
        m->slots()[i] = b;
        return m;
      }
    }
    node* m = editable(n, shared, n->size + 1);
    insert_slot(m, m->size, b);
    *replaced = nullptr;
    return m;
  }
  const std::uint32_t frag = fragment(b->hash, shift);
  const std::uint32_t bit = std::uint32_t{1} << frag;
  const std::uint8_t r = n->rank[frag];
  const std::uint32_t pos = (r & ~kRankChild) - 1u;
  if (r == 0) {  // free fragment: a new inline entry
    node* m = editable(n, shared, n->size + 1);
    insert_slot(m, index_below(m->datamap, bit), b);
    m->datamap |= bit;
    rebuild_rank(m);
    *replaced = nullptr;
    return m;
  }
  if (!(r & kRankChild)) {
    box* existing = n->data(pos);
    if (existing->key == b->key) {
      node* m = editable(n, shared, n->size);
      *replaced = m->data(pos);
      m->slots()[pos] = b;
      return m;
    }
    // Two keys share this fragment: push both one level down.
    node* m = editable(n, shared, n->size);
    node* sub;
    try {
      sub = make_pair(existing, b, shift + kBitsPerLevel);
    } catch (...) {
      if (m != n) release(m);
      throw;
    }
    erase_slot(m, pos);
    m->datamap &= ~bit;
    insert_slot(m, popcount32(m->datamap) + index_below(m->nodemap, bit), sub);
    m->nodemap |= bit;
    rebuild_rank(m);
    *replaced = nullptr;
    return m;
  }
  node* m = editable(n, shared, n->size);
  node* child = static_cast<node*>(m->slots()[pos]);
  const bool child_shared = !is_unique(child);
  node* result;
  try {
    result = assoc(child, child_shared, shift + kBitsPerLevel, b, replaced);
  } catch (...) {
    if (m != n) release(m);
    throw;
  }
  if (result != child) {
    m->slots()[pos] = result;
    if (child_shared) release(child);
  }
  return m;
}

/// Removes `key` from the subtrie `n` at `shift`. Precondition: the key is
/// present. Ownership of `n` as for assoc(). Returns the resulting node, or
/// nullptr when the subtrie became empty (its shell is then freed if it was
/// edited in place). `*removed` receives an owned reference to the removed
/// box.
inline node* dissoc(node* n, bool shared, unsigned shift, std::uint64_t key,
                    std::uint32_t hash, box** removed) {
  std::uint32_t pos = 0;
  std::uint32_t bit = 0;
  if (n->collision) {
    while (n->data(pos)->key != key) ++pos;
  } else {
    const std::uint32_t frag = fragment(hash, shift);
    bit = std::uint32_t{1} << frag;
    pos = (n->rank[frag] & ~kRankChild) - 1u;
  }
  node* m = editable(n, shared, n->size);
  if (m->collision || (m->datamap & bit)) {
    CTXEXEC_ASSERT(m->data(pos)->key == key);
    *removed = m->data(pos);
    erase_slot(m, pos);
    if (m->size == 0) {
      free_shell(m);
      return nullptr;
    }
    if (!m->collision) {
      m->datamap &= ~bit;
      rebuild_rank(m);
    }
    return m;
  }
  CTXEXEC_ASSERT(m->nodemap & bit);
  node* child = static_cast<node*>(m->slots()[pos]);
  const bool child_shared = !is_unique(child);
  node* result;
  try {
    result =
        dissoc(child, child_shared, shift + kBitsPerLevel, key, hash, removed);
  } catch (...) {
    if (m != n) release(m);
    throw;
  }
  if (child_shared) release(child);
  if (result == nullptr) {
    erase_slot(m, pos);
    if (m->size == 0) {
      free_shell(m);
      return nullptr;
    }
    m->nodemap &= ~bit;
    rebuild_rank(m);
    return m;
  }
  if (result->size == 1 && result->data_count() == 1) {
    // A child left with one box and no children: inline the box here, so the
    // trie stays canonical. `result` is editable, hence owned only by us.
    box* only = result->data(0);
    free_shell(result);
    erase_slot(m, pos);
    m->nodemap &= ~bit;
    insert_slot(m, index_below(m->datamap, bit), only);
    m->datamap |= bit;
    rebuild_rank(m);
    return m;
  }
  m->slots()[pos] = result;
  return m;
}

/// Calls f(box*) for every entry, in trie order.
template <class F>
void for_each_box(const node* n, F& f) {
  if (n == nullptr) return;
  const std::uint32_t data = n->data_count();
  for (std::uint32_t i = 0; i < data; ++i) f(n->data(i));
  for (std::uint32_t i = data; i < n->size; ++i) {
    for_each_box(static_cast<const node*>(n->slots()[i]), f);
  }
}

/// A persistent map value: a root plus its entry count. Copying a map is
/// O(1) (one reference on the root).
class map {
 public:
  map() noexcept = default;
  map(const map& other) noexcept : root_(other.root_), size_(other.size_) {
    if (root_ != nullptr) retain(root_);
  }
  map& operator=(const map& other) noexcept {
    map copy(other);
    swap(copy);
    return *this;
  }
  map(map&& other) noexcept : root_(other.root_), size_(other.size_) {
    other.root_ = nullptr;
    other.size_ = 0;
  }
  map& operator=(map&& other) noexcept {
    map moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~map() {
    if (root_ != nullptr) release(root_);
  }

  void swap(map& other) noexcept {
    node* r = root_;
    root_ = other.root_;
    other.root_ = r;
    std::size_t s = size_;
    size_ = other.size_;
    other.size_ = s;
  }

  box* find(std::uint64_t key, std::uint32_t hash) const noexcept {
    return detail::find(root_, key, hash);
  }

  /// Maps b->key to b, taking over the caller's reference to b. Returns an
  /// owned reference to the box it replaced, or nullptr.
  box* set(box* b) {
    if (root_ == nullptr) {
      node* n = allocate_node(capacity_for(1), false);
      n->datamap = fragment_bit(b->hash, 0);
      n->slots()[0] = b;
      n->size = 1;
      rebuild_rank(n);
      root_ = n;
      size_ = 1;
      return nullptr;
    }
    if (void** slot = unique_slot_of(b->key, b->hash)) {
      box* old = static_cast<box*>(*slot);  // common set/reset: swap in place
      *slot = b;
      return old;
    }
    const bool shared = !is_unique(root_);
    box* replaced = nullptr;
    node* old_root = root_;
    root_ = assoc(old_root, shared, 0, b, &replaced);
    if (replaced == nullptr) ++size_;
    // Release only once the map is whole again: the release may free
    // values, whose destructors may read this map.
    if (shared) release(old_root);
    return replaced;
  }

  /// Removes `key`. Returns an owned reference to the removed box, or
  /// nullptr when the key was absent.
  box* erase(std::uint64_t key, std::uint32_t hash) {
    if (find(key, hash) == nullptr) return nullptr;
    const bool shared = !is_unique(root_);
    box* removed = nullptr;
    node* old_root = root_;
    root_ = dissoc(old_root, shared, 0, key, hash, &removed);
    --size_;
    if (shared) release(old_root);
    return removed;
  }

  std::size_t size() const noexcept { return size_; }
  const node* root() const noexcept { return root_; }

  template <class F>
  void for_each(F&& f) const {
    for_each_box(root_, f);
  }

 private:
  /// The slot holding `key` when it is present and every node on its path is
  /// owned by this map alone (so it may be written in place), else nullptr.
  void** unique_slot_of(std::uint64_t key, std::uint32_t hash) const noexcept {
    node* n = root_;
    for (unsigned shift = 0; is_unique(n); shift += kBitsPerLevel) {
      if (n->collision) {
        for (std::uint32_t i = 0; i < n->size; ++i) {
          if (n->data(i)->key == key) return &n->slots()[i];
        }
        return nullptr;
      }
      const std::uint8_t r = n->rank[fragment(hash, shift)];
      if (r == 0) return nullptr;
      void** p = &n->slots()[(r & ~kRankChild) - 1];
      if (!(r & kRankChild)) {
        return static_cast<box*>(*p)->key == key ? p : nullptr;
      }
      n = static_cast<node*>(*p);
    }
    return nullptr;
  }

  node* root_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ctxexec::detail

#endif  // CTXEXEC_DETAIL_HAMT_HPP
