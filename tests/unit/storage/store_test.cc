// The file repository's commit protocol: group commit, committed-only
// reads, idempotency records and their retention, batches, change
// notification, the inline-commit policy, close.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/platform/posix_file_system.h"
#include "journal.h"
#include "journal_format.h"
#include "store_test_util.h"
#include "support/forwarding_file_system.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using domain::Counter;
using domain::TransactionOutcome;
using testing::Add;
using testing::AddOp;
using testing::Batch;
using testing::Commit;
using testing::Get;
using testing::List;
using testing::ListWithSeq;
using testing::ManualOptions;
using testing::OutcomeCapture;
using testing::WithKey;

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<FileRepository> Open(
      FileRepositoryOptions options = ManualOptions()) {
    auto repo = FileRepository::Open(fs_, clock_, std::move(options));
    EXPECT_TRUE(repo) << repo.error().ToString();
    return repo ? std::move(*repo) : nullptr;
  }
  std::int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               clock_.Now().time_since_epoch())
        .count();
  }
  counterd::testing::MemFileSystem fs_;
  ManualClock clock_{
      std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50))};
};

TEST_F(StoreTest, ConcurrentCommitsShareOneFsync) {
  auto repo = Open();
  constexpr int kWriters = 64;
  std::latch start(kWriters);
  std::deque<OutcomeCapture> done(kWriters);
  std::vector<std::jthread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      start.arrive_and_wait();
      repo->Commit(Add("hot", 1), done[static_cast<std::size_t>(i)]);
    });
  }
  writers.clear();  // joins: all 64 are queued, none committed
  for (const auto& d : done) EXPECT_FALSE(d.done());
  EXPECT_EQ(repo->CommitPendingBatch(), 64u);
  for (const auto& d : done) {
    ASSERT_TRUE(d.done());
    EXPECT_TRUE(d.result().status.ok());
  }
  const RepositoryStats stats = repo->Stats();
  EXPECT_EQ(stats.backend, "file");
  EXPECT_EQ(stats.fsyncs, 1u);
  EXPECT_EQ(stats.commits, 1u);
  EXPECT_EQ(stats.mutations, 64u);
  EXPECT_EQ(stats.last_seq, 1u);
  EXPECT_EQ(stats.batch_sizes.count, 1u);
  EXPECT_EQ(stats.batch_sizes.sum, 64.0);
  EXPECT_EQ(Get(*repo, "hot")->value, 64);
}

TEST_F(StoreTest, ReadsSeeOnlyCommittedState) {
  auto repo = Open();
  OutcomeCapture done;
  repo->Commit(Add("a", 5), done);
  EXPECT_FALSE(Get(*repo, "a").has_value());  // queued, not durable
  EXPECT_TRUE(List(*repo).empty());
  EXPECT_EQ(repo->CommitPendingBatch(), 1u);
  ASSERT_TRUE(done.done());
  EXPECT_EQ(Get(*repo, "a"), (Counter{"a", 5, 1, 0}));
}

