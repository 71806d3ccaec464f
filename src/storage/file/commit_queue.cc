#include "commit_queue.h"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace counterd::storage {

CommitQueue::CommitQueue(Committer& committer, Options options)
    : committer_(committer), options_(options) {
  if (options_.start_thread) {
    thread_ = std::jthread([this](const std::stop_token& stop) { Loop(stop); });
  }
}

CommitQueue::~CommitQueue() { Close(); }

bool CommitQueue::Submit(PendingCommit&& pending) {
  std::vector<PendingCommit> batch;
  {
    MutexLock lock(mu_);
    if (closing_) return false;
    queue_.push_back(std::move(pending));
    if (committing_) {
      // The holder takes it with the next batch; a lingering holder wants
      // to hear when the batch it waits for is complete (once: the queue
      // grows one at a time, and it may take a while to wake).
      if (linger_target_ != 0 && queue_.size() == linger_target_) {
        cv_.SignalAll();
      }
      return true;
    }
    if (duties_due_ || !InlineCommitPays()) {
      cv_.SignalAll();
      return true;
    }
    // Nobody is committing: this thread takes the role for one batch.
    committing_ = true;
    batch = TakeBatch();
  }
  committer_.CommitBatch(batch);
  ReleaseRole();
  return true;
}

bool CommitQueue::InlineCommitPays() const {
  if (!options_.start_thread) return false;  // tests commit by hand
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(
      options_.inline_max_fsync);
  // A batch of more than one says writers are arriving concurrently: then
  // group commit amortises the hand-offs anyway, and an I/O thread blocked
  // in fdatasync would hold up every other connection it serves.
  return last_batch_size_.load(std::memory_order_relaxed) <= 1 &&
         fsync_ewma_ns_.load(std::memory_order_relaxed) <
             static_cast<std::uint64_t>(limit.count());
}

void CommitQueue::Observe(std::size_t batch_size,
                          std::chrono::nanoseconds fsync) {
  last_batch_size_.store(batch_size, std::memory_order_relaxed);
  if (fsync.count() == 0) return;
  // A moving average with weight 1/8.
  const auto ns = static_cast<std::uint64_t>(fsync.count());
  const std::uint64_t avg = fsync_ewma_ns_.load(std::memory_order_relaxed);
  fsync_ewma_ns_.store(avg - avg / 8 + ns / 8, std::memory_order_relaxed);
}

void CommitQueue::ReleaseRole() {
  MutexLock lock(mu_);
  committing_ = false;
  if (!queue_.empty() || duties_due_ || closing_) cv_.SignalAll();
}

void CommitQueue::WakeForDuties() {
  MutexLock lock(mu_);
  duties_due_ = true;
  cv_.SignalAll();
}

void CommitQueue::ScheduleDuties(std::chrono::steady_clock::time_point at) {
  MutexLock lock(mu_);
  if (at >= next_duties_) return;
  next_duties_ = at;
  cv_.SignalAll();
}

std::vector<PendingCommit> CommitQueue::TakeBatch() {
  std::vector<PendingCommit> batch;
  const std::size_t n = std::min(queue_.size(), options_.max_batch);
  batch.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void CommitQueue::Loop(const std::stop_token& stop) {
  while (true) {
    std::vector<PendingCommit> batch;
    bool duties = false;
    {
      MutexLock lock(mu_);
      // A batch is whatever queued up during the previous fsync (leveldb's
      // group commit), and under concurrent writers whatever comes while
      // we linger (see Linger). An inline committer holds the role until
      // it is done; then the queue is ours.
      while (committing_ || (queue_.empty() && !duties_due_ && !closing_ &&
                             std::chrono::steady_clock::now() < next_duties_)) {
        if (next_duties_ == std::chrono::steady_clock::time_point::max()) {
          cv_.Wait(mu_);
        } else {
          cv_.WaitUntil(mu_, next_duties_);
        }
      }
      if (queue_.empty() && (closing_ || stop.stop_requested())) return;
      committing_ = true;
      Linger();
      batch = TakeBatch();
      duties = duties_due_ || std::chrono::steady_clock::now() >= next_duties_;
      duties_due_ = false;
    }
    if (!batch.empty()) committer_.CommitBatch(batch);
    std::chrono::steady_clock::time_point next =
        std::chrono::steady_clock::time_point::max();
    bool ran = false;
    if (duties || !batch.empty()) {
      next = committer_.RunDuties();
      ran = true;
    }
    MutexLock lock(mu_);
    committing_ = false;
    // Nobody else could commit (and schedule) while the role was ours, so
    // the duties' own answer is the whole truth.
    if (ran) next_duties_ = next;
    if (queue_.empty()) cv_.SignalAll();  // for WaitUntilIdle
  }
}

void CommitQueue::Linger() {
  const std::size_t last = last_batch_size_.load(std::memory_order_relaxed);
  if (options_.linger_min_batch == 0 || last < options_.linger_min_batch ||
      queue_.size() >= last || duties_due_ || closing_) {
    return;
  }
  // Never longer than an fdatasync takes: waiting longer than the flush
  // it saves costs more latency than it saves work.
  const auto ewma = std::chrono::nanoseconds(static_cast<std::int64_t>(
      fsync_ewma_ns_.load(std::memory_order_relaxed)));
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::min<std::chrono::nanoseconds>(ewma, options_.linger_max);
  linger_target_ = last;
  cv_.SignalAll();  // for WaitUntilLingering
  while (queue_.size() < linger_target_ && !duties_due_ && !closing_ &&
         std::chrono::steady_clock::now() < deadline) {
    cv_.WaitUntil(mu_, deadline);
  }
  linger_target_ = 0;
}

std::size_t CommitQueue::CommitPending() {
  std::vector<PendingCommit> batch;
  {
    MutexLock lock(mu_);
    batch = TakeBatch();
  }
  if (!batch.empty()) committer_.CommitBatch(batch);
  return batch.size();
}

void CommitQueue::RunDutiesNow() { (void)committer_.RunDuties(); }

void CommitQueue::WaitUntilIdle() {
  MutexLock lock(mu_);
  while (committing_ || !queue_.empty()) cv_.Wait(mu_);
}

void CommitQueue::WaitUntilLingering() {
  MutexLock lock(mu_);
  while (linger_target_ == 0) cv_.Wait(mu_);
}

void CommitQueue::Close() {
  {
    MutexLock lock(mu_);
    if (closing_ && !thread_.joinable() && queue_.empty() && !committing_) {
      return;
    }
    closing_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();  // it commits everything queued before it returns
  }
  while (CommitPending() > 0) {
  }
  // An inline committer may still be finishing its batch.
  MutexLock lock(mu_);
  while (committing_) cv_.Wait(mu_);
}

}  // namespace counterd::storage
