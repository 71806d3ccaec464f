// Expiring counters in the file backend: absent to readers from their
// instant on, swept from memory in bounded passes with a change for
// watchers, gone after a restart that comes after their expiry, and left
// out of snapshots. An expiry needs no journal record.
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "journal.h"
#include "journal_format.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using domain::Counter;
using testing::Commit;
using testing::Get;
using testing::List;
using testing::ManualOptions;

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

domain::Transaction SetWithTtl(std::string_view name, std::int64_t value,
                               std::uint32_t ttl_seconds) {
  domain::Operation op = testing::SetOp(name, value);
  op.ttl_seconds = ttl_seconds;
  return domain::SingleOperation(op);
}

domain::Transaction AddWithTtl(std::string_view name, std::int64_t by,
                               std::uint32_t ttl_seconds) {
  domain::Operation op = testing::AddOp(name, by);
  op.ttl_seconds = ttl_seconds;
  return domain::SingleOperation(op);
}

class ExpiryTest : public ::testing::Test {
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
  ManualClock clock_{std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1'763'683'200'000))};
};

TEST_F(ExpiryTest, ExpiredCounterIsAbsentToReadersAtOnce) {
  auto repo = Open();
  const std::int64_t start = NowMs();
  ASSERT_TRUE(Commit(*repo, SetWithTtl("rl", 5, 10)).status.ok());
  ASSERT_TRUE(Commit(*repo, testing::Add("plain", 1)).status.ok());
  EXPECT_EQ(Get(*repo, "rl"), (Counter{"rl", 5, 1, start + 10'000}));
  clock_.Advance(std::chrono::milliseconds(9'999));
  EXPECT_TRUE(Get(*repo, "rl").has_value());
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_FALSE(Get(*repo, "rl").has_value()) << "expired at its instant";
  EXPECT_EQ(List(*repo).size(), 1u);
  EXPECT_EQ(repo->Stats().counters, 2u) << "not swept yet";
  // A write on it sees it absent: it starts again at version 1.
  const auto again = Commit(*repo, testing::Add("rl", 1));
  ASSERT_TRUE(again.status.ok());
  EXPECT_TRUE(again.results[0].created);
  EXPECT_EQ(again.results[0].counter, (Counter{"rl", 1, 1, 0}));
}

// An increment with a ttl sets the expiry only when it creates the
// counter (a fixed window); it survives restart and compaction.
TEST_F(ExpiryTest, WindowExpiryIsKeptAcrossRestartAndCompaction) {
  const std::int64_t window_end = NowMs() + 60'000;
  {
    auto repo = Open();
    ASSERT_TRUE(Commit(*repo, AddWithTtl("w", 1, 60)).status.ok());
    clock_.Advance(std::chrono::seconds(10));
    const auto second = Commit(*repo, AddWithTtl("w", 1, 60));
    EXPECT_EQ(second.results[0].counter, (Counter{"w", 2, 2, window_end}));
  }
  {
    auto repo = Open();  // from the journal
    EXPECT_EQ(Get(*repo, "w"), (Counter{"w", 2, 2, window_end}));
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  EXPECT_NE(fs_.Contents("/data/state.json")
                .find("{\"name\":\"w\",\"value\":2,\"version\":2,"
                      "\"expires_at_ms\":" +
                      std::to_string(window_end) + "}"),
            std::string::npos)
      << fs_.Contents("/data/state.json");
  auto repo = Open();  // from the snapshot
  EXPECT_EQ(Get(*repo, "w"), (Counter{"w", 2, 2, window_end}));
  clock_.Advance(std::chrono::seconds(50));
  EXPECT_FALSE(Get(*repo, "w").has_value());
}

TEST_F(ExpiryTest, SweepIsBoundedAndTellsWatchers) {
  FileRepositoryOptions options = ManualOptions();
  options.expiry_sweep_batch = 3;
  RecordingSink sink;  // outlives the repository that publishes to it
  auto repo = Open(options);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(
        Commit(*repo, SetWithTtl("e" + std::to_string(i), i, 1)).status.ok());
  }
  ASSERT_TRUE(Commit(*repo, testing::Add("stays", 1)).status.ok());
  const std::uint64_t fsyncs = repo->Stats().fsyncs;
  repo->SetChangeSink(&sink);
  repo->RunDutiesNow();
  EXPECT_TRUE(sink.batches().empty()) << "nothing is due yet";
  clock_.Advance(std::chrono::seconds(1));
  std::vector<std::string> removed;
  for (int pass = 1; pass <= 4; ++pass) {
    repo->RunDutiesNow();
    const auto batches = sink.batches();
    ASSERT_EQ(batches.size(), static_cast<std::size_t>(pass));
    EXPECT_EQ(batches.back().seq, 11u) << "no record: the seq stays";
    EXPECT_EQ(batches.back().changes.size(), pass < 4 ? 3u : 1u);
    for (const CounterChange& c : batches.back().changes) {
      EXPECT_FALSE(c.state.has_value()) << c.name;
      removed.push_back(c.name);
    }
  }
  EXPECT_EQ(removed, (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4",
                                               "e5", "e6", "e7", "e8", "e9"}));
  repo->RunDutiesNow();
  EXPECT_EQ(sink.batches().size(), 4u);
  const RepositoryStats stats = repo->Stats();
  EXPECT_EQ(stats.expired, 10u);
  EXPECT_EQ(stats.counters, 1u);
  EXPECT_EQ(stats.fsyncs, fsyncs) << "an expiry writes nothing";
  EXPECT_EQ(testing::Dump(*repo),
            (std::map<std::string, std::int64_t>{{"stays", 1}}));
}

// A counter changed since its expiry was queued is not swept by the stale
// entry: only by its current expiry, or never once it has none.
TEST_F(ExpiryTest, SweepFollowsTheCurrentExpiry) {
  auto repo = Open();
  ASSERT_TRUE(Commit(*repo, SetWithTtl("moved", 1, 1)).status.ok());
  ASSERT_TRUE(Commit(*repo, SetWithTtl("kept", 1, 1)).status.ok());
  ASSERT_TRUE(Commit(*repo, SetWithTtl("moved", 2, 5)).status.ok());
  ASSERT_TRUE(Commit(*repo, domain::SingleOperation(testing::SetOp("kept", 2)))
                  .status.ok());
  clock_.Advance(std::chrono::seconds(2));
  repo->RunDutiesNow();
  EXPECT_EQ(repo->Stats().expired, 0u);
  EXPECT_EQ(testing::Dump(*repo),
            (std::map<std::string, std::int64_t>{{"kept", 2}, {"moved", 2}}));
  clock_.Advance(std::chrono::seconds(3));
  repo->RunDutiesNow();
  EXPECT_EQ(repo->Stats().expired, 1u);
  EXPECT_EQ(testing::Dump(*repo),
            (std::map<std::string, std::int64_t>{{"kept", 2}}));
}

TEST_F(ExpiryTest, CountersThatExpiredWhileDownAreGoneAfterRestart) {
  {
    auto repo = Open();
    ASSERT_TRUE(Commit(*repo, SetWithTtl("short", 1, 1)).status.ok());
    ASSERT_TRUE(Commit(*repo, SetWithTtl("long", 1, 3600)).status.ok());
    ASSERT_TRUE(repo->CompactNow().ok());
    ASSERT_TRUE(Commit(*repo, SetWithTtl("short2", 1, 1)).status.ok());
  }
  clock_.Advance(std::chrono::seconds(5));
  {
    RecordingSink sink;  // outlives the repository that publishes to it
    auto repo = Open();
    EXPECT_EQ(testing::Dump(*repo),
              (std::map<std::string, std::int64_t>{{"long", 1}}));
    EXPECT_FALSE(Get(*repo, "short").has_value());
    EXPECT_FALSE(Get(*repo, "short2").has_value());
    repo->SetChangeSink(&sink);
    repo->RunDutiesNow();
    ASSERT_EQ(sink.batches().size(), 1u);
    EXPECT_EQ(sink.batches()[0].changes.size(), 2u);
    EXPECT_EQ(repo->Stats().expired, 2u);
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  const std::string snapshot = fs_.Contents("/data/state.json");
  EXPECT_EQ(snapshot.find("\"short"), std::string::npos) << snapshot;
  auto repo = Open();
  EXPECT_EQ(repo->Recovery().counters, 1u);
  EXPECT_EQ(testing::Dump(*repo),
            (std::map<std::string, std::int64_t>{{"long", 1}}));
}

// A snapshot leaves out counters already expired when it is taken, swept
// or not.
TEST_F(ExpiryTest, SnapshotLeavesOutExpiredCounters) {
  {
    auto repo = Open();
    ASSERT_TRUE(Commit(*repo, SetWithTtl("gone", 1, 1)).status.ok());
    ASSERT_TRUE(Commit(*repo, testing::Add("here", 1)).status.ok());
    clock_.Advance(std::chrono::seconds(1));
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  EXPECT_EQ(fs_.Contents("/data/state.json").find("\"gone\""),
            std::string::npos);
  auto repo = Open();
  EXPECT_EQ(repo->Recovery().counters, 1u);
}

// With the committer thread, counters that expired while the process was
// down are swept as soon as it starts.
TEST_F(ExpiryTest, CommitterThreadSweepsWhatExpiredWhileDown) {
  {
    auto repo = Open();
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(
          Commit(*repo, SetWithTtl("e" + std::to_string(i), i, 1)).status.ok());
    }
  }
  clock_.Advance(std::chrono::seconds(2));
  FileRepositoryOptions options = ManualOptions();
  options.start_committer = true;
  options.expiry_sweep_batch = 2;
  auto repo = Open(options);
  EXPECT_TRUE(List(*repo).empty());
  // The sweep runs on the committer thread; wait for its count.
  while (repo->Stats().expired < 5) std::this_thread::yield();
  EXPECT_EQ(repo->Stats().counters, 0u);
  ASSERT_TRUE(repo->Close().ok());
}

// Found by tests/fuzz/recovery_fuzz: an expiry centuries away (only a
// hand-made or damaged-but-checksummed file can hold one: a ttl is at most
// a year) overflowed the steady-clock arithmetic that schedules the sweep
// (undefined behaviour; UBSan reports it). It is a counter like any other.
TEST_F(ExpiryTest, ExpiryFarBeyondTheClockIsScheduledWithoutOverflow) {
  std::string journal = EncodeJournalHeader(1);
  EncodeRecord(
      1,
      {PutCounter{{"far", 1, 1, std::numeric_limits<std::int64_t>::max()}},
       PutCounter{{"near", 1, 1, NowMs() + 1000}},
       PutCounter{
           {"long:ago", 1, 1, std::numeric_limits<std::int64_t>::min()}}},
      journal);
  ASSERT_TRUE(fs_.CreateDir("/data").ok());
  fs_.SetContents("/data/" + JournalFileName(1), journal);
  FileRepositoryOptions options = ManualOptions();
  options.start_committer = true;
  {
    auto repo = Open(options);  // schedules the sweep for the earliest
    ASSERT_TRUE(repo);
    EXPECT_EQ(testing::Dump(*repo),
              (std::map<std::string, std::int64_t>{{"far", 1}, {"near", 1}}));
  }
  clock_.Advance(std::chrono::seconds(2));
  auto repo = Open();
  repo->RunDutiesNow();  // sweeps "near", then schedules "far"
  EXPECT_EQ(testing::Dump(*repo),
            (std::map<std::string, std::int64_t>{{"far", 1}}));
}

}  // namespace
}  // namespace counterd::storage