TEST_F(StoreTest, LaterTransactionsInABatchSeeEarlierOnes) {
  auto repo = Open();
  std::deque<OutcomeCapture> done(5);
  for (auto& d : done) repo->Commit(Add("a", 1), d);
  EXPECT_EQ(repo->CommitPendingBatch(), 5u);
  std::vector<std::int64_t> values;
  for (const auto& d : done) {
    ASSERT_EQ(d.result().results.size(), 1u);
    values.push_back(d.result().results[0].counter->value);
  }
  EXPECT_EQ(values, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(done.front().result().results[0].created);
  EXPECT_FALSE(done.back().result().results[0].created);
  EXPECT_EQ(Get(*repo, "a")->version, 5u);
  EXPECT_EQ(repo->Stats().fsyncs, 1u);
}

// A refused transaction without an idempotency key changes nothing, so
// its batch writes no record, syncs nothing and is not a commit.
TEST_F(StoreTest, RefusalsWriteNothing) {
  auto repo = Open();
  const TransactionOutcome outcome = Commit(*repo, testing::Delete("missing"));
  EXPECT_EQ(outcome.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(outcome.failed_op, 0u);
  ASSERT_TRUE(
      Commit(*repo, domain::SingleOperation(testing::SetOp("max", INT64_MAX)))
          .status.ok());
  const RepositoryStats before = repo->Stats();
  const TransactionOutcome overflow = Commit(*repo, Add("max", 1));
  EXPECT_EQ(overflow.status.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(overflow.current, (Counter{"max", INT64_MAX, 1, 0}));
  const RepositoryStats after = repo->Stats();
  EXPECT_EQ(after.fsyncs, before.fsyncs);
  EXPECT_EQ(after.commits, before.commits);
  EXPECT_EQ(after.mutations, before.mutations);
  EXPECT_EQ(after.journal_bytes, before.journal_bytes);
  EXPECT_EQ(after.batch_sizes.count, before.batch_sizes.count)
      << "a batch that wrote nothing is not a group commit";
}

TEST_F(StoreTest, FreshJournalHoldsOnlyItsHeader) {
  auto repo = Open();
  EXPECT_EQ(repo->Stats().journal_bytes, kJournalHeaderSize);
  EXPECT_EQ(fs_.Contents("/data/journal-00000000000000000001.log"),
            EncodeJournalHeader(1));
}

TEST_F(StoreTest, ListIsSortedWithPrefixAfterAndLimit) {
  auto repo = Open();
  for (const char* name : {"b", "a:2", "a:1", "c", "a:3"}) {
    ASSERT_TRUE(Commit(*repo, Add(name, 1)).status.ok());
  }
  auto names = [&](std::string prefix, std::string after, std::size_t limit) {
    std::vector<std::string> out;
    for (const auto& c : List(*repo, prefix, after, limit)) {
      out.push_back(c.name);
    }
    return out;
  };
  EXPECT_EQ(names("", "", 10),
            (std::vector<std::string>{"a:1", "a:2", "a:3", "b", "c"}));
  EXPECT_EQ(names("a:", "", 2), (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_EQ(names("a:", "a:2", 10), (std::vector<std::string>{"a:3"}));
  EXPECT_EQ(names("", "a:3", 10), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(names("z", "", 10).empty());
}

// A listing says which commits it includes (a prefix watch stitches it to
// the change feed by that number): all five, found or not.
TEST_F(StoreTest, ListSaysTheLastCommitItIncludes) {
  auto repo = Open();
  EXPECT_EQ(ListWithSeq(*repo).seq, 0u);
  for (const char* name : {"b", "a:2", "a:1", "c", "a:3"}) {
    ASSERT_TRUE(Commit(*repo, Add(name, 1)).status.ok());
  }
  EXPECT_EQ(ListWithSeq(*repo, "a:").seq, 5u);
  EXPECT_EQ(ListWithSeq(*repo, "z").seq, 5u);
}

// A retry with the same key and request gets the first answer (replayed)
// and changes nothing, after a restart (journal replay) and a compaction
// (snapshot) too, until the record is past its retention; then the key is
// free again and the same request is a new one.
TEST_F(StoreTest, RetryReplaysTheFirstAnswerUntilRetentionEnds) {
  FileRepositoryOptions options = ManualOptions();
  options.idempotency_retention = std::chrono::hours(1);
  TransactionOutcome first;
  {
    auto repo = Open(options);
    first = Commit(*repo, WithKey(Add("a", 1), "k1"));
    ASSERT_TRUE(first.status.ok());
    EXPECT_FALSE(first.replayed);
    EXPECT_EQ(repo->Stats().idempotency_keys, 1u);
  }
  const auto replay_of_first = [&] {
    TransactionOutcome expected = first;
    expected.replayed = true;
    return expected;
  };
  {
    auto repo = Open(options);  // replayed from the journal
    const RepositoryStats before = repo->Stats();
    EXPECT_EQ(Commit(*repo, WithKey(Add("a", 1), "k1")), replay_of_first());
    EXPECT_EQ(repo->Stats().fsyncs, before.fsyncs) << "a replay writes nothing";
    EXPECT_EQ(Get(*repo, "a")->value, 1);
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  {
    auto repo = Open(options);  // loaded from the snapshot
    EXPECT_EQ(repo->Recovery().records_replayed, 0u);
    EXPECT_EQ(Commit(*repo, WithKey(Add("a", 1), "k1")), replay_of_first());
    clock_.Advance(std::chrono::minutes(61));
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  EXPECT_EQ(fs_.Contents("/data/state.json").find("\"k1\""), std::string::npos);
  auto repo = Open(options);
  EXPECT_EQ(repo->Stats().idempotency_keys, 0u);
  const TransactionOutcome again = Commit(*repo, WithKey(Add("a", 1), "k1"));
  EXPECT_FALSE(again.replayed);
  EXPECT_EQ(again.results[0].counter->value, 2);  // the counter itself stayed
}

// Refusals are answers too: a request with a key that was refused (an
// int64 overflow, 409) is stored, and its retry gets the same refusal even
// after the counter has changed so that it would now succeed.
TEST_F(StoreTest, RefusedRequestWithAKeyIsRecordedAndReplayed) {
  TransactionOutcome refused;
  {
    auto repo = Open();
    ASSERT_TRUE(
        Commit(*repo, domain::SingleOperation(testing::SetOp("x", INT64_MAX)))
            .status.ok());
    refused = Commit(*repo, WithKey(Add("x", 1), "overflow-1"));
    ASSERT_EQ(refused.status.code(), StatusCode::kOutOfRange);
    EXPECT_EQ(repo->Stats().fsyncs, 2u) << "the refusal's record is written";
    ASSERT_TRUE(Commit(*repo, testing::Delete("x")).status.ok());
  }
  auto repo = Open();
  TransactionOutcome expected = refused;
  expected.replayed = true;
  EXPECT_EQ(Commit(*repo, WithKey(Add("x", 1), "overflow-1")), expected);
  EXPECT_FALSE(Get(*repo, "x").has_value());
}

TEST_F(StoreTest, KeyReusedForAnotherRequestIsRefusedAndWritesNothing) {
  auto repo = Open();
  ASSERT_TRUE(Commit(*repo, WithKey(Add("a", 1), "k")).status.ok());
  const RepositoryStats before = repo->Stats();
  for (domain::Transaction tx : {Add("a", 2), Add("b", 1), testing::Delete("a"),
                                 Batch({AddOp("a", 1)})}) {
    const TransactionOutcome o = Commit(*repo, WithKey(std::move(tx), "k"));
    EXPECT_EQ(o.status.code(), StatusCode::kAlreadyExists)
        << o.status.ToString();
    EXPECT_FALSE(o.replayed);
  }
  EXPECT_EQ(repo->Stats().fsyncs, before.fsyncs);
  EXPECT_EQ(Get(*repo, "a")->value, 1);
}

TEST_F(StoreTest, KeysOfDifferentScopesNeverMeet) {
  {
    auto repo = Open();
    ASSERT_TRUE(Commit(*repo, WithKey(Add("a", 1), "k", "alice")).status.ok());
    const TransactionOutcome bob =
        Commit(*repo, WithKey(Add("a", 1), "k", "bob"));
    ASSERT_TRUE(bob.status.ok());
    EXPECT_FALSE(bob.replayed);
    EXPECT_EQ(bob.results[0].counter->value, 2);
    // Another request under the same key in a third scope is no conflict.
    EXPECT_TRUE(Commit(*repo, WithKey(Add("b", 7), "k")).status.ok());
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  auto repo = Open();
  EXPECT_EQ(repo->Stats().idempotency_keys, 3u);
  EXPECT_EQ(Commit(*repo, WithKey(Add("a", 1), "k", "alice"))
                .results[0]
                .counter->value,
            1);
  EXPECT_EQ(
      Commit(*repo, WithKey(Add("a", 1), "k", "bob")).results[0].counter->value,
      2);
  EXPECT_EQ(Commit(*repo, WithKey(Add("a", 1), "k")).status.code(),
            StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, BatchIsAllOrNothing) {
  auto repo = Open();
  ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  const RepositoryStats before = repo->Stats();
  const TransactionOutcome o = Commit(
      *repo, Batch({AddOp("a", 1), AddOp("b", 1), testing::DeleteOp("c")}));
  EXPECT_EQ(o.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(o.failed_op, 2u);
  EXPECT_TRUE(o.results.empty());
  EXPECT_EQ(repo->Stats().fsyncs, before.fsyncs);
  EXPECT_EQ(testing::Dump(*repo),
            (std::map<std::string, std::int64_t>{{"a", 1}}));

  const TransactionOutcome ok =
      Commit(*repo, Batch({AddOp("a", 1), AddOp("b", 1), testing::GetOp("a")}));
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  ASSERT_EQ(ok.results.size(), 3u);
  EXPECT_EQ(ok.results[2].counter, (Counter{"a", 2, 2, 0}));
  EXPECT_EQ(repo->Stats().fsyncs, before.fsyncs + 1) << "one record";
}

// Reads in a batch are decided against committed state without a commit:
// they complete on the caller's thread, before CommitPendingBatch.
TEST_F(StoreTest, ReadOnlyBatchNeedsNoCommit) {
  auto repo = Open();
  ASSERT_TRUE(Commit(*repo, Add("a", 3)).status.ok());
  OutcomeCapture done;
  repo->Commit(Batch({testing::GetOp("a"), testing::GetOp("nope")}), done);
  ASSERT_TRUE(done.done());
  ASSERT_EQ(done.result().results.size(), 2u);
  EXPECT_EQ(done.result().results[0].counter, (Counter{"a", 3, 1, 0}));
  EXPECT_FALSE(done.result().results[1].counter.has_value());
  EXPECT_EQ(repo->CommitPendingBatch(), 0u);
  EXPECT_EQ(repo->Stats().fsyncs, 1u);
}

TEST_F(StoreTest, CloseCommitsWhatIsQueuedThenRefuses) {
  auto repo = Open();
  OutcomeCapture done;
  repo->Commit(Add("a", 1), done);
  ASSERT_TRUE(repo->Close().ok());
  ASSERT_TRUE(done.done());
  EXPECT_TRUE(done.result().status.ok());
  EXPECT_EQ(repo->Health().code(), StatusCode::kUnavailable);
  const TransactionOutcome late = Commit(*repo, Add("a", 1));
  EXPECT_EQ(late.status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(repo->Close().ok()) << "Close is idempotent";
  EXPECT_EQ(Get(*repo, "a")->value, 1) << "reads go on after Close";
}

// Every commit's changes reach the sink once durable, in commit order,
// each batch with its journal seq; refusals and replays change nothing and
// send nothing.
class RecordingSink final : public ChangeSink {
 public:
  void OnCommitted(const ChangeBatch& batch) override {
    std::lock_guard lock(mu_);
    batches_.push_back(batch);
  }
  std::vector<ChangeBatch> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<ChangeBatch> batches_;
};

std::string Describe(const std::vector<ChangeBatch>& batches) {
  std::string out;
  for (const ChangeBatch& b : batches) {
    out += std::to_string(b.seq) + ":";
    for (const CounterChange& c : b.changes) {
      out += " " + c.name + "=" +
             (c.state ? std::to_string(c.state->value) + "@v" +
                            std::to_string(c.state->version)
                      : std::string("gone"));
    }
    out += "; ";
  }
  return out;
}

TEST_F(StoreTest, ChangeSinkReceivesCommittedChangesInOrderWithSeq) {
  RecordingSink sink;  // outlives the repository that publishes to it
  auto repo = Open();
  repo->SetChangeSink(&sink);
  ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  // One group commit of three transactions: one batch of changes, each
  // counter once with its final state, in the order first changed.
  std::deque<OutcomeCapture> done(3);
  repo->Commit(Add("b", 5), done[0]);
  repo->Commit(Add("a", 1), done[1]);
  repo->Commit(Add("b", 1), done[2]);
  EXPECT_TRUE(sink.batches().size() == 1) << "nothing before the commit";
  ASSERT_EQ(repo->CommitPendingBatch(), 3u);
  ASSERT_TRUE(Commit(*repo, testing::Delete("a")).status.ok());
  EXPECT_EQ(Commit(*repo, testing::Delete("a")).status.code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(Commit(*repo, WithKey(Add("c", 1), "k")).status.ok());
  ASSERT_TRUE(Commit(*repo, WithKey(Add("c", 1), "k")).replayed);
  ASSERT_TRUE(Commit(*repo, Batch({testing::GetOp("b")})).status.ok());
  EXPECT_EQ(Describe(sink.batches()),
            "1: a=1@v1; 2: b=6@v2 a=2@v2; 3: a=gone; 4: c=1@v1; ");
}

TEST_F(StoreTest, CompactionOnThresholdKeepsWritersGoing) {
  FileRepositoryOptions options = ManualOptions();
  options.compaction_threshold_bytes = 200;
  options.start_committer = true;
  auto repo = Open(options);
  testing::Tally tally;
  // A counter of its own for each transaction: however the commits are
  // batched, the journal passes the threshold.
  for (int i = 0; i < 500; ++i) {
    repo->Commit(Add("c" + std::to_string(i), 1), tally);
  }
  tally.WaitFor(500);
  // The committer thread runs the compaction it was woken for.
  while (repo->Stats().compactions == 0) std::this_thread::yield();
  ASSERT_TRUE(repo->Close().ok());
  EXPECT_EQ(tally.ok(), 500);
  repo.reset();
  auto reopened = Open();
  std::int64_t sum = 0;
  for (const auto& [name, value] : testing::Dump(*reopened)) sum += value;
  EXPECT_EQ(sum, 500);
}

// With fast fsyncs a submitter that finds nobody committing commits its
// own transaction: the completion runs inside Commit, on the caller's
// thread.
TEST_F(StoreTest, IdleStoreCommitsInlineOnTheSubmittersThread) {
  FileRepositoryOptions options = ManualOptions();
  options.start_committer = true;
  auto repo = Open(options);
  OutcomeCapture done;
  repo->Commit(Add("a", 1), done);
  ASSERT_TRUE(done.done()) << "Commit returned before committing";
  EXPECT_TRUE(done.result().status.ok());
  EXPECT_EQ(Get(*repo, "a")->value, 1);
  EXPECT_EQ(repo->Stats().fsyncs, 1u);
  ASSERT_TRUE(repo->Close().ok());
}

// inline_commit_max_fsync = 0 (as when fsyncs are slow): Commit only
// queues and the committer thread commits and completes.
TEST_F(StoreTest, WithoutInlineCommitTheCommitterThreadCommits) {
  FileRepositoryOptions options = ManualOptions();
  options.start_committer = true;
  options.inline_commit_max_fsync = std::chrono::microseconds(0);
  auto repo = Open(options);
  testing::Promise<TransactionOutcome> done;
  repo->Commit(Add("a", 1), done);
  const auto result = done.Wait();
  EXPECT_TRUE(result.result.status.ok());
  EXPECT_NE(result.thread, std::this_thread::get_id());
  EXPECT_EQ(Get(*repo, "a")->value, 1);
  ASSERT_TRUE(repo->Close().ok());
}

// Writers on many threads racing for the role: every transaction is
// committed exactly once, whoever commits it, and Close waits for an
// inline commit.
TEST_F(StoreTest, InlineAndCommitterThreadCommitsInterleave) {
  FileRepositoryOptions options = ManualOptions();
  options.start_committer = true;
  options.compaction_threshold_bytes = 4096;
  auto repo = Open(options);
  constexpr int kWriters = 8;
  constexpr int kEach = 200;
  testing::Tally tally;
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        // A counter of its own for each transaction: however the commits
        // are batched, the journal passes the compaction threshold.
        for (int i = 0; i < kEach; ++i) {
          repo->Commit(
              Add("c" + std::to_string(w) + ":" + std::to_string(i), 1), tally);
        }
      });
    }
  }
  // The committer thread runs the compaction it was woken for; then Close
  // commits what is left and waits for any inline committer.
  while (repo->Stats().compactions == 0) std::this_thread::yield();
  ASSERT_TRUE(repo->Close().ok());
  EXPECT_EQ(tally.ok(), kWriters * kEach);
  repo.reset();
  std::int64_t sum = 0;
  for (const auto& [name, value] : testing::Dump(*Open())) sum += value;
  EXPECT_EQ(sum, kWriters * kEach);
}

// A file system that runs |before_sync| before each fdatasync of a journal
// file: the test below holds the committer there until the writers it is
// waiting for have queued. Everything else goes straight to |base|.
class HeldJournalSyncs final : public counterd::testing::ForwardingFileSystem {
 public:
  HeldJournalSyncs(platform::FileSystem& base, std::function<void()> before)
      : ForwardingFileSystem(base), before_sync_(std::move(before)) {}

  Result<std::unique_ptr<platform::WritableFile>> NewWritableFile(
      const std::string& path) override {
    return Wrap(path, ForwardingFileSystem::NewWritableFile(path));
  }
  Result<std::unique_ptr<platform::WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return Wrap(path, ForwardingFileSystem::NewAppendableFile(path));
  }

 private:
  class File final : public counterd::testing::ForwardingWritableFile {
   public:
    File(std::unique_ptr<platform::WritableFile> base,
         const std::function<void()>& before_sync)
        : ForwardingWritableFile(std::move(base)), before_sync_(before_sync) {}
    Status Sync() override {
      before_sync_();
      return ForwardingWritableFile::Sync();
    }

   private:
    const std::function<void()>& before_sync_;
  };

  Result<std::unique_ptr<platform::WritableFile>> Wrap(
      const std::string& path,
      Result<std::unique_ptr<platform::WritableFile>> file) {
    if (!file || path.find("journal-") == std::string::npos) return file;
    return std::unique_ptr<platform::WritableFile>(
        std::make_unique<File>(std::move(*file), before_sync_));
  }

  std::function<void()> before_sync_;
};

// A copy of a data dir taken while its store is open: what a crash of the
// process leaves (the page cache survives it; power loss is power_loss_test's).
void CopyDir(const std::filesystem::path& from,
             const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to);
}

std::vector<std::filesystem::path> JournalFiles(
    const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::uint64_t first_seq = 0;
    if (ParseJournalFileName(entry.path().filename().string(), first_seq)) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// On the real file system the newest journal is written ahead with zeros
// (journal.h): a crash image ends in them, recovery cuts them and loses no
// record; a rotation cuts them from the journal it leaves behind before the
// next one exists, and a clean close cuts them too.
TEST(StoreOnDiskTest, ZerosWrittenAheadAreCutAndNoRecordIsLost) {
  const auto base = std::filesystem::temp_directory_path() /
                    ("counterd-zero-ahead-" + std::to_string(::getpid()));
  const auto dir = base / "live";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  auto posix = platform::NewPosixFileSystem();
  SystemClock clock;
  FileRepositoryOptions options = testing::ManualOptions(dir.string());
  options.split_compaction_for_test = true;
  auto repo = FileRepository::Open(*posix, clock, options);
  ASSERT_TRUE(repo) << repo.error().ToString();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(testing::Commit(**repo, Add("a", 1)).status.ok());
  }
  ASSERT_EQ(JournalFiles(dir).size(), 1u);
  const std::filesystem::path first = JournalFiles(dir)[0];
  // Zeros were written once, after the first record: the later two went
  // into them.
  const std::uint64_t records = (*repo)->Stats().journal_bytes;
  const std::uint64_t on_disk = std::filesystem::file_size(first);
  ASSERT_GT(on_disk, records);
  ASSERT_LT(on_disk, records + Journal::kZeroFillAhead);
  {
    std::ifstream in(first, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(records));
    std::string tail(on_disk - records, 'x');
    in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
    EXPECT_EQ(in.gcount(), static_cast<std::streamsize>(tail.size()));
    EXPECT_EQ(tail, std::string(on_disk - records, '\0'));
  }

  // A crash now: every record back, the zeros cut.
  CopyDir(dir, base / "crash1");
  {
    const testing::QuietLogs quiet;
    auto copy = FileRepository::Open(
        *posix, clock, testing::ManualOptions((base / "crash1").string()));
    ASSERT_TRUE(copy) << copy.error().ToString();
    EXPECT_EQ(testing::Get(**copy, "a")->value, 3);
    EXPECT_EQ((*copy)->Recovery().torn_bytes_truncated, on_disk - records);
  }

  // The journal rotates (the snapshot is not written yet: split), and a
  // record goes to the new one. A crash now finds the old journal ending at
  // its last record, and replays both.
  ASSERT_TRUE((*repo)->CompactNow().ok());
  ASSERT_TRUE(testing::Commit(**repo, Add("a", 10)).status.ok());
  ASSERT_EQ(JournalFiles(dir).size(), 2u);
  EXPECT_EQ(std::filesystem::file_size(first), records);
  CopyDir(dir, base / "crash2");
  {
    const testing::QuietLogs quiet;
    auto copy = FileRepository::Open(
        *posix, clock, testing::ManualOptions((base / "crash2").string()));
    ASSERT_TRUE(copy) << copy.error().ToString();
    EXPECT_EQ(testing::Get(**copy, "a")->value, 13);
  }

  // A clean close leaves no zeros: the next start cuts nothing.
  const std::filesystem::path newest = JournalFiles(dir).back();
  const std::uint64_t newest_records = (*repo)->Stats().journal_bytes;
  ASSERT_TRUE((*repo)->Close().ok());
  repo->reset();
  EXPECT_EQ(std::filesystem::file_size(newest), newest_records);
  auto again =
      FileRepository::Open(*posix, clock, testing::ManualOptions(dir.string()));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(testing::Get(**again, "a")->value, 13);
  EXPECT_EQ((*again)->Recovery().torn_bytes_truncated, 0u);
  again->reset();
  std::filesystem::remove_all(base);
}

// The real file system, a real committer thread and 64 writers that each
// wait for their acknowledgement before the next increment, in rounds: no
// writer starts round r+1 before all 64 of round r are acknowledged. The
// committer's fdatasync is held until the whole round has queued, so each
// round is at most the batch the committer had already taken plus one batch
// of everyone who queued meanwhile: two fsyncs per 64 commits, whatever the
// scheduling. (A committer that fsynced per commit would need 64.)
TEST(StoreOnDiskTest, SixtyFourWritersShareFsyncs) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("counterd-store-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  constexpr int kWriters = 64;
  constexpr int kRounds = 50;

  std::mutex mu;
  std::condition_variable changed;
  int queued = 0;        // Commit calls returned (the commit is queued)
  int rounds_done = 0;   // rounds all 64 writers saw acknowledged
  bool holding = false;  // off while the repository opens and closes
  auto round_queued = [&] {
    return !holding || rounds_done == kRounds ||
           queued == kWriters * (rounds_done + 1);
  };
  auto posix = platform::NewPosixFileSystem();
  HeldJournalSyncs fs(*posix, [&] {
    std::unique_lock lock(mu);
    changed.wait(lock, round_queued);
  });
  SystemClock clock;
  FileRepositoryOptions options;
  options.data_dir = dir.string();
  // Only the committer thread commits: an inline committer would hold the
  // fsync on a writer's own thread, inside the Commit call counted above.
  options.inline_commit_max_fsync = std::chrono::microseconds{0};
  auto repo = FileRepository::Open(fs, clock, options);
  ASSERT_TRUE(repo) << repo.error().ToString();
  {
    const std::lock_guard lock(mu);
    holding = true;
  }
  {
    std::barrier round_end(kWriters, [&]() noexcept {
      const std::lock_guard lock(mu);
      ++rounds_done;
    });
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&] {
        for (int r = 0; r < kRounds; ++r) {
          testing::Promise<TransactionOutcome> done;
          (*repo)->Commit(Add("hot", 1), done);
          {
            const std::lock_guard lock(mu);
            ++queued;
          }
          changed.notify_all();
          EXPECT_TRUE(done.Wait().result.status.ok());
          round_end.arrive_and_wait();
        }
      });
    }
  }
  const RepositoryStats stats = (*repo)->Stats();
  EXPECT_EQ(Get(**repo, "hot")->value, kWriters * kRounds);
  EXPECT_EQ(stats.mutations, static_cast<std::uint64_t>(kWriters * kRounds));
  EXPECT_GE(stats.fsyncs, static_cast<std::uint64_t>(kRounds));
  EXPECT_LE(stats.fsyncs, static_cast<std::uint64_t>(2 * kRounds));
  EXPECT_EQ(stats.batch_sizes.count, stats.fsyncs);
  repo->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace counterd::storage
