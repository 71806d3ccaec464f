// CommitQueue on its own, with a fake committer: batching, the
// inline-commit policy (who commits: the submitter or the committer
// thread), duties on the committer thread only, and Close.
#include "commit_queue.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store_test_util.h"

namespace counterd::storage {
namespace {

using domain::TransactionOutcome;
using std::chrono::steady_clock;

// Completes every transaction OK and records who committed what. A test
// may make the next CommitBatch wait (Hold) until Release, to keep the
// committer's role taken.
class FakeCommitter final : public CommitQueue::Committer {
 public:
  struct BatchSeen {
    std::size_t size;
    std::thread::id thread;
  };

  void CommitBatch(std::vector<PendingCommit>& batch) override {
    std::unique_lock lock(mu_);
    batches_.push_back({batch.size(), std::this_thread::get_id()});
    if (hold_next_) {
      hold_next_ = false;
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !held_; });
    }
    lock.unlock();
    for (PendingCommit& p : batch) p.done->Complete(TransactionOutcome{});
  }
  steady_clock::time_point RunDuties() override {
    std::lock_guard lock(mu_);
    duty_threads_.push_back(std::this_thread::get_id());
    cv_.notify_all();
    return duties_again_-- > 0 ? steady_clock::now()
                               : steady_clock::time_point::max();
  }

  // The next CommitBatch waits until Release; WaitHeld waits until one
  // does.
  void Hold() {
    std::lock_guard lock(mu_);
    hold_next_ = true;
  }
  void WaitHeld() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  // RunDuties asks to run again at once this many times.
  void RunDutiesAgain(int times) {
    std::lock_guard lock(mu_);
    duties_again_ = times;
  }
  void WaitForDuties(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return duty_threads_.size() >= n; });
  }
  std::vector<BatchSeen> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::vector<std::thread::id> duty_threads() const {
    std::lock_guard lock(mu_);
    return duty_threads_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<BatchSeen> batches_;
  std::vector<std::thread::id> duty_threads_;
  bool hold_next_ = false;
  bool held_ = false;
  int duties_again_ = 0;
};

CommitQueue::Options Manual(std::size_t max_batch = 4096) {
  return CommitQueue::Options{max_batch, /*start_thread=*/false,
                              std::chrono::microseconds(1000)};
}
CommitQueue::Options Threaded(
    std::chrono::microseconds inline_max = std::chrono::microseconds(1000)) {
  return CommitQueue::Options{4096, /*start_thread=*/true, inline_max};
}

PendingCommit Pending(Completion<TransactionOutcome>& done) {
  return PendingCommit{testing::Add("a", 1), &done};
}

// Submits one transaction and returns the thread that completed it.
std::thread::id CommitOne(CommitQueue& queue) {
  testing::Promise<TransactionOutcome> done;
  EXPECT_TRUE(queue.Submit(Pending(done)));
  return done.Wait().thread;
}

TEST(CommitQueueTest, WithoutTheThreadNothingCommitsUntilCommitPending) {
  FakeCommitter committer;
  CommitQueue queue(committer, Manual());
  std::deque<testing::OutcomeCapture> done(3);
  for (auto& d : done) ASSERT_TRUE(queue.Submit(Pending(d)));
  for (const auto& d : done) EXPECT_FALSE(d.done());
  EXPECT_EQ(queue.CommitPending(), 3u);
  for (const auto& d : done) EXPECT_TRUE(d.done());
  ASSERT_EQ(committer.batches().size(), 1u);
  EXPECT_EQ(committer.batches()[0].size, 3u);
  EXPECT_EQ(committer.batches()[0].thread, std::this_thread::get_id());
  EXPECT_EQ(queue.CommitPending(), 0u);
  EXPECT_EQ(committer.batches().size(), 1u) << "an empty batch is no batch";
  EXPECT_TRUE(committer.duty_threads().empty());
}

