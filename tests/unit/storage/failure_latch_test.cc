// FailureLatch: fail closed once, keep the first cause, and tell refused
// writes 507 for a full disk no request has heard of yet, 503 after.
#include "failure_latch.h"

#include <latch>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store_test_util.h"

namespace counterd::storage {
namespace {

TEST(FailureLatchTest, StartsOpen) {
  FailureLatch latch;
  EXPECT_FALSE(latch.failed());
}

TEST(FailureLatchTest, KeepsTheFirstCause) {
  const testing::QuietLogs quiet;
  FailureLatch latch;
  latch.Fail(Status::Unavailable("fsync journal: Input/output error"), true);
  latch.Fail(Status::ResourceExhausted("write: No space left on device"),
             false);
  ASSERT_TRUE(latch.failed());
  const Status refusal = latch.Refusal();
  EXPECT_EQ(refusal.code(), StatusCode::kUnavailable);
  EXPECT_NE(refusal.message().find("fsync journal: Input/output error"),
            std::string::npos)
      << refusal.message();
  EXPECT_EQ(refusal.message().find("No space"), std::string::npos);
  EXPECT_NE(refusal.message().find("until restart"), std::string::npos);
}

// A full disk met in the background (compaction): the first write told
// gets 507 with the cause; every later one 503, since freeing space alone
// would not reopen the store.
TEST(FailureLatchTest, BackgroundFullDiskIs507OnceThen503) {
  const testing::QuietLogs quiet;
  FailureLatch latch;
  latch.Fail(Status::ResourceExhausted("write state.json.tmp: No space left"),
             /*answered=*/false);
  const Status first = latch.RefuseWrite();
  EXPECT_EQ(first.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(first.message().find("No space left"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    const Status later = latch.RefuseWrite();
    EXPECT_EQ(later.code(), StatusCode::kUnavailable);
    EXPECT_NE(later.message().find("No space left"), std::string::npos);
  }
  EXPECT_EQ(latch.Refusal().code(), StatusCode::kUnavailable);
}

// A full disk the failing batch itself was told about (its own 507):
// everyone after it gets 503.
TEST(FailureLatchTest, AnsweredFullDiskIs503ForLaterWrites) {
  const testing::QuietLogs quiet;
  FailureLatch latch;
  latch.Fail(Status::ResourceExhausted("write journal: No space left"),
             /*answered=*/true);
  EXPECT_EQ(latch.RefuseWrite().code(), StatusCode::kUnavailable);
}

TEST(FailureLatchTest, OtherBackgroundFailuresAre503FromTheStart) {
  const testing::QuietLogs quiet;
  FailureLatch latch;
  latch.Fail(Status::Unavailable("rename: Input/output error"), false);
  EXPECT_EQ(latch.RefuseWrite().code(), StatusCode::kUnavailable);
  EXPECT_EQ(latch.RefuseWrite().code(), StatusCode::kUnavailable);
}

// Many writers meet a background full disk at once: exactly one hears 507.
TEST(FailureLatchTest, ExactlyOneConcurrentWriterGets507) {
  const testing::QuietLogs quiet;
  FailureLatch latch;
  latch.Fail(Status::ResourceExhausted("No space left on device"), false);
  constexpr int kWriters = 16;
  std::latch start(kWriters);
  std::vector<StatusCode> codes(kWriters);
  {
    std::vector<std::jthread> writers;
    for (int i = 0; i < kWriters; ++i) {
      writers.emplace_back([&, i] {
        start.arrive_and_wait();
        codes[static_cast<std::size_t>(i)] = latch.RefuseWrite().code();
      });
    }
  }
  EXPECT_EQ(
      std::count(codes.begin(), codes.end(), StatusCode::kResourceExhausted),
      1);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), StatusCode::kUnavailable),
            kWriters - 1);
}

}  // namespace
}  // namespace counterd::storage
