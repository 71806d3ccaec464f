// CounterStore: the durable storage engine. It owns the data dir: a JSON
// snapshot (state.json) plus checksummed journal files, recovery at Open,
// group commit, and compaction in the background.
//
// Thread-safety: all public methods are thread-safe. Reads (Get, List,
// FindIdempotency) take a shared lock and never wait for I/O. One thread at
// a time holds the committer's role: it plans a batch, appends it to the
// journal, fdatasyncs, applies it and runs the completions. That is the
// committer thread, except that a Submit which finds the role free while
// fsyncs are fast takes it for one batch and commits on the caller's
// thread (StoreOptions::inline_commit_max_fsync); Submit then returns after
// the fsync. Compaction's copy runs on the committer thread only. See
// docs/architecture.md and docs/durability.md.
//
// Invariants (referenced in the code as "Invariant (n)"):
//  1. A mutation is acknowledged (its completion runs with OK) only after
//     the journal record holding it is fdatasync'ed.
//  2. The in-memory state readers see is changed only after that fsync, so
//     no reader sees a value a crash could take back.
//  3. The snapshot is replaced only by renaming a fully written, fsynced
//     temp file, and the directory is fsynced after the rename.
//  4. A snapshot records the last journal seq it includes; replay skips
//     seq <= snapshot seq, so a crash between snapshot and journal cleanup
//     is harmless and replay is idempotent.
//  5. A journal file is deleted only after a snapshot covering it is
//     durable (per 3).
//  6. At recovery a torn record at the tail of the last journal is
//     truncated; by (1) it was never acknowledged. Any other damage is
//     kDataLoss and start-up is refused.
//  7. After any failed write, fsync, rename or directory fsync the store
//     stays failed: every later mutation is refused until restart. A
//     failed fsync is never retried.
#ifndef COUNTERD_STORAGE_COUNTER_STORE_H_
#define COUNTERD_STORAGE_COUNTER_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/clock.h"
#include "counterd/core/histogram.h"
#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/platform/file_system.h"
#include "counterd/storage/records.h"
#include "counterd/storage/store_stats.h"

namespace counterd::storage {

struct StoreOptions {
  std::string data_dir;
  // Compact (new snapshot, new journal) once the journal passes this size.
  std::uint64_t compaction_threshold_bytes = 64ull << 20;
  // Idempotency records older than this are dropped.
  std::chrono::milliseconds idempotency_retention = std::chrono::hours(24);
  // Upper bounds on one group commit.
  std::size_t max_batch_mutations = 4096;
  // Start the committer thread. Tests turn it off and call
  // CommitPendingBatch() by hand.
  bool start_committer = true;
  // A submitter that finds nobody committing, after a batch of one, commits
  // its own batch on its own thread while the average fdatasync stays below
  // this (0: never).
  // With a fast disk that saves two thread hand-offs per commit, which cost
  // as much as the fdatasync; with a slow one the caller's thread stays
  // free and the committer thread does all the waiting.
  std::chrono::microseconds inline_commit_max_fsync{1000};
  // Test hook (start_committer=false): CompactNow() alternates between
  // rotating the journal and writing the snapshot, so that tests can commit
  // batches in between, as the committer does while the compactor writes.
  bool split_compaction_for_test = false;
};

// The state a planner decides against: everything committed plus the
// effects of the earlier mutations in the same batch.
class StateView {
 public:
  virtual std::optional<domain::Counter> FindCounter(
      std::string_view name) const = 0;
  // Unexpired records only.
  virtual const IdempotencyRecord* FindIdempotency(
      std::string_view key) const = 0;
  virtual std::chrono::system_clock::time_point Now() const = 0;

 protected:
  ~StateView() = default;
};

// A planner turns one mutation into effects and the outcome to report. It
// runs in submission order on the thread holding the committer's role (see
// above) and must not block.
struct Plan {
  std::vector<Effect> effects;
  domain::MutationOutcome outcome;
};
using Planner = std::function<Plan(const StateView&)>;
// Runs once, on the thread holding the committer's role (possibly the
// submitter's own, inside Submit), or the caller's for an immediate refusal.
// An OK outcome is durable when it runs.
using Completion = std::function<void(domain::MutationOutcome)>;

class CounterStore {
 public:
  // Locks the data dir, recovers from it and, unless told otherwise, starts
  // the committer. Returns kUnavailable if another process holds the lock,
  // kDataLoss (naming file and byte offset) for corrupt state, or the I/O
  // error that stopped recovery. |fs| and |clock| must outlive the store.
  static Result<std::unique_ptr<CounterStore>> Open(platform::FileSystem& fs,
                                                    const Clock& clock,
                                                    StoreOptions options);
  virtual ~CounterStore() = default;

  // Checks a data dir offline, as Open would, without changing or locking
  // it (counterd check). A torn tail is reported in the result, not as an
  // error; other damage is kDataLoss naming file and byte offset.
  static Result<RecoveryInfo> Verify(platform::FileSystem& fs,
                                     const std::string& data_dir);

  virtual std::optional<domain::Counter> Get(std::string_view name) const = 0;
  // Counters whose names start with |prefix| and sort after |after|, in
  // name order, at most |limit|.
  virtual std::vector<domain::Counter> List(std::string_view prefix,
                                            std::string_view after,
                                            std::size_t limit) const = 0;
  virtual std::optional<IdempotencyRecord> FindIdempotency(
      std::string_view key) const = 0;

  // Queues a mutation, or commits it at once on this thread (see above).
  // |done| runs after the batch holding it is durable (Invariant 1), or with
  // kUnavailable/kResourceExhausted if the store has failed or is closing.
  virtual void Submit(Planner planner, Completion done) = 0;

  // Test hook (start_committer=false): commits everything queued now on the
  // calling thread. Returns the number of mutations taken.
  virtual std::size_t CommitPendingBatch() = 0;
  // Test hook: runs a compaction synchronously (start_committer=false).
  virtual Status CompactNow() = 0;

  // Refuses new mutations, commits what is queued, waits for compaction and
  // stops the threads. Idempotent. Returns the first error seen, if any.
  virtual Status Close() = 0;

  // OK while writes are accepted; else why not (failed closed or closing).
  virtual Status Health() const = 0;
  virtual StoreStats Stats() const = 0;
  virtual const RecoveryInfo& Recovery() const = 0;
  virtual const Histogram& BatchSizes() const = 0;
  virtual const Histogram& FsyncSeconds() const = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_COUNTER_STORE_H_