TEST(CommitQueueTest, MaxBatchCapsEachBatch) {
  FakeCommitter committer;
  CommitQueue queue(committer, Manual(2));
  std::deque<testing::OutcomeCapture> done(5);
  for (auto& d : done) ASSERT_TRUE(queue.Submit(Pending(d)));
  EXPECT_EQ(queue.CommitPending(), 2u);
  EXPECT_EQ(queue.CommitPending(), 2u);
  EXPECT_EQ(queue.CommitPending(), 1u);
  EXPECT_EQ(queue.CommitPending(), 0u);
}

TEST(CommitQueueTest, CloseCommitsWhatIsQueuedThenRefuses) {
  FakeCommitter committer;
  CommitQueue queue(committer, Manual());
  testing::OutcomeCapture first;
  ASSERT_TRUE(queue.Submit(Pending(first)));
  queue.Close();
  EXPECT_TRUE(first.done());
  testing::OutcomeCapture late;
  EXPECT_FALSE(queue.Submit(Pending(late)));
  EXPECT_FALSE(late.done()) << "a refused submission is the caller's to answer";
  queue.Close();  // idempotent
}

// Fast fsyncs and writers one at a time: the submitter commits its own
// transaction, and the committer thread is not involved.
TEST(CommitQueueTest, IdleQueueCommitsInlineOnTheSubmittersThread) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded());
  testing::OutcomeCapture done;
  ASSERT_TRUE(queue.Submit(Pending(done)));
  EXPECT_TRUE(done.done()) << "Submit returned before committing";
  ASSERT_EQ(committer.batches().size(), 1u);
  EXPECT_EQ(committer.batches()[0].thread, std::this_thread::get_id());
  queue.Close();
  // Duties run on the committer thread only, never inline.
  for (const auto id : committer.duty_threads()) {
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(CommitQueueTest, InlineMaxFsyncZeroLeavesEveryCommitToTheThread) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded(std::chrono::microseconds(0)));
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  queue.WaitUntilIdle();
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  queue.Close();
}

// The policy's inputs: an average fdatasync at or over inline_max_fsync
// turns inline commits off (an I/O thread must not sit in a slow fsync);
// fast ones turn them back on.
TEST(CommitQueueTest, SlowFsyncsTurnInlineCommitsOffAndFastOnesOn) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded(std::chrono::microseconds(1000)));
  EXPECT_EQ(CommitOne(queue), std::this_thread::get_id());
  // The average has weight 1/8: one 8 ms fsync brings it to 1 ms.
  queue.Observe(1, std::chrono::milliseconds(8));
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  queue.WaitUntilIdle();
  // A batch that wrote nothing (fsync 0) does not move the average.
  queue.Observe(1, std::chrono::nanoseconds(0));
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  queue.WaitUntilIdle();
  for (int i = 0; i < 8; ++i) queue.Observe(1, std::chrono::microseconds(10));
  EXPECT_EQ(CommitOne(queue), std::this_thread::get_id());
  queue.Close();
}

// Concurrent writers (a batch of more than one) turn inline commits off:
// then group commit amortises the hand-offs, and an I/O thread must not
// sit in fdatasync while its other connections wait. A lone writer again
// (a batch of one) turns them back on.
TEST(CommitQueueTest, InlineOnlyWhileWritersComeOneAtATime) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded());
  // A writer commits inline and holds the role; two more queue behind it.
  committer.Hold();
  std::jthread holder(
      [&] { EXPECT_EQ(CommitOne(queue), std::this_thread::get_id()); });
  committer.WaitHeld();
  std::deque<testing::Promise<TransactionOutcome>> two(2);
  for (auto& d : two) ASSERT_TRUE(queue.Submit(Pending(d)));
  committer.Release();
  holder.join();
  for (auto& d : two) {
    EXPECT_NE(d.Wait().thread, std::this_thread::get_id());
  }
  // The committer thread took both as one batch; as the store does, the
  // committer reports each batch's size.
  queue.WaitUntilIdle();
  const auto batches = committer.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].size, 2u);
  queue.Observe(2, std::chrono::microseconds(10));
  // The last batch held two: this one goes to the committer thread, as a
  // batch of one...
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  queue.Observe(1, std::chrono::microseconds(10));
  queue.WaitUntilIdle();
  // ...after which a lone writer commits inline again.
  EXPECT_EQ(CommitOne(queue), std::this_thread::get_id());
  queue.Close();
}

