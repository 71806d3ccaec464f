// CounterRepository: where counters are kept, behind one interface with one
// promise. Two backends implement it: the file backend (a journal with
// group commit plus a snapshot, on a local volume; file_repository.h) and
// the PostgreSQL backend (stateless replicas in front of one database).
//
// The promise, for every backend:
//  1. Commit decides each transaction with service::MutationRules against
//     the backend's current state and completes only once the outcome is
//     durable (an OK outcome is on stable storage when Complete runs).
//  2. Reads return committed state only and include every commit that
//     completed before the read began: nothing a client was told is taken
//     back, and nothing it reads can be lost by a crash.
//  3. A transaction is all or nothing.
//  4. A failure the backend cannot reason about fails closed: writes are
//     refused (kUnavailable, or kResourceExhausted for a full disk) and
//     Health() says why.
//
// Completion: every call takes a Completion the caller keeps alive until
// Complete runs, exactly once, possibly before the call returns (on the
// caller's thread) or later on a thread of the backend. Complete must not
// block; an HTTP session hands the result to its own thread there.
//
// Thread-safety: all methods are thread-safe.
#ifndef COUNTERD_STORAGE_COUNTER_REPOSITORY_H_
#define COUNTERD_STORAGE_COUNTER_REPOSITORY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/histogram.h"
#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/counter_name.h"
#include "counterd/domain/transaction.h"

namespace counterd::storage {

// Receives the result of one repository call. See the contract above.
template <typename T>
class Completion {
 public:
  virtual void Complete(T result) = 0;

 protected:
  ~Completion() = default;
};

struct ListRequest {
  std::string prefix;  // only names starting with this
  std::string after;   // only names sorting after this ("" = from the start)
  std::size_t limit = 100;
};

// What List reads: the counters, and the last commit the read includes
// (every commit up to |seq| and none after it): a watcher stitching a read
// to the change feed drops the feed's changes that the read already shows.
struct CounterList {
  std::vector<domain::Counter> counters;
  std::uint64_t seq = 0;
};

// One committed change of one counter, for watchers.
struct CounterChange {
  std::string name;
  std::optional<domain::Counter> state;  // nullopt: deleted or expired
};
// The changes of one commit (a journal record, a database transaction), in
// commit order, published only once durable.
struct ChangeBatch {
  std::uint64_t seq = 0;  // the commit's sequence number (grows by commit)
  std::vector<CounterChange> changes;
  // Changes between the previous batch and this one may be missing (the
  // backend lost track: a dropped notification, a catch-up that could not
  // reach back far enough). Watchers must resynchronise from current state.
  bool gap = false;
};

// Called by the backend with every commit's changes, in commit order, after
// they are durable. Must not block (it runs on the committing thread).
class ChangeSink {
 public:
  virtual void OnCommitted(const ChangeBatch& batch) = 0;

