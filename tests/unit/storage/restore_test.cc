// Snapshots and restores of the file backend: TakeSnapshot copies exactly
// the state after one commit and encodes it as a data dir's state.json;
// FileRepository::Restore builds a data dir from it, refuses a store that
// is there unless forced, and, cut by a power loss at any step, leaves
// either what was there before or a dir that refuses to start — never a
// half-restored store.
#include "restore.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/core/clock.h"
#include "counterd/storage/file_repository.h"
#include "counterd/storage/snapshot_document.h"
#include "snapshot_codec.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"
#include "support/power_cut_file_system.h"

namespace counterd::storage {
namespace {

using counterd::testing::MemFileSystem;
using counterd::testing::PowerCut;
using testing::Add;
using testing::Capture;
using testing::Commit;
using testing::Delete;
using testing::List;
using testing::ManualOptions;
using testing::WithKey;

// A snapshot taken and read to the end.
struct Taken {
  std::uint64_t seq = 0;
  std::string document;
};

// The image as TakeSnapshot completes it (its document not read yet).
SnapshotImage TakeImage(CounterRepository& repo) {
  Capture<Result<SnapshotImage>> done;
  repo.TakeSnapshot(done);
  EXPECT_TRUE(done.done() && done.result().has_value());
  if (!done.done() || !done.result()) return SnapshotImage{};
  SnapshotImage image = *done.Take();
  EXPECT_NE(image.document, nullptr);
  return image;
}

Taken Take(CounterRepository& repo) {
  SnapshotImage image = TakeImage(repo);
  if (!image.document) return Taken{image.seq, ""};
  Result<std::string> document = ReadWholeDocument(*image.document);
  EXPECT_TRUE(document) << document.error().ToString();
  return Taken{image.seq, document ? *document : ""};
}

// A store with three counters, one idempotency record, at seq 4.
std::unique_ptr<FileRepository> Populated(MemFileSystem& fs, const Clock& clock,
                                          const std::string& dir) {
  auto repo = FileRepository::Open(fs, clock, ManualOptions(dir));
  EXPECT_TRUE(repo) << repo.error().ToString();
  EXPECT_TRUE(Commit(**repo, Add("a", 1)).status.ok());
  EXPECT_TRUE(Commit(**repo, Add("b", 2)).status.ok());
  EXPECT_TRUE(Commit(**repo, WithKey(Add("c", 3), "key-1")).status.ok());
  EXPECT_TRUE(Commit(**repo, Add("a", 10)).status.ok());
  return std::move(*repo);
}

TEST(SnapshotTest, IsTheStateAtItsSeqEncodedAsAStateJson) {
  MemFileSystem fs;
  ManualClock clock;
  auto repo = Populated(fs, clock, "/src");
  const Taken image = Take(*repo);
  EXPECT_EQ(image.seq, 4u);

  auto decoded = DecodeSnapshot(image.document, "snapshot");
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(decoded->format, 2);
  EXPECT_EQ(decoded->last_seq, 4u);
  ASSERT_EQ(decoded->counters.size(), 3u);
  EXPECT_EQ(decoded->counters[0], (domain::Counter{"a", 11, 2, 0}));
  EXPECT_EQ(decoded->counters[1], (domain::Counter{"b", 2, 1, 0}));
  EXPECT_EQ(decoded->counters[2], (domain::Counter{"c", 3, 1, 0}));
  ASSERT_EQ(decoded->idempotency.size(), 1u);
  EXPECT_EQ(decoded->idempotency[0].key, "key-1");

  // Byte for byte what compaction writes as state.json at the same seq.
  ASSERT_TRUE(repo->CompactNow().ok());
  EXPECT_EQ(fs.Contents("/src/state.json"), image.document);
}

TEST(SnapshotTest, ReadInPiecesIsTheSameDocumentAsOfItsSeq) {
  MemFileSystem fs;
  ManualClock clock;
  auto repo = Populated(fs, clock, "/src");
  const std::string whole = Take(*repo).document;
  SnapshotImage image = TakeImage(*repo);
  ASSERT_NE(image.document, nullptr);
  // Commits after the snapshot was taken, before and while its document
  // is read, are not in it: the document is of seq 4 however late it is
  // read. (The cursor under it is paged in store_cursor_test.)
  ASSERT_TRUE(Commit(*repo, Add("d", 4)).status.ok());
  ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  ASSERT_TRUE(Commit(*repo, Delete("b")).status.ok());
  std::vector<std::string> pieces;
  for (;;) {
    Result<std::string> piece = ReadPieceNow(*image.document, 1);
    ASSERT_TRUE(piece) << piece.error().ToString();
    if (piece->empty()) break;
    pieces.push_back(*piece);
    ASSERT_TRUE(Commit(*repo, Add("c", 1)).status.ok());
    ASSERT_TRUE(
        Commit(*repo, Add("e" + std::to_string(pieces.size()), 1)).status.ok());
  }
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  EXPECT_EQ(joined, whole);
  // One part per piece at a size hint of 1: the header, three counters,
  // the section break, the record, and the end (the crc32c line).
  EXPECT_EQ(pieces.size(), 7u);
  // And it stays at its end.
  Result<std::string> after = ReadPieceNow(*image.document, 1);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, "");
}

TEST(SnapshotTest, FollowsCommitsOneByOne) {
  MemFileSystem fs;
  ManualClock clock;
  auto repo = Populated(fs, clock, "/src");
  ASSERT_TRUE(Commit(*repo, Add("d", 4)).status.ok());
  const Taken image = Take(*repo);
  EXPECT_EQ(image.seq, 5u);
  auto decoded = DecodeSnapshot(image.document, "snapshot");
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(decoded->counters.size(), 4u);
}

TEST(RestoreTest, BuildsADataDirThatOpensWithTheSameState) {
  MemFileSystem fs;
  ManualClock clock;
  auto source = Populated(fs, clock, "/src");
  const Taken image = Take(*source);
  const std::vector<domain::Counter> before = List(*source);

  auto restored = FileRepository::Restore(fs, image.document, "snap.json",
                                          "/dst", /*force=*/false);
  ASSERT_TRUE(restored) << restored.error().ToString();
  EXPECT_EQ(restored->seq, 4u);
  EXPECT_EQ(restored->counters, 3u);
  EXPECT_EQ(restored->idempotency_records, 1u);
  // Only the snapshot: no marker, no temp file (MemFileSystem's locks are
  // not files; on disk there is LOCK too, tests/integration/test_backup).
  auto names = fs.ListDir("/dst");
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"state.json"}));

  auto repo = FileRepository::Open(fs, clock, ManualOptions("/dst"));
  ASSERT_TRUE(repo) << repo.error().ToString();
  EXPECT_EQ(List(**repo), before);
  // The idempotency record came along: a retry is replayed, not re-applied.
  const auto retry = Commit(**repo, WithKey(Add("c", 3), "key-1"));
  EXPECT_TRUE(retry.replayed);
  // New commits continue after the snapshot's seq.
  ASSERT_TRUE(Commit(**repo, Add("a", 1)).status.ok());
  EXPECT_EQ(Take(**repo).seq, 5u);
}