// Lingering. The wait is bounded by the average fdatasync (and
// linger_max): these tests make both an hour, so that a linger that did not
// end on its condition would hang the test rather than pass by timing, and
// they wait for the committer thread to be lingering (a committer that
// never lingers hangs them too) before they go on.
CommitQueue::Options Lingering() {
  CommitQueue::Options options = Threaded();
  options.linger_min_batch = 4;
  options.linger_max = std::chrono::hours(1);
  return options;
}
void AfterABatchOf(CommitQueue& queue, std::size_t size) {
  // Weight 1/8: an average of 1 h takes an 8 h fsync.
  queue.Observe(size, std::chrono::hours(8));
}

// After a batch of 8 the committer thread waits until 8 have queued and
// commits them as one batch, however they trickle in.
TEST(CommitQueueTest, AfterABigBatchTheCommitterLingersForAsMany) {
  FakeCommitter committer;
  CommitQueue queue(committer, Lingering());
  AfterABatchOf(queue, 8);
  std::deque<testing::Promise<TransactionOutcome>> eight(8);
  // The first wakes the committer thread, which then waits for the rest.
  ASSERT_TRUE(queue.Submit(Pending(eight[0])));
  queue.WaitUntilLingering();
  for (std::size_t i = 1; i < eight.size(); ++i) {
    ASSERT_TRUE(queue.Submit(Pending(eight[i])));
  }
  for (auto& d : eight) {
    EXPECT_NE(d.Wait().thread, std::this_thread::get_id());
  }
  const auto batches = committer.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size, 8u);
  queue.Close();
}

// Below linger_min_batch nobody lingers: one writer's commit goes out alone.
TEST(CommitQueueTest, AfterASmallBatchTheCommitterDoesNotLinger) {
  FakeCommitter committer;
  CommitQueue queue(committer, Lingering());
  AfterABatchOf(queue, 3);
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  ASSERT_EQ(committer.batches().size(), 1u);
  EXPECT_EQ(committer.batches()[0].size, 1u);
  queue.Close();
}

// Close and due duties end a linger at once, with what has queued.
TEST(CommitQueueTest, CloseEndsALinger) {
  FakeCommitter committer;
  CommitQueue queue(committer, Lingering());
  AfterABatchOf(queue, 8);
  std::deque<testing::Promise<TransactionOutcome>> three(3);
  for (auto& d : three) ASSERT_TRUE(queue.Submit(Pending(d)));
  queue.WaitUntilLingering();
  queue.Close();
  for (auto& d : three) EXPECT_TRUE(d.Wait().result.status.ok());
  ASSERT_EQ(committer.batches().size(), 1u);
  EXPECT_EQ(committer.batches()[0].size, 3u);
}

TEST(CommitQueueTest, DueDutiesEndALinger) {
  FakeCommitter committer;
  CommitQueue queue(committer, Lingering());
  AfterABatchOf(queue, 8);
  testing::Promise<TransactionOutcome> one;
  ASSERT_TRUE(queue.Submit(Pending(one)));
  queue.WaitUntilLingering();
  queue.WakeForDuties();
  EXPECT_TRUE(one.Wait().result.status.ok());
  committer.WaitForDuties(1);
  ASSERT_EQ(committer.batches().size(), 1u);
  EXPECT_EQ(committer.batches()[0].size, 1u);
  queue.Close();
}

