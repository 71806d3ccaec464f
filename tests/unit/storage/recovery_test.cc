// Start-up over every kind of data dir: fresh, torn, corrupt, missing and
// stale files, journal headers cut short or damaged, formats newer than
// this counterd. Runs on MemFileSystem.
#include <cstdio>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "binary_io.h"
#include "counterd/core/crc32c.h"
#include "journal.h"
#include "journal_format.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using testing::Add;
using testing::Commit;
using testing::Dump;
using testing::Get;
using testing::ManualOptions;

// |body| (a snapshot up to its checksum line) with the right crc32c line.
std::string Seal(const std::string& body) {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", crc32c::Value(body));
  return body + "\"crc32c\":\"" + hex + "\"}\n";
}

class RecoveryTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<FileRepository>> Open() {
    return FileRepository::Open(fs_, clock_, ManualOptions());
  }
  std::unique_ptr<FileRepository> MustOpen() {
    auto repo = Open();
    EXPECT_TRUE(repo) << repo.error().ToString();
    return repo ? std::move(*repo) : nullptr;
  }
  // Refused with kDataLoss by both Open and Verify, and the message has
  // |what|; returns it.
  std::string ExpectRefused(std::string_view what) {
    auto repo = Open();
    EXPECT_FALSE(repo);
    if (repo) return "";
    EXPECT_EQ(repo.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(repo.error().message().find(what), std::string::npos)
        << repo.error().message();
    auto verdict = FileRepository::Verify(fs_, "/data");
    EXPECT_FALSE(verdict) << "counterd check disagrees with start-up";
    if (!verdict) {
      EXPECT_EQ(verdict.error(), repo.error());
    }
    return repo.error().message();
  }
  // Three increments of "a" (seqs 1..3 in journal-1), then closes.
  void Populate() {
    auto repo = MustOpen();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
    }
    ASSERT_TRUE(repo->Close().ok());
  }
  static std::string Journal(std::uint64_t first = 1) {
    return "/data/" + JournalFileName(first);
  }

  counterd::testing::MemFileSystem fs_;
  ManualClock clock_;
};

TEST_F(RecoveryTest, FreshDirStartsEmptyWithAHeaderedJournal) {
  auto repo = MustOpen();
  EXPECT_TRUE(Dump(*repo).empty());
  EXPECT_EQ(repo->Stats().last_seq, 0u);
  EXPECT_EQ(repo->Recovery().snapshot_format, 0);
  EXPECT_EQ(repo->Recovery().journal_format, 0);
  EXPECT_EQ(fs_.Contents(Journal(1)), EncodeJournalHeader(1));
}

TEST_F(RecoveryTest, ReplaysTheJournal) {
  Populate();
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo), (std::map<std::string, std::int64_t>{{"a", 3}}));
  EXPECT_EQ(Get(*repo, "a")->version, 3u);
  EXPECT_EQ(repo->Recovery().records_replayed, 3u);
  EXPECT_EQ(repo->Recovery().journal_format, 2);
  EXPECT_EQ(repo->Recovery().counters, 1u);
}

TEST_F(RecoveryTest, TornTailIsCutAndWritesContinue) {
  Populate();
  const std::string intact = fs_.Contents(Journal());
  fs_.SetContents(Journal(), intact + std::string("\x07\x00\x00", 3));
  auto verdict = FileRepository::Verify(fs_, "/data");
  ASSERT_TRUE(verdict) << verdict.error().ToString();
  EXPECT_EQ(verdict->torn_bytes_truncated, 3u);
  EXPECT_EQ(fs_.Contents(Journal()).size(), intact.size() + 3)
      << "Verify changes nothing";
  {
    auto repo = MustOpen();
    EXPECT_EQ(repo->Recovery().torn_bytes_truncated, 3u);
    EXPECT_EQ(fs_.Contents(Journal()), intact);
    ASSERT_TRUE(Commit(*repo, Add("a", 10)).status.ok());
    ASSERT_TRUE(repo->Close().ok());
  }
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo)["a"], 13);
}

