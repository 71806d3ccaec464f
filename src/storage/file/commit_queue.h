// CommitQueue: group commit's queue and the committer's role (leveldb's
// writers_ queue). Transactions wait here; one thread at a time holds the
// role, takes everything queued (up to max_batch) and has the Committer
// commit it as one batch: one journal record, one fdatasync.
//
// The role is held by the committer thread, except that a submitter that
// finds nobody committing may take it for one batch and commit on its own
// thread ("the writer does the write"): only while the last batch held a
// single transaction (writers arrive one at a time) and fsyncs are fast
// (inline_max_fsync), since then the two thread hand-offs it saves cost as
// much as the fdatasync itself. Under concurrent writers, or on a slow disk,
// the committer thread does all the waiting and I/O threads never block.
// Under concurrent writers the committer thread lingers (PostgreSQL's
// commit_delay, with its commit_siblings): after a batch of at least
// linger_min_batch it waits, before it takes the next, until as many have
// queued, or for as long as an fdatasync takes (linger_max at most),
// whichever is first. At 64 connections on 2 cores the I/O threads, not the
// disk, set the pace: without it the committer took whatever had queued
// during a fast fdatasync (batches of about 23), and each batch cost a
// flush and a round of thread wake-ups. Lingering grew them to 40-55 and
// gave 1.13-1.15x the increments per second, with lower p99s
// (docs/BENCHMARKS.md). A lone writer, or a few, never linger: their
// latency is the flush alone.
// Background duties (compaction, expiry sweeps) run only on the committer
// thread, with the role held, so an inline committer is never held up by
// them and a steady stream of inline commits cannot put them off.
//
// Thread-safe.
#ifndef COUNTERD_STORAGE_FILE_COMMIT_QUEUE_H_
#define COUNTERD_STORAGE_FILE_COMMIT_QUEUE_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <stop_token>
#include <thread>
#include <vector>

#include "counterd/core/mutex.h"
#include "counterd/domain/transaction.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

struct PendingCommit {
  domain::Transaction tx;
  Completion<domain::TransactionOutcome>* done = nullptr;
};

class CommitQueue {
 public:
  // What the queue commits through (the FileRepository).
  class Committer {
   public:
    // Commits |batch| and completes each transaction. Runs on the thread
    // holding the role, never concurrently with itself or RunDuties.
    virtual void CommitBatch(std::vector<PendingCommit>& batch) = 0;
    // Background duties, on the committer thread with the role held.
    // Returns when it wants to run again (time_point::max(): when woken).
    virtual std::chrono::steady_clock::time_point RunDuties() = 0;

   protected:
    ~Committer() = default;
  };

  struct Options {
    std::size_t max_batch = 4096;
    // Start the committer thread. Tests turn it off and call
    // CommitPending() and RunDutiesNow() by hand.
    bool start_thread = true;
    // See above; 0 never commits inline.
    std::chrono::microseconds inline_max_fsync{1000};
    // Lingering (see above): after a batch of at least linger_min_batch
    // (0: never linger), the committer thread waits for as many to queue
    // before it commits again, for at most the average fdatasync and
    // never more than linger_max.
    std::size_t linger_min_batch = 4;
    std::chrono::microseconds linger_max{500};
  };

  // |committer| must outlive this CommitQueue.
  CommitQueue(Committer& committer, Options options);
  ~CommitQueue();
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Queues |pending|, or commits it at once on this thread (see above).
  // Returns false, without taking it, once Close has begun.
  [[nodiscard]] bool Submit(PendingCommit&& pending) EXCLUDES(mu_);
  // Asks the committer thread to run its duties soon (a compaction is due);
  // until it has, submitters leave the role to it.
  void WakeForDuties() EXCLUDES(mu_);
  // Asks the committer thread to run its duties by |at| (an expiry is
  // coming), without taking the role from inline committers meanwhile.
  void ScheduleDuties(std::chrono::steady_clock::time_point at) EXCLUDES(mu_);
  // Feeds the inline-commit policy: the batch just committed and its
  // fdatasync (zero if it wrote nothing).
  void Observe(std::size_t batch_size, std::chrono::nanoseconds fsync);

  // Test hooks (start_thread = false): commit what is queued now on this
  // thread (returns how many), run the duties.
  std::size_t CommitPending() EXCLUDES(mu_);
  void RunDutiesNow();
  // Test hook: waits until nothing is queued and the committer thread has
  // let go of the role, so that a test can tell which thread its next
  // submission commits on. REQUIRES: no inline commit in progress (an
  // inline committer's release does not wake this wait).
  void WaitUntilIdle() EXCLUDES(mu_);

  // Test hook: waits until the committer thread is lingering.
  void WaitUntilLingering() EXCLUDES(mu_);

  // Refuses new transactions, commits what is queued, waits for an inline
  // committer and stops the thread. Idempotent.
  void Close() EXCLUDES(mu_);

 private:
  void Loop(const std::stop_token& stop) EXCLUDES(mu_);
  std::vector<PendingCommit> TakeBatch() REQUIRES(mu_);
  bool InlineCommitPays() const REQUIRES(mu_);
  // On the committer thread with the role taken: waits as described above
  // while fewer than the last batch are queued.
  void Linger() REQUIRES(mu_);
  void ReleaseRole() EXCLUDES(mu_);

  Committer& committer_;
  const Options options_;

  Mutex mu_;
  CondVar cv_;  // queue, role, duties or closing changed
  std::deque<PendingCommit> queue_ GUARDED_BY(mu_);
  bool committing_ GUARDED_BY(mu_) = false;  // the role is held
  bool duties_due_ GUARDED_BY(mu_) = false;
  bool closing_ GUARDED_BY(mu_) = false;
  // While lingering: the queue length at which to stop (0: not lingering).
  std::size_t linger_target_ GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point next_duties_ GUARDED_BY(mu_) =
      std::chrono::steady_clock::time_point::max();

  // The inline-commit policy's inputs: a moving average of fdatasync time
  // and the last batch's size.
  std::atomic<std::uint64_t> fsync_ewma_ns_{0};
  std::atomic<std::size_t> last_batch_size_{0};

  std::jthread thread_;  // last: started once everything above exists
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_COMMIT_QUEUE_H_
