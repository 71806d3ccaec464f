// The low-disk guard (issue 14 §2): under --min-free-bytes writes are
// refused with kResourceExhausted before the journal is touched, reads go
// on, Health() says why, and writes resume by themselves once space is
// back. A real ENOSPC still fails the store closed. The free space is the
// MemFileSystem's knob.
#include <cerrno>
#include <cstdint>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "counterd/platform/fault_injection_file_system.h"
#include "disk_space_guard.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using testing::Add;
using testing::Commit;
using testing::Get;
using testing::ManualOptions;

constexpr std::uint64_t kMiB = 1024 * 1024;

FileRepositoryOptions GuardedOptions(std::optional<std::uint64_t> min_free) {
  FileRepositoryOptions options = ManualOptions();
  options.min_free_bytes = min_free;
  options.disk_check_interval = std::chrono::milliseconds(0);  // every call
  return options;
}

// Every file of the data dir with its contents: "the journal was not
// touched" is "no byte of the dir changed".
std::map<std::string, std::string> DirContents(
    counterd::testing::MemFileSystem& fs) {
  std::map<std::string, std::string> out;
  auto names = fs.ListDir("/data");
  EXPECT_TRUE(names);
  for (const std::string& name : *names) {
    out[name] = fs.Contents("/data/" + name);
  }
  return out;
}

TEST(DiskSpaceTest, RefusesBeforeTheJournalAndResumesWhenSpaceIsBack) {
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem fs;
  ManualClock clock;
  {
    auto store = FileRepository::Open(fs, clock, GuardedOptions(kMiB));
    ASSERT_TRUE(store) << store.error().ToString();
    ASSERT_TRUE(Commit(**store, Add("a", 1)).status.ok());
    EXPECT_FALSE((*store)->Stats().low_disk);

    fs.SetFreeBytes(1000);
    const auto before = DirContents(fs);
    const auto refused = Commit(**store, Add("a", 5));
    EXPECT_EQ(refused.status.code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(refused.status.message(),
              "low disk: the data dir's file system has 1000 bytes free, "
              "under --min-free-bytes 1048576; writes are refused until "
              "space is freed (reads go on, nothing was written)");
    // A batch that writes is refused the same way.
    EXPECT_EQ(
        Commit(**store, testing::Batch({testing::AddOp("b", 1)})).status.code(),
        StatusCode::kResourceExhausted);
    EXPECT_EQ(DirContents(fs), before) << "the journal was touched";

    // Reads go on; readiness and the stats say why; not failed closed.
    EXPECT_EQ(Get(**store, "a")->value, 1);
    EXPECT_TRUE(
        Commit(**store, testing::Batch({testing::GetOp("a")})).status.ok());
    EXPECT_EQ((*store)->Health().code(), StatusCode::kResourceExhausted);
    RepositoryStats stats = (*store)->Stats();
    EXPECT_TRUE(stats.low_disk);
    EXPECT_FALSE(stats.failed);
    EXPECT_EQ(stats.data_dir_free_bytes, 1000u);
    EXPECT_EQ(stats.min_free_bytes, kMiB);
    EXPECT_EQ(stats.writes_refused_low_disk, 2u);

    // Exactly at the threshold is enough; no restart needed.
    fs.SetFreeBytes(kMiB);
    const auto resumed = Commit(**store, Add("a", 1));
    ASSERT_TRUE(resumed.status.ok()) << resumed.status.ToString();
    EXPECT_EQ(resumed.results.at(0).counter->value, 2);
    EXPECT_TRUE((*store)->Health().ok());
    stats = (*store)->Stats();
    EXPECT_FALSE(stats.low_disk);
    EXPECT_EQ(stats.data_dir_free_bytes, kMiB);
    EXPECT_EQ(stats.writes_refused_low_disk, 2u);
    EXPECT_EQ(stats.data_dir_size_bytes,
              stats.journal_bytes + stats.snapshot_bytes);
    EXPECT_GT(stats.data_dir_size_bytes, 0u);
    EXPECT_TRUE((*store)->Close().ok());
  }
  // The refused writes left nothing behind: a restart sees 1 + 1.
  auto store = FileRepository::Open(fs, clock, GuardedOptions(kMiB));
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_EQ(testing::Dump(**store),
            (std::map<std::string, std::int64_t>{{"a", 2}}));
}

TEST(DiskSpaceTest, DefaultRuleLeavesRoomForTheNextSnapshot) {
  EXPECT_EQ(DiskSpaceGuard::DefaultMinFreeBytes(0), 64 * kMiB);
  EXPECT_EQ(DiskSpaceGuard::DefaultMinFreeBytes(24 * kMiB), 64 * kMiB);
  EXPECT_EQ(DiskSpaceGuard::DefaultMinFreeBytes(100 * kMiB), 216 * kMiB);
  EXPECT_EQ(DiskSpaceGuard::DefaultMinFreeBytes(UINT64_MAX), UINT64_MAX);

  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem fs;
  ManualClock clock;
  auto store = FileRepository::Open(fs, clock, GuardedOptions(std::nullopt));
  ASSERT_TRUE(store) << store.error().ToString();
  fs.SetFreeBytes(64 * kMiB - 1);
  EXPECT_EQ(Commit(**store, Add("a", 1)).status.code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ((*store)->Stats().min_free_bytes, 64 * kMiB);
  fs.SetFreeBytes(64 * kMiB);
  EXPECT_TRUE(Commit(**store, Add("a", 1)).status.ok());
}

TEST(DiskSpaceTest, ZeroTurnsTheCheckOff) {
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem fs;
  ManualClock clock;
  auto store = FileRepository::Open(fs, clock, GuardedOptions(0));
  ASSERT_TRUE(store) << store.error().ToString();
  fs.SetFreeBytes(0);
  EXPECT_TRUE(Commit(**store, Add("a", 1)).status.ok());
  EXPECT_TRUE((*store)->Health().ok());
  EXPECT_FALSE((*store)->Stats().low_disk);
}

TEST(DiskSpaceTest, UnreadableFreeSpaceDoesNotRefuseWrites) {
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem fs;
  ManualClock clock;
  auto store = FileRepository::Open(fs, clock, GuardedOptions(kMiB));
  ASSERT_TRUE(store) << store.error().ToString();
  fs.SetFreeBytes(0);
  EXPECT_FALSE((*store)->Health().ok());
  fs.SetFreeBytesError(Status::Internal("statvfs /data: (injected)"));
  EXPECT_TRUE(Commit(**store, Add("a", 1)).status.ok());
  EXPECT_TRUE((*store)->Health().ok());
}

TEST(DiskSpaceTest, LooksAtMostOncePerInterval) {
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem fs;
  ManualClock clock;
  FileRepositoryOptions options = GuardedOptions(kMiB);
  options.disk_check_interval = std::chrono::hours(1);
  auto store = FileRepository::Open(fs, clock, options);
  ASSERT_TRUE(store) << store.error().ToString();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Commit(**store, Add("a", 1)).status.ok());
    EXPECT_TRUE((*store)->Health().ok());
    (void)(*store)->Stats();
  }
  EXPECT_EQ(fs.free_bytes_calls(), 1u);
  // Within the interval the last look stands.
  fs.SetFreeBytes(0);
  EXPECT_TRUE(Commit(**store, Add("a", 1)).status.ok());
  EXPECT_EQ(fs.free_bytes_calls(), 1u);
}