TEST_F(RecoveryTest, CorruptionBeforeTheTailRefusesToStart) {
  Populate();
  std::string data = fs_.Contents(Journal());
  data[kJournalHeaderSize + 20] ^= 0x40;  // inside the first record
  fs_.SetContents(Journal(), data);
  ExpectRefused(Journal() + " at byte offset 24: checksum mismatch");
  // Nothing was "repaired" behind the operator's back.
  EXPECT_EQ(fs_.Contents(Journal()), data);
}

TEST_F(RecoveryTest, UnparseableSnapshotRefusesToStart) {
  Populate();
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  fs_.SetContents("/data/state.json", "{\"format\":");
  ExpectRefused("/data/state.json at byte offset");
}

TEST_F(RecoveryTest, EmptySnapshotRefusesToStart) {
  Populate();
  fs_.SetContents("/data/state.json", "");
  ExpectRefused("/data/state.json at byte offset 0: empty snapshot");
}

TEST_F(RecoveryTest, MissingSnapshotWithLaterJournalIsNeverResetToEmpty) {
  Populate();
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());  // journal-4 now, state.json seq 3
    ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  }
  ASSERT_TRUE(fs_.RemoveFile("/data/state.json").ok());
  ExpectRefused(Journal(4) +
                " at byte offset 0: journal starts at seq 4 but there is no "
                "snapshot (state.json missing)");
}

TEST_F(RecoveryTest, StaleTempSnapshotIsRemoved) {
  Populate();
  fs_.SetContents("/data/state.json.tmp", "half a snap");
  auto repo = MustOpen();
  EXPECT_FALSE(*fs_.FileExists("/data/state.json.tmp"));
  EXPECT_EQ(Dump(*repo)["a"], 3);
}

TEST_F(RecoveryTest, CompactionMovesStateIntoTheSnapshot) {
  Populate();
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());
    EXPECT_FALSE(*fs_.FileExists(Journal(1)));
    EXPECT_EQ(fs_.Contents(Journal(4)), EncodeJournalHeader(4));
    ASSERT_TRUE(Commit(*repo, Add("b", 5)).status.ok());
    ASSERT_TRUE(repo->Close().ok());
  }
  const std::string snapshot = fs_.Contents("/data/state.json");
  EXPECT_TRUE(snapshot.starts_with(
      "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":3,\n"))
      << snapshot;
  EXPECT_NE(snapshot.find("\n{\"name\":\"a\",\"value\":3,\"version\":3}\n"),
            std::string::npos)
      << snapshot;
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo),
            (std::map<std::string, std::int64_t>{{"a", 3}, {"b", 5}}));
  EXPECT_EQ(repo->Recovery().snapshot_seq, 3u);
  EXPECT_EQ(repo->Recovery().snapshot_format, 2);
  EXPECT_EQ(repo->Recovery().records_replayed, 1u);
}

TEST_F(RecoveryTest, LeftoverJournalsCoveredBySnapshotAreSkippedAndRemoved) {
  Populate();
  const std::string old_journal = fs_.Contents(Journal(1));
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());
    ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  }
  // A crash between the snapshot rename and the journal deletion.
  fs_.SetContents(Journal(1), old_journal);
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo)["a"], 4);
  EXPECT_FALSE(*fs_.FileExists(Journal(1)));
}

// Found by tests/fuzz/recovery_fuzz: when the newest journal file cannot be
// continued (its records end before the snapshot's seq), appending to it
// would leave a sequence gap that the next start-up refuses.
TEST_F(RecoveryTest, NewestJournalEndingBeforeTheSnapshotIsNotAppendedTo) {
  Populate();  // seqs 1..3 in journal-1
  const std::string first_three = fs_.Contents(Journal(1));
  {
    auto repo = MustOpen();
    ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());  // seq 4
    ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());  // seq 5
    ASSERT_TRUE(repo->CompactNow().ok());  // state.json at 5, journal-6
  }
  ASSERT_TRUE(fs_.RemoveFile(Journal(6)).ok());
  fs_.SetContents(Journal(1), first_three);
  {
    auto repo = MustOpen();
    EXPECT_EQ(Dump(*repo)["a"], 5);
    ASSERT_TRUE(Commit(*repo, Add("a", 10)).status.ok());  // seq 6, journal-6
    ASSERT_TRUE(repo->Close().ok());
  }
  EXPECT_TRUE(fs_.Contents(Journal(6)).starts_with(EncodeJournalHeader(6)));
  fs_.SimulateCrash();
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo)["a"], 15);
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