 protected:
  ~ChangeSink() = default;
};

// Counts and gauges for /metrics; a copy. Fields a backend does not have
// stay 0.
struct RepositoryStats {
  std::string_view backend;            // "file" or "postgres"
  std::uint64_t counters = 0;          // counters stored (exact)
  std::uint64_t idempotency_keys = 0;  // retained idempotency records
  std::uint64_t mutations = 0;  // transactions acknowledged that changed state
  std::uint64_t commits = 0;    // group commits (journal records, db txns)
  std::uint64_t fsyncs = 0;     // journal fdatasyncs / database commits
  std::uint64_t expired = 0;    // counters removed after their expiry
  std::uint64_t last_seq = 0;   // sequence number of the last commit
  double recovery_seconds = 0;  // how long start-up recovery took
  bool failed = false;          // failed closed: writes refused
  bool up = true;               // can serve (postgres: connected)
  // PostgreSQL backend.
  std::uint64_t reconnects = 0;  // connections re-established after a loss
  // File backend.
  std::uint64_t journal_bytes = 0;   // size of the current journal file
  std::uint64_t compactions = 0;     // snapshots written by compaction
  std::uint64_t snapshot_bytes = 0;  // size of the last snapshot written/read
  // The data dir's file system, as of the last look (at most ~1 s old).
  std::uint64_t data_dir_free_bytes = 0;
  // The current journal plus the last snapshot.
  std::uint64_t data_dir_size_bytes = 0;
  std::uint64_t min_free_bytes = 0;  // the threshold in force; 0: off
  bool low_disk = false;             // free < min_free_bytes: writes refused
  std::uint64_t writes_refused_low_disk = 0;
  Histogram::Snapshot batch_sizes;     // transactions per group commit
  Histogram::Snapshot commit_seconds;  // journal fdatasync / COMMIT times
};

// A snapshot document produced in pieces, each encoded when it is taken: a
// caller that sends each piece before it takes the next holds one piece
// of the encoding at a time, never the whole document. One call at a time:
// Next again only once the last one's handler has run.
class SnapshotReader {
 public:
  using PieceHandler = std::function<void(Result<std::string>)>;
  virtual ~SnapshotReader() = default;
  // Calls |done| once with the next bytes of the document, about
  // |size_hint| of them (more when one record is longer), empty once all
  // of it has been taken; or with why the rest cannot be read (the
  // database went away mid-document). |done| runs before Next returns when
  // the backend's store is in memory (file backend), later and on the
  // backend's thread when it waits for a database. Destroying the reader
  // with a call in flight is allowed: |done| still runs.
  virtual void Next(std::size_t size_hint, PieceHandler done) = 0;
};

// A consistent copy of the whole store as of one commit: every live counter
// and every retained idempotency record, encoded as a format-2 snapshot
// document (docs/storage-format.md), byte for byte what a file backend's
// state.json holds, so a data dir can start from it (counterd restore).
struct SnapshotImage {
  std::uint64_t seq = 0;  // the last commit it includes
  // The document; never null in an image a backend completed with. It
  // holds what the backend gives it to read (a copy, or a cursor of the
  // store) until it is destroyed, which must be before the backend is.
  std::unique_ptr<SnapshotReader> document;
};

// What a snapshot document holds (counterd check --snapshot, restore).
struct SnapshotSummary {
  int format = 0;  // of the document
  std::uint64_t seq = 0;
  std::uint64_t counters = 0;
  std::uint64_t idempotency_records = 0;
};
// A snapshot decoded, to load into a backend (counterd restore).
struct SnapshotContents {
  SnapshotSummary summary;
  std::vector<domain::Counter> counters;               // sorted by name
  std::vector<domain::IdempotencyRecord> idempotency;  // oldest first
};

class CounterRepository {
 public:
  virtual ~CounterRepository() = default;

  // The counter, or nullopt if it does not exist (or has expired).
  // kUnavailable when the backend cannot read.
  virtual void Get(
      const domain::CounterName& name,
      Completion<Result<std::optional<domain::Counter>>>& done) = 0;
  // Live counters whose names start with request.prefix and sort after
  // request.after, in name order, at most request.limit; as of one commit.
  virtual void List(const ListRequest& request,
                    Completion<Result<CounterList>>& done) = 0;
  // Decides and commits |tx| (see the promise above). Refusals are
  // outcomes, never a dropped call.
  virtual void Commit(domain::Transaction tx,
                      Completion<domain::TransactionOutcome>& done) = 0;

  // A snapshot (GET /admin/snapshot): the state as of one commit sequence,
  // taken without stopping writers (the file backend pages through a
  // cursor of its store; PostgreSQL copies it in one transaction); the
  // encoding happens outside the backend's locks. A backend without it
  // completes with kFailedPrecondition.
  virtual void TakeSnapshot(Completion<Result<SnapshotImage>>& done) {
    done.Complete(
        Status::FailedPrecondition("this backend cannot take a snapshot"));
  }

  // Where committed changes go (watch). Set once before serving; |sink|
  // must outlive the repository's Close().
  virtual void SetChangeSink(ChangeSink* sink) = 0;

  // OK while writes are accepted; else why not (failed, closing,
  // disconnected).
  virtual Status Health() const = 0;
  virtual RepositoryStats Stats() const = 0;

  // Refuses new work, finishes what was accepted, stops the backend's
  // threads. Idempotent. Returns the first error seen, if any.
  virtual Status Close() = 0;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_COUNTER_REPOSITORY_H_
