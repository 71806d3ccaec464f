// Failure injection at each file-system call: the failing mutation is
// refused with the cause, nothing partial becomes visible, the store fails
// closed (reads go on, writes are refused) and a restart recovers exactly
// the acknowledged state.
#include <cerrno>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "counterd/platform/fault_injection_file_system.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using platform::FaultRule;
using platform::FsOp;
using testing::Add;
using testing::Commit;
using testing::Get;
using testing::ManualOptions;

struct FaultCase {
  FsOp op;
  int err;
  bool during_compaction;
  StatusCode expected;
};

class FaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(FaultTest, FailsClosedAndRecoversTheAckedState) {
  const FaultCase& c = GetParam();
  const testing::QuietLogs quiet;
  counterd::testing::MemFileSystem mem;
  platform::FaultInjectionFileSystem fs(mem);
  ManualClock clock;
  {
    auto store = FileRepository::Open(fs, clock, ManualOptions());
    ASSERT_TRUE(store);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(Commit(**store, Add("a", 1)).status.ok());
    }
    fs.AddRule(FaultRule{c.op, c.err, "", 0, true});
    Status failure;
    if (c.during_compaction) {
      failure = (*store)->CompactNow();
    } else {
      failure = Commit(**store, Add("a", 100)).status;
    }
    ASSERT_FALSE(failure.ok());
    EXPECT_EQ(failure.code(), c.expected) << failure.ToString();
    EXPECT_NE(failure.message().find("(injected)"), std::string::npos)
        << "the error must say what failed: " << failure.ToString();

    // Fail closed: reads keep working with the acknowledged value ...
    EXPECT_FALSE((*store)->Health().ok());
    EXPECT_EQ(Get(**store, "a")->value, 3);
    EXPECT_TRUE((*store)->Stats().failed);
    EXPECT_FALSE((*store)->Stats().up);
    // ... and every later write is refused, even once the fault is gone:
    // a failed fsync is never retried. A failure in the background
    // (compaction) is answered with its cause to the first write that
    // meets it: 507 for ENOSPC. After that, and after a failure a write
    // was already told about, 503.
    fs.ClearRules();
    const bool first_learns_enospc = c.during_compaction && c.err == ENOSPC;
    const auto first = Commit(**store, Add("a", 1));
    EXPECT_EQ(first.status.code(), first_learns_enospc
                                       ? StatusCode::kResourceExhausted
                                       : StatusCode::kUnavailable)
        << first.status.ToString();
    EXPECT_NE(first.status.message().find(
                  c.err == ENOSPC ? "No space left on device" : "(injected)"),
              std::string::npos)
        << first.status.ToString();
    const auto later = Commit(**store, Add("a", 1));
    EXPECT_EQ(later.status.code(), StatusCode::kUnavailable);
    EXPECT_EQ(Get(**store, "a")->value, 3);
    // Reads in a batch are answered too; a write in one is refused.
    EXPECT_TRUE(
        Commit(**store, testing::Batch({testing::GetOp("a")})).status.ok());
    EXPECT_EQ(
        Commit(**store, testing::Batch({testing::AddOp("b", 1)})).status.code(),
        StatusCode::kUnavailable);
    EXPECT_EQ((*store)->Close().code(), StatusCode::kUnavailable)
        << "Close reports the failure";
  }
  // Restart of the process (the page cache survives) ...
  {
    auto store = FileRepository::Open(fs, clock, ManualOptions());
    ASSERT_TRUE(store) << store.error().ToString();
    EXPECT_EQ(testing::Dump(**store),
              (std::map<std::string, std::int64_t>{{"a", 3}}));
    EXPECT_TRUE((*store)->Health().ok());
  }
  // ... and after a power loss.
  mem.SimulateCrash();
  auto store = FileRepository::Open(fs, clock, ManualOptions());
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_EQ(testing::Dump(**store),
            (std::map<std::string, std::int64_t>{{"a", 3}}));
}

INSTANTIATE_TEST_SUITE_P(
    EveryCall, FaultTest,
    ::testing::Values(
        FaultCase{FsOp::kWrite, ENOSPC, false, StatusCode::kResourceExhausted},
        FaultCase{FsOp::kWrite, EIO, false, StatusCode::kUnavailable},
        FaultCase{FsOp::kSync, EIO, false, StatusCode::kUnavailable},
        FaultCase{FsOp::kSync, ENOSPC, false, StatusCode::kResourceExhausted},
        FaultCase{FsOp::kWrite, EROFS, false, StatusCode::kUnavailable},
        FaultCase{FsOp::kOpen, EIO, true, StatusCode::kUnavailable},
        FaultCase{FsOp::kWrite, ENOSPC, true, StatusCode::kUnavailable},
        FaultCase{FsOp::kSync, EIO, true, StatusCode::kUnavailable},
        FaultCase{FsOp::kRename, EIO, true, StatusCode::kUnavailable},
        FaultCase{FsOp::kRename, ENOSPC, true, StatusCode::kUnavailable},
        FaultCase{FsOp::kSyncDir, EIO, true, StatusCode::kUnavailable},
        FaultCase{FsOp::kRemove, EIO, true, StatusCode::kUnavailable},
        // Cutting the old journal's zeros before a rotation (R0).
        FaultCase{FsOp::kTruncate, EIO, true, StatusCode::kUnavailable}));

TEST(FaultRulesTest, ParsesSpecs) {
  auto rules = platform::ParseFaultRules("sync:EIO:3,write:ENOSPC:0:journal");
  ASSERT_TRUE(rules) << rules.error().ToString();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].op, FsOp::kSync);
  EXPECT_EQ((*rules)[0].err, EIO);
  EXPECT_EQ((*rules)[0].skip, 3u);
  EXPECT_EQ((*rules)[1].path_contains, "journal");
  EXPECT_FALSE(platform::ParseFaultRules("fsync:EIO"));
  EXPECT_FALSE(platform::ParseFaultRules("sync:EBADF"));
  EXPECT_FALSE(platform::ParseFaultRules("sync:EIO:x"));
}

}  // namespace
}  // namespace counterd::storage