// -- the journal file header
// ---------------------------------------------------

// A crash while the newest journal was created (Invariant 8) leaves it
// empty, part of its header, zeros or a header with a bad CRC: it holds no
// record, and start-up writes its header again and goes on.
class HeaderTornTest : public RecoveryTest,
                       public ::testing::WithParamInterface<std::string> {};

TEST_P(HeaderTornTest, RecoveredAsEmptyAndRewritten) {
  Populate();
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());  // state.json at 3, journal-4
  }
  fs_.SetContents(Journal(4), GetParam());
  auto verdict = FileRepository::Verify(fs_, "/data");
  ASSERT_TRUE(verdict) << verdict.error().ToString();
  {
    auto repo = MustOpen();
    EXPECT_EQ(fs_.Contents(Journal(4)), EncodeJournalHeader(4));
    EXPECT_EQ(Dump(*repo)["a"], 3);
    ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  }
  fs_.SimulateCrash();
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo)["a"], 4);
  EXPECT_EQ(repo->Recovery().records_replayed, 1u);
}

std::string HeaderWithoutCrc() {
  std::string out = EncodeJournalHeader(4);
  for (std::size_t i = 20; i < 24; ++i) out[i] = '\0';
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    CutShort, HeaderTornTest,
    ::testing::Values(std::string(), EncodeJournalHeader(4).substr(0, 11),
                      std::string(kJournalHeaderSize, '\0'),
                      std::string(512, '\0'), HeaderWithoutCrc()));

TEST_F(RecoveryTest, EmptyFirstJournalIsAFreshStore) {
  fs_.SetContents(Journal(1), "");
  {
    auto repo = MustOpen();
    EXPECT_TRUE(Dump(*repo).empty());
    ASSERT_TRUE(Commit(*repo, Add("x", 2)).status.ok());
  }
  fs_.SimulateCrash();
  EXPECT_EQ(Dump(*MustOpen())["x"], 2);
}

// Found by tests/fuzz/recovery_fuzz: a newest journal cut short at creation
// that the snapshot already covers (its name is not the next seq) goes; a
// fresh one is started where the snapshot ends.
TEST_F(RecoveryTest, CutShortJournalTheSnapshotCoversIsRemoved) {
  Populate();
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());  // state.json at 3, journal-4
  }
  const std::string snapshot = fs_.Contents("/data/state.json");
  ASSERT_TRUE(fs_.RemoveFile(Journal(4)).ok());
  fs_.SetContents(Journal(2), "");  // newest, first seq 2 <= 3
  {
    auto repo = MustOpen();
    EXPECT_FALSE(*fs_.FileExists(Journal(2)));
    EXPECT_EQ(fs_.Contents(Journal(4)), EncodeJournalHeader(4));
    ASSERT_TRUE(Commit(*repo, Add("a", 1)).status.ok());
  }
  fs_.SimulateCrash();
  auto repo = MustOpen();
  EXPECT_EQ(Dump(*repo)["a"], 4);
}

TEST_F(RecoveryTest, BadJournalHeaderCrcRefusesToStartNamingTheFile) {
  Populate();
  std::string data = fs_.Contents(Journal());
  data[13] ^= 0x01;  // first_seq, under the header CRC
  fs_.SetContents(Journal(), data);
  ExpectRefused(Journal() +
                " at byte offset 0: journal file header checksum mismatch");
  EXPECT_EQ(fs_.Contents(Journal()), data);
}

