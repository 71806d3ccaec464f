// FileRepository: the file backend, counterd's default and embedded one. It
// owns a data dir on a local volume (a PersistentVolume under a
// StatefulSet): a checksummed journal with group commit, plus a JSON
// snapshot replaced atomically by compaction in the background. Formats:
// docs/storage-format.md; the crash analysis: docs/durability.md.
//
// Thread-safety: all methods are thread-safe. Reads take a shared lock and
// never wait for I/O. Commits queue in a CommitQueue; whoever holds the
// committer's role (the committer thread, or a submitter committing inline
// while fsyncs are fast) decides each transaction with MutationRules
// against the in-memory state, appends one journal record per batch,
// fdatasyncs, applies the batch and completes the transactions.
//
// Invariants (referenced in the code as "Invariant (n)"):
//  1. A transaction is acknowledged (completed with OK) only after the
//     journal record holding it is fdatasync'ed.
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
//     stays failed: every later write is refused until restart. A failed
//     fsync is never retried.
//  8. A journal file's header is durable, and its directory entry too,
//     before any record is appended to it.
#ifndef COUNTERD_STORAGE_FILE_REPOSITORY_H_
#define COUNTERD_STORAGE_FILE_REPOSITORY_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "counterd/core/clock.h"
#include "counterd/core/result.h"
#include "counterd/platform/file_system.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

struct FileRepositoryOptions {
  std::string data_dir;
  // Compact (new snapshot, new journal) once the journal passes this size.
  std::uint64_t compaction_threshold_bytes = 64ull << 20;
  // Idempotency records older than this are dropped.
  std::chrono::milliseconds idempotency_retention = std::chrono::hours(24);
  // Upper bound on the transactions of one group commit.
  std::size_t max_batch = 4096;
  // Start the committer thread. Tests turn it off and drive the store with
  // CommitPendingBatch(), RunDutiesNow() and CompactNow().
  bool start_committer = true;
  // A submitter that finds nobody committing, after a batch of one, commits
  // its own batch on its own thread while the average fdatasync stays below
  // this (0: never). See commit_queue.h.
  std::chrono::microseconds inline_commit_max_fsync{1000};
  // An fdatasync slower than this is logged as a warning with its duration.
  std::chrono::milliseconds slow_fsync_warning{100};
  // Expired counters removed from memory per background pass.
  std::size_t expiry_sweep_batch = 1024;
  // Writes are refused (kResourceExhausted, 507) before they reach the
  // journal while the data dir's file system has fewer free bytes than
  // this. nullopt: the default rule, max(64 MiB, 2 x the last snapshot's
  // size + 16 MiB) (see disk_space_guard.h); 0: never.
  std::optional<std::uint64_t> min_free_bytes;
  // The free space is looked at (statvfs) at most this often; 0: at every
  // write, /readyz and /metrics (tests).
  std::chrono::milliseconds disk_check_interval{1000};
  // Test hook (start_committer=false): CompactNow() alternates between
  // rotating the journal and writing the snapshot, so that tests can commit
  // batches in between, as the committer does while the compactor writes.
  bool split_compaction_for_test = false;
};

// What start-up found and did.
struct RecoveryInfo {
  std::uint64_t counters = 0;
  std::uint64_t snapshot_seq = 0;
  std::uint64_t records_replayed = 0;
  std::uint64_t torn_bytes_truncated = 0;
  // The formats found: 0 when there was no snapshot / no journal record.
  int snapshot_format = 0;
  int journal_format = 0;  // the oldest among the files replayed
  std::chrono::milliseconds duration{0};
};

class FileRepository : public CounterRepository {
 public:
  // Locks the data dir, recovers from it (a version-1 dir is upgraded: see
  // docs/storage-format.md) and, unless told otherwise, starts the
  // committer. Returns kUnavailable if another process holds the lock,
  // kDataLoss (naming file and byte offset) for corrupt state or a format
  // this counterd does not read, or the I/O error that stopped recovery.
  // |fs| and |clock| must outlive the repository.
  static Result<std::unique_ptr<FileRepository>> Open(
      platform::FileSystem& fs, const Clock& clock,
      FileRepositoryOptions options);

  // Checks a data dir offline, as Open would, without changing or locking
  // it (counterd check). A torn tail is reported in the result, not as an
  // error; other damage is kDataLoss naming file and byte offset.
  static Result<RecoveryInfo> Verify(platform::FileSystem& fs,
                                     const std::string& data_dir);

  // Decodes a snapshot document (a state.json, or what GET /admin/snapshot
  // sends) whole; kDataLoss naming |source| and the byte offset if it is
  // damaged or of a format this counterd does not read.
  static Result<SnapshotSummary> VerifySnapshot(std::string_view document,
                                                std::string_view source);
  // The same, and what it holds (to load it into another backend).
  static Result<SnapshotContents> ReadSnapshot(std::string_view document,
                                               std::string_view source);

  // counterd restore: makes |data_dir| a store holding exactly |document|
  // (verified first, as VerifySnapshot). A data dir that holds a store (or
  // an interrupted restore) is refused with kAlreadyExists unless
  // |force|, which replaces it. kUnavailable if a counterd holds the dir.
  // Crash-safe: a restore cut short leaves a dir counterd refuses to start
  // on (RESTORING), never a half-restored store; see restore.cc.
  static Result<SnapshotSummary> Restore(platform::FileSystem& fs,
                                         std::string_view document,
                                         std::string_view source,
                                         const std::string& data_dir,
                                         bool force);

  virtual const RecoveryInfo& Recovery() const = 0;

  // Test hooks (start_committer=false): commits everything queued now on
  // the calling thread and returns how many transactions it took; runs the
  // background duties (expiry sweep, compaction if due); runs a compaction
  // synchronously.
  virtual std::size_t CommitPendingBatch() = 0;
  virtual void RunDutiesNow() = 0;
  virtual Status CompactNow() = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_REPOSITORY_H_
