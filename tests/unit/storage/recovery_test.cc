// Start-up over every kind of data dir: fresh, torn, corrupt, missing and
// stale files. Runs on MemFileSystem.
#include <string>

#include <gtest/gtest.h>

#include "storage/journal_writer.h"
#include "storage/record_format.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using testing::AddPlanner;
using testing::Dump;
using testing::ManualOptions;
using testing::RunOne;

class RecoveryTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<CounterStore>> Open() {
    return CounterStore::Open(fs_, clock_, ManualOptions());
  }
  std::unique_ptr<CounterStore> MustOpen() {
    auto store = Open();
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }
  // Three increments of "a" then closes the store.
  void Populate() {
    auto store = MustOpen();
    for (int i = 0; i < 3; ++i) RunOne(*store, AddPlanner("a", 1));
    ASSERT_TRUE(store->Close().ok());
  }
  std::string Journal(std::uint64_t first = 1) {
    return "/data/" + JournalFileName(first);
  }

  counterd::testing::MemFileSystem fs_;
  ManualClock clock_;
};

TEST_F(RecoveryTest, FreshDirStartsEmpty) {
  auto store = MustOpen();
  EXPECT_TRUE(Dump(*store).empty());
  EXPECT_EQ(store->Stats().last_seq, 0u);
}

TEST_F(RecoveryTest, ReplaysTheJournal) {
  Populate();
  auto store = MustOpen();
  EXPECT_EQ(Dump(*store), (std::map<std::string, std::int64_t>{{"a", 3}}));
  EXPECT_EQ(store->Get("a")->version, 3u);
  EXPECT_EQ(store->Recovery().records_replayed, 3u);
}

TEST_F(RecoveryTest, TornTailIsCutAndWritesContinue) {
  Populate();
  const std::string intact = fs_.Contents(Journal());
  fs_.SetContents(Journal(), intact + std::string("\x07\x00\x00", 3));
  {
    auto store = MustOpen();
    EXPECT_EQ(store->Recovery().torn_bytes_truncated, 3u);
    EXPECT_EQ(fs_.Contents(Journal()), intact);
    RunOne(*store, AddPlanner("a", 10));
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen();
  EXPECT_EQ(Dump(*store)["a"], 13);
}

TEST_F(RecoveryTest, CorruptionBeforeTheTailRefusesToStart) {
  Populate();
  std::string data = fs_.Contents(Journal());
  data[20] ^= 0x40;  // inside the first record's payload
  fs_.SetContents(Journal(), data);
  auto store = Open();
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(store.error().message().find(Journal() + " at byte offset 0"),
            std::string::npos)
      << store.error().message();
  // Nothing was "repaired" behind the operator's back.
  EXPECT_EQ(fs_.Contents(Journal()), data);
}

TEST_F(RecoveryTest, UnparseableSnapshotRefusesToStart) {
  Populate();
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->CompactNow().ok());
  }
  fs_.SetContents("/data/state.json", "{\"format\":");
  auto store = Open();
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(store.error().message().find("/data/state.json"),
            std::string::npos);
}

TEST_F(RecoveryTest, EmptySnapshotRefusesToStart) {
  Populate();
  fs_.SetContents("/data/state.json", "");
  EXPECT_EQ(Open().error().code(), StatusCode::kDataLoss);
}

TEST_F(RecoveryTest, MissingSnapshotWithLaterJournalIsNeverResetToEmpty) {
  Populate();
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->CompactNow().ok());  // journal-4 now, state.json seq 3
    RunOne(*store, AddPlanner("a", 1));
  }
  ASSERT_TRUE(fs_.RemoveFile("/data/state.json").ok());
  auto store = Open();
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(store.error().message().find("state.json missing"),
            std::string::npos)
      << store.error().message();
}

TEST_F(RecoveryTest, EmptyJournalFileIsFine) {
  fs_.SetContents(Journal(), "");
  auto store = MustOpen();
  EXPECT_TRUE(Dump(*store).empty());
  RunOne(*store, AddPlanner("x", 2));
  EXPECT_EQ(Dump(*store)["x"], 2);
}

TEST_F(RecoveryTest, StaleTempSnapshotIsRemoved) {
  Populate();
  fs_.SetContents("/data/state.json.tmp", "half a snap");
  auto store = MustOpen();
  EXPECT_FALSE(*fs_.FileExists("/data/state.json.tmp"));
  EXPECT_EQ(Dump(*store)["a"], 3);
}

TEST_F(RecoveryTest, CompactionMovesStateIntoTheSnapshot) {
  Populate();
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->CompactNow().ok());
    EXPECT_FALSE(*fs_.FileExists(Journal(1)));
    EXPECT_TRUE(*fs_.FileExists(Journal(4)));
    RunOne(*store, AddPlanner("b", 5));
    ASSERT_TRUE(store->Close().ok());
  }
  const std::string snapshot = fs_.Contents("/data/state.json");
  EXPECT_NE(snapshot.find("{\"name\":\"a\",\"value\":3,\"version\":3}"),
            std::string::npos)
      << snapshot;
  auto store = MustOpen();
  EXPECT_EQ(Dump(*store),
            (std::map<std::string, std::int64_t>{{"a", 3}, {"b", 5}}));
  EXPECT_EQ(store->Recovery().snapshot_seq, 3u);
  EXPECT_EQ(store->Recovery().records_replayed, 1u);
}

TEST_F(RecoveryTest, LeftoverJournalsCoveredBySnapshotAreSkippedAndRemoved) {
  Populate();
  const std::string old_journal = fs_.Contents(Journal(1));
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->CompactNow().ok());
    RunOne(*store, AddPlanner("a", 1));
  }
  // A crash between the snapshot rename and the journal deletion.
  fs_.SetContents(Journal(1), old_journal);
  auto store = MustOpen();
  EXPECT_EQ(Dump(*store)["a"], 4);
  EXPECT_FALSE(*fs_.FileExists(Journal(1)));
}

// Found by tests/fuzz/recovery_fuzz: when the newest journal file cannot be
// continued (its records end before the snapshot's seq), appending to it
// would leave a sequence gap that the next start-up refuses.
TEST_F(RecoveryTest, NewestJournalEndingBeforeTheSnapshotIsNotAppendedTo) {
  Populate();  // seqs 1..3 in journal-1
  const std::string first_three = fs_.Contents(Journal(1));
  {
    auto store = MustOpen();
    RunOne(*store, AddPlanner("a", 1));     // seq 4
    RunOne(*store, AddPlanner("a", 1));     // seq 5
    ASSERT_TRUE(store->CompactNow().ok());  // state.json at seq 5, journal-6
  }
  ASSERT_TRUE(fs_.RemoveFile(Journal(6)).ok());
  fs_.SetContents(Journal(1), first_three);
  {
    auto store = MustOpen();
    EXPECT_EQ(Dump(*store)["a"], 5);
    RunOne(*store, AddPlanner("a", 10));  // seq 6, in a new journal-6
    ASSERT_TRUE(store->Close().ok());
  }
  fs_.SimulateCrash();
  auto store = MustOpen();
  EXPECT_EQ(Dump(*store)["a"], 15);
}

TEST_F(RecoveryTest, SecondOpenOfTheSameDirIsRefusedByTheLock) {
  auto first = MustOpen();
  auto second = Open();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.error().message().find("locked"), std::string::npos);
  first.reset();
  EXPECT_TRUE(Open().has_value());
}

}  // namespace
}  // namespace counterd::storage