TEST(DiskSpaceTest, NoCompactionStartsWhileLow) {
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem fs;
  ManualClock clock;
  FileRepositoryOptions options = GuardedOptions(kMiB);
  options.compaction_threshold_bytes = 1;  // every duty run would compact
  auto store = FileRepository::Open(fs, clock, options);
  ASSERT_TRUE(store) << store.error().ToString();
  ASSERT_TRUE(Commit(**store, Add("a", 1)).status.ok());
  fs.SetFreeBytes(10);
  EXPECT_FALSE((*store)->Health().ok());
  (*store)->RunDutiesNow();
  EXPECT_EQ((*store)->Stats().compactions, 0u);
  fs.SetFreeBytes(kMiB);
  EXPECT_TRUE((*store)->Health().ok());
  (*store)->RunDutiesNow();
  EXPECT_TRUE((*store)->Close().ok());
  EXPECT_EQ((*store)->Stats().compactions, 1u);
}

TEST(DiskSpaceTest, RealEnospcStillFailsClosed) {
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem mem;
  platform::FaultInjectionFileSystem fs(mem);
  ManualClock clock;
  auto store = FileRepository::Open(fs, clock, GuardedOptions(kMiB));
  ASSERT_TRUE(store) << store.error().ToString();
  ASSERT_TRUE(Commit(**store, Add("a", 1)).status.ok());
  // Plenty of space by statvfs, but the write meets ENOSPC (another
  // process filled the disk between two looks).
  fs.AddRule(platform::FaultRule{platform::FsOp::kWrite, ENOSPC, "", 0, true});
  const auto failed = Commit(**store, Add("a", 1));
  EXPECT_EQ(failed.status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(failed.status.message().find("No space left on device"),
            std::string::npos)
      << failed.status.ToString();
  fs.ClearRules();
  EXPECT_TRUE((*store)->Stats().failed);
  EXPECT_FALSE((*store)->Stats().low_disk);
  // Space is fine, but the store stays closed until a restart.
  EXPECT_EQ(Commit(**store, Add("a", 1)).status.code(),
            StatusCode::kUnavailable);
  EXPECT_EQ((*store)->Health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Get(**store, "a")->value, 1);
}

}  // namespace
}  // namespace counterd::storage
