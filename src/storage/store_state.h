// StoreState: the in-memory image of the store — counters sorted by name and
// unexpired idempotency records — built by recovery and changed only by
// applying committed effects. Thread-compatible: the owner locks.
#ifndef COUNTERD_STORAGE_STORE_STATE_H_
#define COUNTERD_STORAGE_STORE_STATE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "counterd/domain/counter.h"
#include "counterd/storage/counter_store.h"
#include "counterd/storage/records.h"
#include "name_index.h"
#include "snapshot_codec.h"

namespace counterd::storage {

class StoreState {
 public:
  explicit StoreState(std::chrono::milliseconds idempotency_retention)
      : retention_(idempotency_retention) {}

  void Apply(const Effect& effect);
  void LoadSnapshot(SnapshotData&& snapshot);
  // A copy of everything, for a snapshot at |last_seq|, dropping idempotency
  // records expired at |now|.
  SnapshotData ToSnapshot(std::uint64_t last_seq,
                          std::chrono::system_clock::time_point now) const;

  std::optional<domain::Counter> FindCounter(std::string_view name) const;
  std::vector<domain::Counter> List(std::string_view prefix,
                                    std::string_view after,
                                    std::size_t limit) const;
  // Unexpired at |now| only.
  const IdempotencyRecord* FindIdempotency(
      std::string_view key, std::chrono::system_clock::time_point now) const;
  // Forgets idempotency records expired at |now|.
  void PruneExpired(std::chrono::system_clock::time_point now);

  std::size_t counter_count() const { return counters_.size(); }
  std::size_t idempotency_count() const { return idempotency_.size(); }

 private:
  struct Entry {
    std::int64_t value;
    std::uint64_t version;
  };
  bool IsExpired(const IdempotencyRecord& r,
                 std::chrono::system_clock::time_point now) const;

  using CounterMap = std::map<std::string, Entry, std::less<>>;

  std::chrono::milliseconds retention_;
  // Name order, for List and snapshots.
  CounterMap counters_;
  // The same nodes by name hash (map nodes never move): point lookups and
  // journal replay cost O(1) instead of a chain of cache-missing string
  // compares (20 at a million counters).
  NameIndex<CounterMap::iterator> index_;
  std::unordered_map<std::string, IdempotencyRecord> idempotency_;
  // (created_at_ms, key) in arrival order, for pruning.
  std::deque<std::pair<std::int64_t, std::string>> idempotency_order_;
};

// The StateView a batch is planned against: the committed StoreState plus
// the effects of the batch's earlier mutations. Used by the committer role's
// holder only.
class BatchView final : public StateView {
 public:
  // |base| must outlive this view and stay unchanged while it is used.
  BatchView(const StoreState& base, std::chrono::system_clock::time_point now)
      : base_(base), now_(now) {}

  std::optional<domain::Counter> FindCounter(
      std::string_view name) const override;
  const IdempotencyRecord* FindIdempotency(std::string_view key) const override;
  std::chrono::system_clock::time_point Now() const override { return now_; }

  void Apply(const Effect& effect);

 private:
  const StoreState& base_;
  std::chrono::system_clock::time_point now_;
  // nullopt: deleted within this batch.
  std::map<std::string, std::optional<domain::Counter>, std::less<>> counters_;
  std::map<std::string, IdempotencyRecord, std::less<>> idempotency_;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_STORE_STATE_H_
