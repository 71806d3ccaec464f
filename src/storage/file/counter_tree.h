// CounterTree: the file backend's counters in name order, as a B+ tree
// whose leaves hold up to 64 names and values inline, side by side.
//
// Why not std::map plus a hash index (what it replaced): at ten million
// counters that was one 96-byte heap node per counter (red-black links,
// the name, the entry, malloc's header) and 27 bytes of index slots — 123
// bytes per counter — and start-up spent most of its time allocating,
// faulting in and hashing those nodes one by one. Here a counter costs its
// name (a std::string, inline up to 15 bytes) and its value in a leaf
// array, 56 bytes for the file backend's entries in a full leaf; a lookup
// is a few binary searches over leaves that sit in a handful of cache
// lines; and a sorted load (the snapshot is sorted) fills each leaf to the
// brim in order, with one allocation per 64 counters.
//
// Leaves are kept at least a quarter full where a neighbour allows (an
// emptied leaf goes at once), so deletions cannot strand memory: names that
// come and go (expiring windows) reuse or free their leaves.
//
// Iterators are invalidated by every change; callers that read while
// changes go on (the snapshot cursors) hold a name and look it up again.
// Thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_COUNTER_TREE_H_
#define COUNTERD_STORAGE_FILE_COUNTER_TREE_H_

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace counterd::storage {

template <typename V>
class CounterTree {
 public:
  static constexpr std::size_t kLeafSlots = 64;
  static constexpr std::size_t kInnerSlots = 64;  // children of an inner node

 private:
  struct Node {
    explicit Node(bool leaf) : is_leaf(leaf) {}
    bool is_leaf;
    std::uint32_t count = 0;  // entries (leaf) or children (inner)
  };
  struct Leaf : Node {
    Leaf() : Node(true) {}
    Leaf* prev = nullptr;
    Leaf* next = nullptr;
    std::array<std::string, kLeafSlots> names;
    std::array<V, kLeafSlots> values{};
  };
  // seps[i] divides kids[i] from kids[i + 1]: every name under kids[i] is
  // below it, every name under kids[i + 1] at or above it. Erasing keeps
  // that true without touching the separators.
  struct Inner : Node {
    Inner() : Node(false) {}
    std::array<std::string, kInnerSlots - 1> seps;
    std::array<Node*, kInnerSlots> kids{};
  };

 public:
  // Reads the counters in name order. Invalidated by any change.
  class ConstIterator {
   public:
    ConstIterator() = default;
    const std::string& name() const { return leaf_->names[i_]; }
    const V& value() const { return leaf_->values[i_]; }
    ConstIterator& operator++() {
      if (++i_ == leaf_->count) {
        leaf_ = leaf_->next;  // never an empty one: those are freed
        i_ = 0;
      }
      return *this;
    }
    bool operator==(const ConstIterator&) const = default;

   private:
    friend class CounterTree;
    ConstIterator(const Leaf* leaf, std::size_t i) : leaf_(leaf), i_(i) {
      if (leaf_ != nullptr && i_ == leaf_->count) {
        leaf_ = leaf_->next;
        i_ = 0;
      }
    }
    const Leaf* leaf_ = nullptr;
    std::size_t i_ = 0;
  };

  CounterTree() = default;
  ~CounterTree() { Clear(); }
  CounterTree(const CounterTree&) = delete;
  CounterTree& operator=(const CounterTree&) = delete;
  CounterTree(CounterTree&& other) noexcept
      : root_(std::exchange(other.root_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  CounterTree& operator=(CounterTree&& other) noexcept {
    if (this != &other) {
      Clear();
      root_ = std::exchange(other.root_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void Clear() {
    Free(root_);
    root_ = nullptr;
    size_ = 0;
  }

  // The value stored under |name|, or nullptr.
  V* Find(std::string_view name) {
    return const_cast<V*>(std::as_const(*this).Find(name));
  }
  const V* Find(std::string_view name) const {
    if (root_ == nullptr) return nullptr;
    const Leaf* leaf = LeafFor(name);
    const std::size_t i = LowerIndex(leaf, name);
    if (i == leaf->count || leaf->names[i] != name) return nullptr;
    return &leaf->values[i];
  }

  // Adds |name| with |value| unless it is there already; returns whether it
  // was added.
  bool Insert(std::string_view name, const V& value) {
    return Put<false>(name, value);
  }

  // Adds |name| after every name in the tree: a sorted load. Leaves fill
  // completely, and no name is compared but the last.
  // REQUIRES: empty() or |name| sorts after the last name.
  void Append(std::string_view name, const V& value) {
    assert(empty() || LastNameBelow(name));
    Put<true>(name, value);
  }

  // Removes |name|; returns whether it was there.
  bool Erase(std::string_view name) {
    if (root_ == nullptr || !EraseUnder(root_, name)) return false;
    --size_;
    // A root with one child gives way to it; an emptied tree frees all.
    while (!root_->is_leaf && root_->count <= 1) {
      Inner* old = static_cast<Inner*>(root_);
      root_ = old->count == 1 ? old->kids[0] : nullptr;
      old->count = 0;
      delete old;
      if (root_ == nullptr) return true;
    }
    if (size_ == 0) Clear();
    return true;
  }

  // Leaves in use, and whether every structural rule holds (names sorted
  // within and across leaves, separators bounding their children, leaf
  // links, counts, no empty node): for tests and memory accounting.
  std::size_t LeafCount() const {
    std::size_t n = 0;
    for (const Leaf* l = FirstLeaf(); l != nullptr; l = l->next) ++n;
    return n;
  }
  bool Valid() const {
    if (root_ == nullptr) return size_ == 0;
    std::size_t entries = 0;
    const Leaf* expected_prev = nullptr;
    const Leaf* first = FirstLeaf();
    if (first->prev != nullptr) return false;
    for (const Leaf* l = first; l != nullptr; l = l->next) {
      if (l->prev != expected_prev || l->count == 0) return false;
      for (std::size_t i = 0; i < l->count; ++i) {
        const std::string* before =
            i > 0 ? &l->names[i - 1]
                  : (expected_prev
                         ? &expected_prev->names[expected_prev->count - 1]
                         : nullptr);
        if (before != nullptr && !(*before < l->names[i])) return false;
      }
      entries += l->count;
      expected_prev = l;
    }
    return entries == size_ && Bounded(root_, nullptr, nullptr);
  }

  ConstIterator begin() const { return ConstIterator(FirstLeaf(), 0); }
  ConstIterator end() const { return ConstIterator(); }
  // The first name at or after |name|.
  ConstIterator LowerBound(std::string_view name) const {
    if (root_ == nullptr) return end();
    const Leaf* leaf = LeafFor(name);
    return ConstIterator(leaf, LowerIndex(leaf, name));
  }
  // The first name after |name|.
  ConstIterator UpperBound(std::string_view name) const {
    if (root_ == nullptr) return end();
    const Leaf* leaf = LeafFor(name);
    const auto first = leaf->names.begin();
    return ConstIterator(
        leaf,
        static_cast<std::size_t>(
            std::upper_bound(first, first + leaf->count, name,
                             [](std::string_view a, const std::string& b) {
                               return a < std::string_view(b);
                             }) -
            first));
  }

 private:
  // A child split in two: the right half and the first name under it.
  struct Split {
    std::string sep;
    Node* right = nullptr;
  };

  // Append's precondition (checked in debug builds).
  bool LastNameBelow(std::string_view name) const {
    const Node* n = root_;
    while (!n->is_leaf) {
      const auto* in = static_cast<const Inner*>(n);
      n = in->kids[in->count - 1];
    }
    const auto* leaf = static_cast<const Leaf*>(n);
    return leaf->count == 0 || leaf->names[leaf->count - 1] < name;
  }

  const Leaf* FirstLeaf() const {
    if (root_ == nullptr) return nullptr;
    const Node* n = root_;
    while (!n->is_leaf) n = static_cast<const Inner*>(n)->kids[0];
    return static_cast<const Leaf*>(n);
  }
  // Every name under |n| is at or above *low and below *high (if given).
  static bool Bounded(const Node* n, const std::string* low,
                      const std::string* high) {
    if (n->count == 0) return false;
    if (n->is_leaf) {
      const auto* l = static_cast<const Leaf*>(n);
      return (low == nullptr || !(l->names[0] < *low)) &&
             (high == nullptr || l->names[l->count - 1] < *high);
    }
    const auto* in = static_cast<const Inner*>(n);
    for (std::size_t i = 0; i < in->count; ++i) {
      const std::string* lo = i == 0 ? low : &in->seps[i - 1];
      const std::string* hi = i + 1 == in->count ? high : &in->seps[i];
      if (!Bounded(in->kids[i], lo, hi)) return false;
    }
    return true;
  }

  static std::size_t LowerIndex(const Leaf* leaf, std::string_view name) {
    const auto first = leaf->names.begin();
    return static_cast<std::size_t>(
        std::lower_bound(first, first + leaf->count, name,
                         [](const std::string& a, std::string_view b) {
                           return std::string_view(a) < b;
                         }) -
        first);
  }
  // The child of |in| whose range holds |name|: the number of separators at
  // or below it.
  static std::size_t ChildIndex(const Inner* in, std::string_view name) {
    const auto first = in->seps.begin();
    return static_cast<std::size_t>(
        std::upper_bound(first, first + (in->count - 1), name,
                         [](std::string_view a, const std::string& b) {
                           return a < std::string_view(b);
                         }) -
        first);
  }
  const Leaf* LeafFor(std::string_view name) const {
    const Node* n = root_;
    while (!n->is_leaf) {
      const auto* in = static_cast<const Inner*>(n);
      n = in->kids[ChildIndex(in, name)];
    }
    return static_cast<const Leaf*>(n);
  }

  template <bool kAppend>
  bool Put(std::string_view name, const V& value) {
    if (root_ == nullptr) root_ = new Leaf();
    bool added = false;
    if (auto split = PutUnder<kAppend>(root_, name, value, added)) {
      auto* root = new Inner();
      root->kids[0] = root_;
      root->kids[1] = split->right;
      root->seps[0] = std::move(split->sep);
      root->count = 2;
      root_ = root;
    }
    if (added) ++size_;
    return added;
  }

  template <bool kAppend>
  std::optional<Split> PutUnder(Node* n, std::string_view name, const V& value,
                                bool& added) {
    if (n->is_leaf) {
      return PutInLeaf<kAppend>(static_cast<Leaf*>(n), name, value, added);
    }
    auto* in = static_cast<Inner*>(n);
    const std::size_t k = kAppend ? in->count - 1 : ChildIndex(in, name);
    std::optional<Split> below =
        PutUnder<kAppend>(in->kids[k], name, value, added);
    if (!below) return std::nullopt;
    // Room for the new child after kids[k]: split this node first if full.
    if (in->count < kInnerSlots) {
      InsertKid(in, k, std::move(*below));
      return std::nullopt;
    }
    constexpr std::size_t kHalf = kInnerSlots / 2;
    auto* right = new Inner();
    Split up{std::move(in->seps[kHalf - 1]), right};
    for (std::size_t i = kHalf; i < kInnerSlots; ++i) {
      right->kids[i - kHalf] = in->kids[i];
      if (i < kInnerSlots - 1) right->seps[i - kHalf] = std::move(in->seps[i]);
    }
    right->count = kInnerSlots - kHalf;
    in->count = kHalf;
    if (k < kHalf) {
      InsertKid(in, k, std::move(*below));
    } else {
      InsertKid(right, k - kHalf, std::move(*below));
    }
    return up;
  }

  // Makes split.right the child after kids[k]. REQUIRES: in has room.
  static void InsertKid(Inner* in, std::size_t k, Split&& split) {
    const std::size_t n = in->count;
    for (std::size_t i = n; i > k + 1; --i) in->kids[i] = in->kids[i - 1];
    for (std::size_t i = n - 1; i > k; --i) {
      in->seps[i] = std::move(in->seps[i - 1]);
    }
    in->kids[k + 1] = split.right;
    in->seps[k] = std::move(split.sep);
    in->count = static_cast<std::uint32_t>(n + 1);
  }

  template <bool kAppend>
  std::optional<Split> PutInLeaf(Leaf* leaf, std::string_view name,
                                 const V& value, bool& added) {
    const std::size_t pos = kAppend ? leaf->count : LowerIndex(leaf, name);
    if (!kAppend && pos < leaf->count && leaf->names[pos] == name) {
      return std::nullopt;
    }
    added = true;
    if (leaf->count < kLeafSlots) {
      PlaceInLeaf(leaf, pos, name, value);
      return std::nullopt;
    }
    auto* right = new Leaf();
    // Past the end of the last leaf (a sorted load, names that only grow):
    // the new name starts a leaf of its own and this one stays full.
    // Otherwise each half keeps half.
    const std::size_t keep = (pos == kLeafSlots && leaf->next == nullptr)
                                 ? kLeafSlots
                                 : kLeafSlots / 2;
    for (std::size_t i = keep; i < kLeafSlots; ++i) {
      right->names[i - keep] = std::move(leaf->names[i]);
      right->values[i - keep] = std::move(leaf->values[i]);
    }
    right->count = static_cast<std::uint32_t>(kLeafSlots - keep);
    leaf->count = static_cast<std::uint32_t>(keep);
    right->next = leaf->next;
    right->prev = leaf;
    if (leaf->next != nullptr) leaf->next->prev = right;
    leaf->next = right;
    if (pos <= keep && keep < kLeafSlots) {
      PlaceInLeaf(leaf, pos, name, value);
    } else {
      PlaceInLeaf(right, pos - keep, name, value);
    }
    return Split{right->names[0], right};
  }

  static void PlaceInLeaf(Leaf* leaf, std::size_t pos, std::string_view name,
                          const V& value) {
    const std::size_t n = leaf->count;
    for (std::size_t i = n; i > pos; --i) {
      leaf->names[i] = std::move(leaf->names[i - 1]);
      leaf->values[i] = std::move(leaf->values[i - 1]);
    }
    leaf->names[pos].assign(name);
    leaf->values[pos] = value;
    leaf->count = static_cast<std::uint32_t>(n + 1);
  }

  // Erases |name| under |n|, then mends the child it came from: an empty
  // child goes, and one under a quarter full merges with a neighbour when
  // both fit in three quarters of a node.
  bool EraseUnder(Node* n, std::string_view name) {
    if (n->is_leaf) {
      auto* leaf = static_cast<Leaf*>(n);
      const std::size_t pos = LowerIndex(leaf, name);
      if (pos == leaf->count || leaf->names[pos] != name) return false;
      for (std::size_t i = pos + 1; i < leaf->count; ++i) {
        leaf->names[i - 1] = std::move(leaf->names[i]);
        leaf->values[i - 1] = std::move(leaf->values[i]);
      }
      --leaf->count;
      leaf->names[leaf->count] = std::string();  // frees a long name
      return true;
    }
    auto* in = static_cast<Inner*>(n);
    const std::size_t k = ChildIndex(in, name);
    if (!EraseUnder(in->kids[k], name)) return false;
    Mend(in, k);
    return true;
  }

  void Mend(Inner* in, std::size_t k) {
    Node* kid = in->kids[k];
    const std::size_t slots = kid->is_leaf ? kLeafSlots : kInnerSlots;
    if (kid->count == 0) {
      RemoveKid(in, k);
      return;
    }
    if (kid->count >= slots / 4) return;
    if (k + 1 < in->count &&
        kid->count + in->kids[k + 1]->count <= slots * 3 / 4) {
      Merge(in, k);
    } else if (k > 0 && in->kids[k - 1]->count + kid->count <= slots * 3 / 4) {
      Merge(in, k - 1);
    }
  }

  // Moves everything of kids[k + 1] into kids[k] and drops kids[k + 1].
  void Merge(Inner* in, std::size_t k) {
    Node* left = in->kids[k];
    Node* right = in->kids[k + 1];
    if (left->is_leaf) {
      auto* l = static_cast<Leaf*>(left);
      auto* r = static_cast<Leaf*>(right);
      for (std::size_t i = 0; i < r->count; ++i) {
        l->names[l->count + i] = std::move(r->names[i]);
        l->values[l->count + i] = std::move(r->values[i]);
      }
      l->count += r->count;
      r->count = 0;
    } else {
      auto* l = static_cast<Inner*>(left);
      auto* r = static_cast<Inner*>(right);
      // The parent's separator comes down between the two runs of children.
      l->seps[l->count - 1] = std::move(in->seps[k]);
      for (std::size_t i = 0; i < r->count; ++i) {
        l->kids[l->count + i] = r->kids[i];
        if (i + 1 < r->count) l->seps[l->count + i] = std::move(r->seps[i]);
      }
      l->count += r->count;
      r->count = 0;
    }
    RemoveKid(in, k + 1);
  }

  // Frees the (emptied) kids[k] and closes the gap.
  static void RemoveKid(Inner* in, std::size_t k) {
    Node* kid = in->kids[k];
    if (kid->is_leaf) {
      auto* leaf = static_cast<Leaf*>(kid);
      if (leaf->prev != nullptr) leaf->prev->next = leaf->next;
      if (leaf->next != nullptr) leaf->next->prev = leaf->prev;
    }
    Free(kid);
    const std::size_t n = in->count;
    for (std::size_t i = k + 1; i < n; ++i) in->kids[i - 1] = in->kids[i];
    // With kids[k] gone, the separator before it (or, for the first child,
    // the one after it) divides nothing any more.
    for (std::size_t i = (k == 0 ? 0 : k - 1); i + 1 < n - 1; ++i) {
      in->seps[i] = std::move(in->seps[i + 1]);
    }
    if (n >= 2) in->seps[n - 2] = std::string();
    in->count = static_cast<std::uint32_t>(n - 1);
  }

  static void Free(Node* n) {
    if (n == nullptr) return;
    if (n->is_leaf) {
      delete static_cast<Leaf*>(n);
      return;
    }
    auto* in = static_cast<Inner*>(n);
    for (std::size_t i = 0; i < in->count; ++i) Free(in->kids[i]);
    delete in;
  }

  Node* root_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_COUNTER_TREE_H_