// Notes when it is completed; thread-safe through |note|.
class NotingCompletion final : public Completion<TransactionOutcome> {
 public:
  explicit NotingCompletion(std::function<void()> note)
      : note_(std::move(note)) {}
  void Complete(TransactionOutcome /*outcome*/) override { note_(); }

 private:
  std::function<void()> note_;
};

// Close from another thread while an inline committer holds the role:
// Close returns only after that batch is done, and commits everything
// queued behind it.
TEST(CommitQueueTest, CloseWaitsForAnInlineCommitter) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded());
  std::mutex mu;
  std::vector<std::string> events;
  const auto note = [&](std::string what) {
    std::lock_guard lock(mu);
    events.push_back(std::move(what));
  };
  committer.Hold();
  NotingCompletion inline_done([&] { note("inline batch done"); });
  std::jthread writer([&] { EXPECT_TRUE(queue.Submit(Pending(inline_done))); });
  committer.WaitHeld();
  std::jthread closer([&] {
    queue.Close();
    note("close returned");
  });
  // Close has begun once submissions are refused; those accepted until
  // then queue behind the held role.
  testing::Tally queued;
  int accepted = 0;
  while (queue.Submit(Pending(queued))) {
    ++accepted;
    std::this_thread::yield();
  }
  committer.Release();
  writer.join();
  closer.join();
  EXPECT_EQ(events,
            (std::vector<std::string>{"inline batch done", "close returned"}));
  EXPECT_EQ(queued.ok(), accepted);
}

TEST(CommitQueueTest, WakeForDutiesRunsThemOnTheCommitterThread) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded());
  queue.WakeForDuties();
  committer.WaitForDuties(1);
  EXPECT_NE(committer.duty_threads()[0], std::this_thread::get_id());
  queue.Close();
}

TEST(CommitQueueTest, ScheduledDutiesRunWhenDueAndAsOftenAsAsked) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded());
  committer.RunDutiesAgain(3);  // then RunDuties answers "when woken"
  queue.ScheduleDuties(steady_clock::now());
  committer.WaitForDuties(4);
  queue.WaitUntilIdle();  // the fourth has returned "when woken"
  // A later schedule never delays an earlier one.
  queue.ScheduleDuties(steady_clock::now() + std::chrono::hours(1));
  queue.ScheduleDuties(steady_clock::now());
  committer.WaitForDuties(5);
  queue.Close();
  for (const auto id : committer.duty_threads()) {
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

// After every batch it commits, the committer thread runs the duties (a
// compaction may be due).
TEST(CommitQueueTest, TheThreadRunsDutiesAfterEachBatch) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded(std::chrono::microseconds(0)));
  EXPECT_NE(CommitOne(queue), std::this_thread::get_id());
  committer.WaitForDuties(1);
  queue.Close();
}

// Many writers on many threads, inline and thread commits mixed: every
// transaction is completed exactly once.
TEST(CommitQueueTest, EverySubmissionIsCommittedExactlyOnce) {
  FakeCommitter committer;
  CommitQueue queue(committer, Threaded());
  constexpr int kWriters = 8;
  constexpr int kEach = 500;
  testing::Tally tally;
  {
    std::latch start(kWriters);
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        start.arrive_and_wait();
        for (int i = 0; i < kEach; ++i) {
          EXPECT_TRUE(queue.Submit(Pending(tally)));
          if (i % 50 == w) {
            queue.Observe(static_cast<std::size_t>(1 + i % 3),
                          std::chrono::microseconds(10));
          }
        }
      });
    }
  }
  queue.Close();
  EXPECT_EQ(tally.ok(), kWriters * kEach);
  std::size_t total = 0;
  for (const auto& b : committer.batches()) total += b.size;
  EXPECT_EQ(total, static_cast<std::size_t>(kWriters * kEach));
}

}  // namespace
}  // namespace counterd::storage
