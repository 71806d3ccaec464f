// NameIndex: an open-addressing hash index from a name to an iterator of a
// node-based map keyed by that name. Slots hold (hash, iterator) inline, so
// a lookup costs one cache miss for the slot run and one for the node whose
// hash matches; std::unordered_map's chained nodes cost three or four, which
// made recovering a million counters several times slower.
// Linear probing, load factor <= 1/2, backward-shift deletion (no
// tombstones). Thread-compatible.
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
    const std::uint64_t h = Hash(name);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.hash == h && std::string_view(s.it->first) == name) return &s.it;
    }
  }

  // REQUIRES: no entry for it->first yet.
  void Insert(Iterator it) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    Place(Slot{Hash(std::string_view(it->first)), it, true});
    ++size_;
  }

  // Removes |name| if present; returns whether it was.
  bool Erase(std::string_view name) {
    if (slots_.empty()) return false;
    const std::uint64_t h = Hash(name);
    std::size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].used) return false;
      if (slots_[i].hash == h && std::string_view(slots_[i].it->first) == name)
        break;
    }
    // Backward-shift: pull later members of the run into the hole so every
    // remaining entry stays reachable from its home slot.
    for (std::size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
      const std::size_t home = slots_[j].hash & mask_;
      const bool movable =
          (j > i) ? (home <= i || home > j) : (home <= i && home > j);
      if (movable) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].used = false;
    --size_;
    return true;
  }

  void Reserve(std::size_t n) {
    while (n * 2 > slots_.size()) Grow();
  }
  void Clear() {
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }
  std::size_t size() const { return size_; }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    Iterator it{};
    bool used = false;
  };

  static std::uint64_t Hash(std::string_view name) {
    return std::hash<std::string_view>{}(name);
  }

  void Place(const Slot& slot) {
    std::size_t i = slot.hash & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = slot;
  }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.used) Place(s);
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_NAME_INDEX_H_
