// FileRepositoryImpl: the FileRepository. It wires the parts — CommitQueue
// (queue and committer role), Journal, StoreState (behind state_mu_),
// Compactor, FailureLatch — and keeps the protocol between them. See
// include/counterd/storage/file_repository.h for the contract and the
// numbered invariants the code refers to.
#ifndef COUNTERD_STORAGE_FILE_FILE_REPOSITORY_IMPL_H_
#define COUNTERD_STORAGE_FILE_FILE_REPOSITORY_IMPL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commit_queue.h"
#include "compactor.h"
#include "counterd/core/mutex.h"
#include "counterd/storage/file_repository.h"
#include "disk_space_guard.h"
#include "failure_latch.h"
#include "journal.h"
#include "store_state.h"

namespace counterd::storage {

class FileRepositoryImpl final : public FileRepository,
                                 private CommitQueue::Committer {
 public:
  // Use FileRepository::Open.
  FileRepositoryImpl(platform::FileSystem& fs, const Clock& clock,
                     FileRepositoryOptions options,
                     std::unique_ptr<platform::FileLock> lock, StoreState state,
                     std::uint64_t last_seq, std::unique_ptr<Journal> journal,
                     RecoveryInfo recovery, std::uint64_t snapshot_bytes);
  ~FileRepositoryImpl() override;
  FileRepositoryImpl(const FileRepositoryImpl&) = delete;
  FileRepositoryImpl& operator=(const FileRepositoryImpl&) = delete;

  // CounterRepository
  void Get(const domain::CounterName& name,
           Completion<Result<std::optional<domain::Counter>>>& done) override
      EXCLUDES(state_mu_);
  void List(const ListRequest& request,
            Completion<Result<CounterList>>& done) override EXCLUDES(state_mu_);
  void Commit(domain::Transaction tx,
              Completion<domain::TransactionOutcome>& done) override;
  void TakeSnapshot(Completion<Result<SnapshotImage>>& done) override
      EXCLUDES(state_mu_);
  void SetChangeSink(ChangeSink* sink) override { sink_.store(sink); }
  Status Health() const override;
  RepositoryStats Stats() const override;
  Status Close() override;

  // FileRepository
  const RecoveryInfo& Recovery() const override { return recovery_; }
  std::size_t CommitPendingBatch() override { return queue_.CommitPending(); }
  void RunDutiesNow() override { queue_.RunDutiesNow(); }
  Status CompactNow() override;

 private:
  class CursorPages;  // a snapshot document's pages, from a state_ cursor

  // CommitQueue::Committer: run by the holder of the committer's role.
  void CommitBatch(std::vector<PendingCommit>& batch) override
      EXCLUDES(state_mu_);
  std::chrono::steady_clock::time_point RunDuties() override
      EXCLUDES(state_mu_);

  std::int64_t NowMs() const;
  // The state as of applied_seq_, as a document read from a cursor.
  SnapshotImage OpenSnapshot() EXCLUDES(state_mu_);
  // Decides every transaction of |batch| in order; their outcomes.
  std::vector<domain::TransactionOutcome> Decide(
      const std::vector<PendingCommit>& batch, service::WorkingSet& ws,
      std::int64_t now_ms) EXCLUDES(state_mu_);
  // Appends and syncs one record; on failure fails the store (Invariant 7)
  // and returns why. REQUIRES: the committer's role.
  Status WriteRecord(const std::vector<Effect>& effects,
                     std::chrono::nanoseconds& took);
  // Writes the writes of |ws| (not empty), the decisions of a batch of
  // |batch_size| transactions, as one record (WriteRecord), then applies
  // them to the committed state; |changes| gets them for the watchers. On
  // failure nothing is applied and the store has failed. REQUIRES: the
  // committer's role.
  Status WriteAndApply(service::WorkingSet& ws, std::int64_t now_ms,
                       std::size_t batch_size, ChangeBatch& changes,
                       std::chrono::nanoseconds& took) EXCLUDES(state_mu_);
  // REQUIRES: the committer's role. Starts a compaction if the journal is
  // large enough (or |force|) and none is running; |synchronous| writes
  // the snapshot on this thread.
  Status MaybeCompact(bool force, bool synchronous) EXCLUDES(state_mu_);
  Status RotateJournal();
  // Removes a bounded number of expired counters and tells watchers.
  // Returns when the next sweep is due.
  std::chrono::steady_clock::time_point SweepExpired() EXCLUDES(state_mu_);
  std::chrono::steady_clock::time_point SteadyAt(std::int64_t wall_ms) const;
  void Publish(const ChangeBatch& batch);
  // OK, or the low-disk refusal (see disk_space_guard.h).
  Status CheckDiskSpace() const {
    return disk_.Check(compactor_.snapshot_bytes());
  }

  platform::FileSystem& fs_;
  const Clock& clock_;
  const FileRepositoryOptions options_;
  std::unique_ptr<platform::FileLock> lock_;
  const RecoveryInfo recovery_;

  // The committed state: written only by the committer's role holder
  // (under the exclusive lock, after fsync: Invariant 2), read by everyone
  // under a shared lock.
  mutable SharedMutex state_mu_;
  StoreState state_ GUARDED_BY(state_mu_);
  // The seq of the last batch applied to state_ (last_seq_ as readers see
  // it): a snapshot copies both under one lock.
  std::uint64_t applied_seq_ GUARDED_BY(state_mu_);

  // Owned by whoever holds the committer's role (see commit_queue.h).
  std::unique_ptr<Journal> journal_;
  std::uint64_t last_seq_;
  std::optional<SnapshotImage> deferred_snapshot_;  // split_compaction_for_test

  FailureLatch latch_;
  Compactor compactor_;
  // Mutable: Health() and Stats() look at the free space too.
  mutable DiskSpaceGuard disk_;
  std::atomic<ChangeSink*> sink_{nullptr};
  std::atomic<bool> closing_{false};
  Status close_status_;  // what the first Close returned

  std::atomic<std::uint64_t> mutations_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> expired_{0};
  std::atomic<std::uint64_t> journal_bytes_{0};
  std::atomic<std::uint64_t> last_seq_stat_{0};
  std::atomic<std::uint64_t> counters_{0};
  std::atomic<std::uint64_t> idempotency_keys_{0};
  Histogram batch_sizes_{Histogram::BatchSizeBounds()};
  Histogram fsync_seconds_{Histogram::LatencySecondsBounds()};

  CommitQueue queue_;  // last: its thread starts once everything exists
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_FILE_REPOSITORY_IMPL_H_
