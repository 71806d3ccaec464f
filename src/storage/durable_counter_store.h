// DurableCounterStore: the CounterStore implementation. See counter_store.h
// for the contract and the numbered invariants that the code refers to.
#ifndef COUNTERD_STORAGE_DURABLE_COUNTER_STORE_H_
#define COUNTERD_STORAGE_DURABLE_COUNTER_STORE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "counterd/storage/counter_store.h"
#include "journal_writer.h"
#include "snapshot_codec.h"
#include "store_state.h"

namespace counterd::storage {

class DurableCounterStore final : public CounterStore {
 public:
  // Use CounterStore::Open.
  DurableCounterStore(platform::FileSystem& fs, const Clock& clock,
                      StoreOptions options,
                      std::unique_ptr<platform::FileLock> lock,
                      StoreState state, std::uint64_t last_seq,
                      std::unique_ptr<JournalWriter> journal,
                      RecoveryInfo recovery, std::uint64_t snapshot_bytes);
  ~DurableCounterStore() override;
  DurableCounterStore(const DurableCounterStore&) = delete;
  DurableCounterStore& operator=(const DurableCounterStore&) = delete;

  std::optional<domain::Counter> Get(std::string_view name) const override;
  std::vector<domain::Counter> List(std::string_view prefix,
                                    std::string_view after,
                                    std::size_t limit) const override;
  std::optional<IdempotencyRecord> FindIdempotency(
      std::string_view key) const override;

  void Submit(Planner planner, Completion done) override;
  std::size_t CommitPendingBatch() override;
  Status CompactNow() override;
  Status Close() override;

  Status Health() const override;
  StoreStats Stats() const override;
  const RecoveryInfo& Recovery() const override { return recovery_; }
  const Histogram& BatchSizes() const override { return batch_sizes_; }
  const Histogram& FsyncSeconds() const override { return fsync_seconds_; }

 private:
  struct Pending {
    Planner planner;
    Completion done;
  };

  void CommitterLoop(const std::stop_token& stop);
  // Takes up to max_batch_mutations queued mutations. REQUIRES: queue_mu_.
  std::vector<Pending> TakeBatchLocked();
  // REQUIRES: the committer's role (see committing_).
  void CommitBatch(std::vector<Pending>& batch);
  // Whether a submitter that finds nobody committing should commit its
  // batch itself: only while fsyncs are fast (inline_commit_max_fsync).
  bool InlineCommitPays() const;
  // Ends an inline commit: wakes the committer for what queued meanwhile,
  // and for a compaction the journal has grown into.
  void ReleaseCommitRole();
  // REQUIRES: committer context. Starts a compaction if the journal is
  // large enough and none is running; |synchronous| runs it here.
  Status MaybeCompact(bool force, bool synchronous);
  Status RotateJournal();
  void WriteSnapshot(const SnapshotData& snapshot);
  // Makes the store fail closed (Invariant 7); keeps the first cause.
  // |answered|: the mutations that met it are refused with |cause| itself.
  void Fail(const Status& cause, bool answered);
  // Why the store refuses writes after a failure (kUnavailable).
  Status Refusal() const;
  // The status to refuse a mutation with: Refusal(), except that the first
  // mutation to meet an unanswered ENOSPC gets kResourceExhausted (507).
  Status RefuseMutation();

  platform::FileSystem& fs_;
  const Clock& clock_;
  const StoreOptions options_;
  std::unique_ptr<platform::FileLock> lock_;
  const RecoveryInfo recovery_;

  // The committed state. Written only by the committer (under an exclusive
  // lock, after fsync); read by everyone under a shared lock.
  mutable std::shared_mutex state_mu_;
  StoreState state_;  // GUARDED_BY(state_mu_)

  // Owned by whoever holds the committer's role: the committer thread or
  // an inline committer (committing_), or the caller of
  // CommitPendingBatch/CompactNow when no committer runs.
  std::unique_ptr<JournalWriter> journal_;
  std::uint64_t last_seq_;
  // Moving average of fdatasync time and the last batch's size, for
  // InlineCommitPays.
  std::atomic<std::uint64_t> fsync_ewma_ns_{0};
  std::atomic<std::size_t> last_batch_size_{0};

  std::mutex queue_mu_;
  std::condition_variable_any queue_cv_;
  std::deque<Pending> queue_;    // GUARDED_BY(queue_mu_)
  bool committing_ = false;      // GUARDED_BY(queue_mu_): the role is held
  bool compaction_due_ = false;  // GUARDED_BY(queue_mu_)
  bool closing_ = false;         // GUARDED_BY(queue_mu_)
  bool closed_ = false;          // GUARDED_BY(queue_mu_)

  mutable std::mutex fail_mu_;
  Status failure_;                 // GUARDED_BY(fail_mu_)
  bool failure_answered_ = false;  // GUARDED_BY(fail_mu_)
  std::atomic<bool> failed_{false};
  std::atomic<bool> closing_flag_{false};

  std::atomic<bool> compaction_running_{false};
  std::jthread compactor_;
  std::optional<SnapshotData> deferred_snapshot_;  // split_compaction_for_test

  std::atomic<std::uint64_t> mutations_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> journal_bytes_{0};
  std::atomic<std::uint64_t> last_seq_stat_{0};
  std::atomic<std::uint64_t> counters_{0};
  std::atomic<std::uint64_t> idempotency_keys_{0};
  std::atomic<std::uint64_t> compactions_{0};
  std::atomic<std::uint64_t> snapshot_bytes_{0};
  Histogram batch_sizes_{Histogram::BatchSizeBounds()};
  Histogram fsync_seconds_{Histogram::LatencySecondsBounds()};

  std::jthread committer_;  // last: started after everything above exists
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_DURABLE_COUNTER_STORE_H_