TEST(RestoreTest, RefusesADataDirHoldingAStoreUnlessForced) {
  MemFileSystem fs;
  ManualClock clock;
  auto source = Populated(fs, clock, "/src");
  const Taken image = Take(*source);
  {
    auto other = FileRepository::Open(fs, clock, ManualOptions("/dst"));
    ASSERT_TRUE(other);
    ASSERT_TRUE(Commit(**other, Add("zzz", 99)).status.ok());
    ASSERT_TRUE(Commit(**other, Add("zzz", 1)).status.ok());
    ASSERT_TRUE(Commit(**other, Add("zzz", 1)).status.ok());
    ASSERT_TRUE(Commit(**other, Add("zzz", 1)).status.ok());
    ASSERT_TRUE(Commit(**other, Add("zzz", 1)).status.ok());
    ASSERT_TRUE((*other)->Close().ok());
  }
  auto refused = FileRepository::Restore(fs, image.document, "snap.json",
                                         "/dst", /*force=*/false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(refused.error().message(),
            "data dir /dst is not empty (it holds journal-00000000000000000001."
            "log); restore replaces a store only with --force");

  auto forced = FileRepository::Restore(fs, image.document, "snap.json", "/dst",
                                        /*force=*/true);
  ASSERT_TRUE(forced) << forced.error().ToString();
  auto repo = FileRepository::Open(fs, clock, ManualOptions("/dst"));
  ASSERT_TRUE(repo) << repo.error().ToString();
  EXPECT_EQ(List(**repo), List(*source));
}

TEST(RestoreTest, RefusesADataDirARunningStoreHolds) {
  MemFileSystem fs;
  ManualClock clock;
  auto source = Populated(fs, clock, "/src");
  const Taken image = Take(*source);
  auto refused = FileRepository::Restore(fs, image.document, "snap.json",
                                         "/src", /*force=*/true);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), StatusCode::kUnavailable);
}

