// Compactor: writes the snapshot, then deletes the journal files it
// covers (Invariants 3 to 5); a failure at any step shuts the latch and
// deletes nothing it should not.
#include "compactor.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "counterd/platform/fault_injection_file_system.h"
#include "counterd/storage/snapshot_document.h"
#include "journal.h"
#include "journal_format.h"
#include "snapshot_file.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

class CompactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mem_.CreateDir("/data").ok());
    // journal-1 (seqs 1..4), journal-5 (5..9), journal-10: the newest, as
    // the committer leaves it after rotating for a snapshot at seq 9.
    for (const std::uint64_t first : {1u, 5u, 10u}) {
      mem_.SetContents(Path(first), EncodeJournalHeader(first));
    }
    mem_.SetContents("/data/unrelated.txt", "keep me");
  }
  static std::string Path(std::uint64_t first) {
    return "/data/" + JournalFileName(first);
  }
  static SnapshotData Snapshot(std::uint64_t last_seq) {
    SnapshotData s;
    s.last_seq = last_seq;
    s.counters = {{"a", 1, 1, 0}, {"b", 2, 2, 99}};
    return s;
  }
  // The same as the compactor takes it: a document to read.
  static SnapshotImage Image(std::uint64_t last_seq) {
    SnapshotData data = Snapshot(last_seq);
    SnapshotContents contents;
    contents.summary.seq = data.last_seq;
    contents.counters = std::move(data.counters);
    return SnapshotImage{last_seq, NewSnapshotReader(std::move(contents))};
  }

  counterd::testing::MemFileSystem mem_;
  platform::FaultInjectionFileSystem fs_{mem_};
  FailureLatch latch_;
};

TEST_F(CompactorTest, WritesTheSnapshotAndDeletesTheJournalsItCovers) {
  Compactor compactor(fs_, "/data", latch_, 7);
  EXPECT_EQ(compactor.snapshot_bytes(), 7u);
  ASSERT_TRUE(compactor.WriteNow(Image(9)).ok());
  const std::string expected = EncodeSnapshot(Snapshot(9));
  EXPECT_EQ(mem_.Contents("/data/state.json"), expected);
  EXPECT_FALSE(*mem_.FileExists(Path(1)));
  EXPECT_FALSE(*mem_.FileExists(Path(5)));
  EXPECT_TRUE(*mem_.FileExists(Path(10)));
  EXPECT_TRUE(*mem_.FileExists("/data/unrelated.txt"));
  EXPECT_FALSE(*mem_.FileExists("/data/state.json.tmp"));
  EXPECT_EQ(compactor.compactions(), 1u);
  EXPECT_EQ(compactor.snapshot_bytes(), expected.size());
  EXPECT_FALSE(latch_.failed());
  // Durable: the snapshot and the deletions survive a power loss.
  mem_.SimulateCrash();
  EXPECT_EQ(mem_.Contents("/data/state.json"), expected);
  EXPECT_FALSE(*mem_.FileExists(Path(1)));
  EXPECT_FALSE(*mem_.FileExists(Path(5)));
}

TEST_F(CompactorTest, RunsOnItsOwnThread) {
  Compactor compactor(fs_, "/data", latch_, 0);
  compactor.Start(Image(4));
  compactor.Wait();
  EXPECT_FALSE(compactor.running());
  EXPECT_EQ(compactor.compactions(), 1u);
  EXPECT_FALSE(*mem_.FileExists(Path(1)));
  EXPECT_TRUE(*mem_.FileExists(Path(5)));
  compactor.Start(Image(9));
  compactor.Start(Image(9));  // waits for the one in progress first
  compactor.Wait();
  EXPECT_EQ(compactor.compactions(), 3u);
  EXPECT_FALSE(*mem_.FileExists(Path(5)));
}

struct Failure {
  platform::FsOp op;
  const char* path;
  bool snapshot_replaced;
};

class CompactorFailureTest : public CompactorTest,
                             public ::testing::WithParamInterface<Failure> {};

// A failed step shuts the latch with the cause (and "compaction" for
// context); journals go only once the snapshot covering them is durable.
TEST_P(CompactorFailureTest, ShutsTheLatchAndKeepsUncoveredJournals) {
  const testing::QuietLogs quiet;
  const Failure& f = GetParam();
  const std::string before = "{\"format\":2,... the old snapshot";
  mem_.SetContents("/data/state.json", before);
  fs_.AddRule(platform::FaultRule{f.op, EIO, f.path, 0, true});
  Compactor compactor(fs_, "/data", latch_, 0);
  const Status s = compactor.WriteNow(Image(9));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(latch_.failed());
  EXPECT_NE(latch_.Refusal().message().find("compaction"), std::string::npos)
      << latch_.Refusal().message();
  EXPECT_NE(latch_.Refusal().message().find("(injected)"), std::string::npos)
      << latch_.Refusal().message();
  EXPECT_EQ(compactor.compactions(), 0u);
  EXPECT_FALSE(compactor.running());
  if (!f.snapshot_replaced) {
    EXPECT_EQ(mem_.Contents("/data/state.json"), before);
  }
  // Not one journal goes after a failure (a failed directory fsync may
  // have left the rename undone).
  EXPECT_TRUE(*mem_.FileExists(Path(1)));
  EXPECT_TRUE(*mem_.FileExists(Path(5)));
  EXPECT_TRUE(*mem_.FileExists(Path(10)));
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, CompactorFailureTest,
    ::testing::Values(Failure{platform::FsOp::kOpen, "state.json.tmp", false},
                      Failure{platform::FsOp::kWrite, "state.json.tmp", false},
                      Failure{platform::FsOp::kSync, "state.json.tmp", false},
                      Failure{platform::FsOp::kRename, "", false},
                      Failure{platform::FsOp::kSyncDir, "", true},
                      Failure{platform::FsOp::kRemove, "journal", true},
                      // Freeing the old snapshot in steps, after the rename
                      // is durable and before any journal goes.
                      Failure{platform::FsOp::kTruncate, "state.json", true}));

}  // namespace
}  // namespace counterd::storage
