// StoreStats: counts and gauges the storage engine exposes for /metrics and
// tests. A snapshot copy; histograms are read from CounterStore directly.
#ifndef COUNTERD_STORAGE_STORE_STATS_H_
#define COUNTERD_STORAGE_STORE_STATS_H_

#include <chrono>
#include <cstdint>

namespace counterd::storage {

struct StoreStats {
  std::uint64_t counters = 0;          // counters in the store now
  std::uint64_t idempotency_keys = 0;  // unexpired idempotency records
  std::uint64_t mutations = 0;         // mutations acknowledged (durable)
  std::uint64_t commits = 0;           // journal records (batches) written
  std::uint64_t fsyncs = 0;            // fdatasync/fsync calls made
  std::uint64_t journal_bytes = 0;     // size of the current journal file
  std::uint64_t last_seq = 0;          // sequence number of the last record
  std::uint64_t compactions = 0;       // snapshots written by compaction
  std::uint64_t snapshot_bytes = 0;    // size of the last snapshot written/read
  bool failed = false;                 // the store failed closed
};

// What start-up found and did.
struct RecoveryInfo {
  std::uint64_t counters = 0;
  std::uint64_t snapshot_seq = 0;
  std::uint64_t records_replayed = 0;
  std::uint64_t torn_bytes_truncated = 0;
  std::chrono::milliseconds duration{0};
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_STORE_STATS_H_
