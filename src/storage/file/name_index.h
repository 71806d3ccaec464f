// NameIndex: an open-addressing hash index from a name to an iterator of a
// node-based map keyed by that name. Slots hold (hash, iterator) inline, so
// a lookup costs one cache miss for the slot run and one for the node whose
// hash matches; std::unordered_map's chained nodes cost three or four, which
// made recovering a million counters several times slower.
// Linear probing, load factor <= 3/4, backward-shift deletion (no
// tombstones). A slot is 16 bytes (the hash with its top bit marking the
// slot used, and the iterator): at ten million counters the index is
// 256 MiB, about 27 bytes per counter (it was 80 with 24-byte slots at a
// load factor of at most 1/2), and recovery touches a third of the pages.
// Thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_NAME_INDEX_H_
#define COUNTERD_STORAGE_FILE_NAME_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

namespace counterd::storage {

// |Iterator| dereferences to a pair whose .first converts to string_view
// and stays valid (and unmoved) until the entry is erased.
template <typename Iterator>
class NameIndex {
 public:
  // The iterator for |name|, or nullptr.
  const Iterator* Find(std::string_view name) const {
    if (slots_.empty()) return nullptr;
    const std::uint64_t tag = Tag(name);
    for (std::size_t i = tag & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used()) return nullptr;
      if (s.tag == tag && std::string_view(s.it->first) == name) return &s.it;
    }
  }

  // REQUIRES: no entry for it->first yet.
  void Insert(Iterator it) {
    if (TooFull(size_ + 1, slots_.size())) Grow();
    Place(Slot{Tag(std::string_view(it->first)), it});
    ++size_;
  }

  // Removes |name| if present; returns whether it was.
  bool Erase(std::string_view name) {
    if (slots_.empty()) return false;
    const std::uint64_t tag = Tag(name);
    std::size_t i = tag & mask_;
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].used()) return false;
      if (slots_[i].tag == tag && std::string_view(slots_[i].it->first) == name)
        break;
    }
    // Backward-shift: pull later members of the run into the hole so every
    // remaining entry stays reachable from its home slot.
    for (std::size_t j = (i + 1) & mask_; slots_[j].used();
         j = (j + 1) & mask_) {
      const std::size_t home = slots_[j].tag & mask_;
      const bool movable =
          (j > i) ? (home <= i || home > j) : (home <= i && home > j);
      if (movable) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return true;
  }

  void Reserve(std::size_t n) {
    std::size_t slots = slots_.empty() ? 16 : slots_.size();
    while (TooFull(n, slots)) slots *= 2;
    if (slots != slots_.size()) Rehash(slots);
  }
  void Clear() {
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }
  std::size_t size() const { return size_; }

 private:
  // The name's hash with the top bit set: never 0, which marks a free
  // slot. The home slot is tag & mask_ (masks are far below the top bit).
  static constexpr std::uint64_t kUsedBit = std::uint64_t{1} << 63;

  struct Slot {
    std::uint64_t tag = 0;
    Iterator it{};
    bool used() const { return tag != 0; }
  };

  static std::uint64_t Tag(std::string_view name) {
    return std::hash<std::string_view>{}(name) | kUsedBit;
  }

  static bool TooFull(std::size_t entries, std::size_t slots) {
    return entries * 4 > slots * 3;
  }

  void Place(const Slot& slot) {
    std::size_t i = slot.tag & mask_;
    while (slots_[i].used()) i = (i + 1) & mask_;
    slots_[i] = slot;
  }

  void Grow() { Rehash(slots_.empty() ? 16 : slots_.size() * 2); }

  void Rehash(std::size_t slots) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(slots, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.used()) Place(s);
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_NAME_INDEX_H_