TEST_F(RecoveryTest, JournalHeaderThatDisagreesWithItsNameRefusesToStart) {
  Populate();
  // journal-1's contents (its header says 1) under the name journal-2, and
  // a snapshot that makes seq 2 the next one to replay.
  {
    auto repo = MustOpen();
    ASSERT_TRUE(Commit(*repo, Add("b", 1)).status.ok());
  }
  const std::string moved = fs_.Contents(Journal(1));
  ASSERT_TRUE(fs_.RemoveFile(Journal(1)).ok());
  fs_.SetContents(Journal(2), moved);
  fs_.SetContents("/data/state.json",
                  Seal("{\"format\":2,\"kind\":\"counterd-snapshot\","
                       "\"last_seq\":1,\n\"counters\":[],\n"
                       "\"idempotency\":[],\n"));
  ExpectRefused(Journal(2) +
                " at byte offset 0: journal file header says first seq 1 but "
                "the file name says 2");
}

// A header with a sound CRC declaring |version|.
std::string HeaderWithVersion(std::uint32_t version, std::uint64_t first) {
  std::string out(kJournalMagic);
  PutFixed<std::uint32_t>(out, version);
  PutFixed<std::uint64_t>(out, first);
  PutFixed<std::uint32_t>(out, crc32c::Value(out));
  return out;
}

TEST_F(RecoveryTest, JournalOfANewerFormatIsRefusedClearly) {
  Populate();
  const std::string data = fs_.Contents(Journal());
  fs_.SetContents(Journal(),
                  HeaderWithVersion(3, 1) + data.substr(kJournalHeaderSize));
  ExpectRefused(Journal() +
                " at byte offset 0: journal format 3 is newer than this "
                "counterd reads (1 and 2); refusing to guess — run a newer "
                "counterd");
  // Also when it holds nothing but its header (a counterd of format 3 that
  // just compacted): never taken for a creation cut short.
  fs_.SetContents(Journal(), HeaderWithVersion(3, 1));
  ExpectRefused("journal format 3 is newer");
}

TEST_F(RecoveryTest, SnapshotOfANewerFormatIsRefusedClearly) {
  Populate();
  {
    auto repo = MustOpen();
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  std::string snapshot = fs_.Contents("/data/state.json");
  const std::string v2 = "{\"format\":2,";
  ASSERT_TRUE(snapshot.starts_with(v2));
  snapshot.replace(0, v2.size(), "{\"format\":3,");
  fs_.SetContents("/data/state.json",
                  Seal(snapshot.substr(0, snapshot.rfind("\"crc32c\""))));
  ExpectRefused(
      "/data/state.json at byte offset 0: snapshot format 3 is not one this "
      "counterd reads (1 and 2); refusing to guess — run a newer counterd");
}

// Creation times at the ends of the int64 range (a clock far off, or a
// hand-made file) must not overflow the retention arithmetic: a record
// from the far future is retained, one from the far past is not.
TEST_F(RecoveryTest, IdempotencyTimesAtTheInt64EdgesAreHandled) {
  const auto record = [](std::string key, std::int64_t created_at_ms) {
    domain::IdempotencyRecord r;
    r.key = std::move(key);
    r.request = Add("a", 1).MakeFingerprint();
    r.created_at_ms = created_at_ms;
    r.outcome.results.push_back({domain::Counter{"a", 41, 9, 0}, false});
    return PutIdempotency{r};
  };
  std::string journal = EncodeJournalHeader(1);
  EncodeRecord(1,
               {record("future", std::numeric_limits<std::int64_t>::max()),
                record("past", std::numeric_limits<std::int64_t>::min())},
               journal);
  fs_.SetContents(Journal(1), journal);
  auto repo = MustOpen();
  const domain::TransactionOutcome future =
      Commit(*repo, testing::WithKey(Add("a", 1), "future"));
  EXPECT_TRUE(future.replayed);
  const domain::TransactionOutcome past =
      Commit(*repo, testing::WithKey(Add("a", 1), "past"));
  EXPECT_FALSE(past.replayed);
  ASSERT_TRUE(repo->CompactNow().ok());
  const std::string snapshot = fs_.Contents("/data/state.json");
  EXPECT_NE(snapshot.find("\"future\""), std::string::npos) << snapshot;
}

}  // namespace
}  // namespace counterd::storage