TEST(RestoreTest, RefusesADamagedSnapshotNamingTheOffsetAndWritesNothing) {
  MemFileSystem fs;
  ManualClock clock;
  auto source = Populated(fs, clock, "/src");
  std::string document = Take(*source).document;
  const std::size_t at = document.size() / 2;
  document[at] = static_cast<char>(document[at] ^ 0x01);
  auto refused = FileRepository::Restore(fs, document, "snap.json", "/dst",
                                         /*force=*/false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(refused.error().message().find("snap.json"), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("offset"), std::string::npos)
      << refused.error().message();
  auto exists = fs.FileExists("/dst");
  ASSERT_TRUE(exists);
  EXPECT_FALSE(*exists);
}

// What a directory opens as: its counters, or the error.
std::string OpenAs(MemFileSystem& fs, const Clock& clock,
                   const std::string& dir) {
  auto repo = FileRepository::Open(fs, clock, ManualOptions(dir));
  if (!repo) return "error: " + repo.error().ToString();
  std::string out;
  for (const domain::Counter& c : List(**repo)) {
    out += c.name + "=" + std::to_string(c.value) + " ";
  }
  return out;
}

// A power loss at every mutating step of a forced restore over a store:
// the dir then opens as the old store (cut before the marker was durable),
// refuses to start naming the interrupted restore, or opens as the new
// store — and a second restore always completes it.
TEST(RestoreTest, APowerLossAtAnyStepNeverLeavesAHalfRestoredStore) {
  std::uint64_t steps_of_a_whole_restore = 0;
  int cut_to_old = 0;      // cut before the marker was durable
  int cut_to_refusal = 0;  // cut between the marker and its removal
  for (std::uint64_t budget = 0;; ++budget) {
    SCOPED_TRACE("power lost after " + std::to_string(budget) + " steps");
    MemFileSystem fs;
    ManualClock clock;
    std::string document;
    {
      auto source = Populated(fs, clock, "/src");
      document = Take(*source).document;
      auto old = FileRepository::Open(fs, clock, ManualOptions("/dst"));
      ASSERT_TRUE(old);
      ASSERT_TRUE(Commit(**old, Add("old", 7)).status.ok());
      ASSERT_TRUE((*old)->CompactNow().ok());
      ASSERT_TRUE(Commit(**old, Add("old", 1)).status.ok());
    }
    const std::string old_state = OpenAs(fs, clock, "/dst");
    ASSERT_EQ(old_state, "old=8 ");
    const std::string new_state = "a=11 b=2 c=3 ";

    PowerCut cut(fs, budget);
    auto restored =
        FileRepository::Restore(cut, document, "snap.json", "/dst", true);
    fs.SimulateCrash();
    if (restored) {
      steps_of_a_whole_restore = cut.steps();
      EXPECT_EQ(OpenAs(fs, clock, "/dst"), new_state);
      break;
    }
    const std::string after = OpenAs(fs, clock, "/dst");
    if (after == old_state) ++cut_to_old;
    if (after != old_state && after != new_state) {
      ++cut_to_refusal;
      EXPECT_EQ(after,
                "error: FAILED_PRECONDITION: /dst/RESTORING: a counterd "
                "restore into this data dir did not finish; run counterd "
                "restore --force again (refusing to start on a half-restored "
                "store)");
    }
    // Running it again completes it.
    auto again = FileRepository::Restore(fs, document, "snap.json", "/dst",
                                         /*force=*/true);
    ASSERT_TRUE(again) << again.error().ToString();
    EXPECT_EQ(OpenAs(fs, clock, "/dst"), new_state);
    ASSERT_LT(budget, 100u) << "the restore never completed";
  }
  // The cut covered every step of a restore (marker, removals, snapshot,
  // marker removal): more than a handful.
  EXPECT_GE(steps_of_a_whole_restore, 10u);
  EXPECT_GT(cut_to_old, 0);
  EXPECT_GT(cut_to_refusal, 5);
}

}  // namespace
}  // namespace counterd::storage
