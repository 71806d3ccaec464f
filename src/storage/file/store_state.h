// StoreState: the file backend's in-memory image of the store — counters
// sorted by name, their expiries, and the retained idempotency records —
// built by recovery and changed only by applying committed effects (and by
// sweeping counters whose expiry has passed, which needs no record).
// Thread-compatible: the owner locks.
#ifndef COUNTERD_STORAGE_FILE_STORE_STATE_H_
#define COUNTERD_STORAGE_FILE_STORE_STATE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "counter_tree.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"
#include "counterd/storage/snapshot_document.h"
#include "effects.h"
#include "snapshot_codec.h"

namespace counterd::storage {

class StoreState {
 public:
  explicit StoreState(std::chrono::milliseconds idempotency_retention)
      : retention_ms_(idempotency_retention.count()) {}

  void Apply(const Effect& effect);
  // Loading a snapshot, one element at a time as recovery decodes it:
  // BeginLoad empties the state, then each counter in name order, then
  // each idempotency record, oldest first.
  void BeginLoad();
  void LoadCounter(const domain::Counter& c);
  void LoadIdempotency(domain::IdempotencyRecord&& r);
  // A copy of everything live at |now_ms|, for a snapshot at |last_seq|.
  SnapshotData ToSnapshot(std::uint64_t last_seq, std::int64_t now_ms) const;

  // The stored row, expired or not (what a WorkingSet is seeded with).
  std::optional<domain::Counter> FindCounter(std::string_view name) const;
  // Live counters (not expired at |now_ms|) whose names start with
  // |prefix| and sort after |after|, in name order, at most |limit|.
  std::vector<domain::Counter> List(std::string_view prefix,
                                    std::string_view after, std::size_t limit,
                                    std::int64_t now_ms) const;
  // The record for (scope, key) unless past its retention at |now_ms|.
  const domain::IdempotencyRecord* FindIdempotency(std::string_view scope,
                                                   std::string_view key,
                                                   std::int64_t now_ms) const;
  // Forgets idempotency records past their retention at |now_ms|.
  void PruneIdempotency(std::int64_t now_ms);
  // Removes up to |max| counters expired at |now_ms|; returns their names.
  std::vector<std::string> SweepExpired(std::int64_t now_ms, std::size_t max);
  // The earliest expiry that may still be pending (a hint: the counter may
  // have been changed since); nullopt if none.
  std::optional<std::int64_t> NextExpiry() const;

  std::size_t counter_count() const { return counters_.size(); }
  std::size_t idempotency_count() const { return idempotency_.size(); }

  // -- cursors (store_cursors.cc): what ToSnapshot returns, read a page at a
  // time while changes go on, so that a snapshot of any size needs one
  // page of memory and never a copy of the store. A cursor sees the store
  // as it was when opened: a change to a counter the cursor has not read
  // yet first saves that counter's state at the opening in the cursor
  // (copy-on-write per name), and idempotency records are not pruned while
  // a cursor is open (the ones added later lie past its end). So its
  // memory is one page plus the names changed while it is open.
  using CursorId = std::uint64_t;
  // A cursor over everything live at |now_ms|, as of now. CloseCursor it.
  CursorId OpenCursor(std::int64_t now_ms);
  void CloseCursor(CursorId id);
  // The next counters in name order: about |max| of them (a page may also
  // hold counters that have gone since the opening).
  SnapshotPage<domain::Counter> NextCounters(CursorId id, std::size_t max);
  // After the counters, the idempotency records, oldest first.
  SnapshotPage<domain::IdempotencyRecord> NextRecords(CursorId id,
                                                      std::size_t max);

 private:
  struct Entry {
    std::int64_t value;
    std::uint64_t version;
    std::int64_t expires_at_ms;  // 0: never
    bool LiveAt(std::int64_t now_ms) const {
      return expires_at_ms == 0 || now_ms < expires_at_ms;
    }
  };
  struct Cursor {
    std::int64_t now_ms = 0;
    bool counters_begun = false;  // last_read names a counter
    bool counters_done = false;
    std::string last_read;
    // Counters changed since the opening that sort after last_read: their
    // state at the opening (nullopt: the name did not exist then).
    std::map<std::string, std::optional<Entry>, std::less<>> before;
    // idempotency_order_ positions [next_record, records_end) are still to
    // be read; positions are stable while the cursor is open (no pruning).
    std::size_t next_record = 0;
    std::size_t records_end = 0;
    // Records replaced since the opening, by record key: the state the
    // cursor reads instead of the replacement.
    std::unordered_map<std::string, domain::IdempotencyRecord> replaced;
  };
  using CounterMap = CounterTree<Entry>;
  // (expires_at_ms, name), earliest first. Entries go stale when the
  // counter changes or goes; a popped entry is checked against the map.
  using ExpiryQueue =
      std::priority_queue<std::pair<std::int64_t, std::string>,
                          std::vector<std::pair<std::int64_t, std::string>>,
                          std::greater<>>;

  bool IsRetained(const domain::IdempotencyRecord& r,
                  std::int64_t now_ms) const {
    // Not created_at + retention > now: a creation time near INT64_MAX
    // (a clock far off, a hand-made file) would overflow.
    return r.created_at_ms > now_ms - retention_ms_;
  }
  void PutCounterEntry(const domain::Counter& c);
  void EraseCounter(std::string_view name);
  // Before |name| changes: saves its current state in every open cursor
  // that has yet to read it (and has not saved it already).
  void SaveForCursors(std::string_view name);
  // Before the record under |record_key| is replaced: the same for records.
  void SaveRecordForCursors(const std::string& record_key,
                            const domain::IdempotencyRecord& current);
  static std::string RecordKey(std::string_view scope, std::string_view key);

  std::int64_t retention_ms_;
  // Name order, for point lookups, List and snapshots.
  CounterMap counters_;
  ExpiryQueue expiries_;
  std::size_t expiring_ = 0;  // counters with an expiry
  std::unordered_map<std::string, domain::IdempotencyRecord> idempotency_;
  // (created_at_ms, record key) in arrival order, for pruning.
  std::deque<std::pair<std::int64_t, std::string>> idempotency_order_;
  std::map<CursorId, Cursor> cursors_;
  CursorId next_cursor_ = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_STORE_STATE_H_
