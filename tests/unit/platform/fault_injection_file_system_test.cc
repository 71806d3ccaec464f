// FaultInjectionFileSystem and ParseFaultRules (the COUNTERD_TEST_FAULTS
// grammar): which call each rule fails, with what Status, how often, and
// that every other call goes through to the wrapped file system untouched.
#include "counterd/platform/fault_injection_file_system.h"

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/mem_file_system.h"

namespace counterd::platform {
namespace {

// ----------------------------------------------------------- ParseFaultRules

TEST(ParseFaultRulesTest, EmptySpecHasNoRules) {
  auto rules = ParseFaultRules("");
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules->empty());
}

TEST(ParseFaultRulesTest, OpAndErrnoGiveAStickyRuleOnEveryPath) {
  auto rules = ParseFaultRules("sync:EIO");
  ASSERT_TRUE(rules) << rules.error().ToString();
  ASSERT_EQ(rules->size(), 1u);
  const FaultRule& r = (*rules)[0];
  EXPECT_EQ(r.op, FsOp::kSync);
  EXPECT_EQ(r.err, EIO);
  EXPECT_EQ(r.skip, 0u);
  EXPECT_EQ(r.path_contains, "");
  EXPECT_TRUE(r.sticky);
}

TEST(ParseFaultRulesTest, SkipAndPathAreOptional) {
  auto rules = ParseFaultRules("write:ENOSPC:3:journal,open:EDQUOT::state");
  ASSERT_TRUE(rules) << rules.error().ToString();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].op, FsOp::kWrite);
  EXPECT_EQ((*rules)[0].err, ENOSPC);
  EXPECT_EQ((*rules)[0].skip, 3u);
  EXPECT_EQ((*rules)[0].path_contains, "journal");
  EXPECT_EQ((*rules)[1].op, FsOp::kOpen);
  EXPECT_EQ((*rules)[1].err, EDQUOT);
  EXPECT_EQ((*rules)[1].skip, 0u);  // an empty skip is 0
  EXPECT_EQ((*rules)[1].path_contains, "state");
}

TEST(ParseFaultRulesTest, ThePathMayContainColons) {
  auto rules = ParseFaultRules("rename:EROFS:0:dir:with:colons");
  ASSERT_TRUE(rules) << rules.error().ToString();
  ASSERT_EQ(rules->size(), 1u);
  EXPECT_EQ((*rules)[0].path_contains, "dir:with:colons");
}

TEST(ParseFaultRulesTest, EveryOpAndErrnoName) {
  const std::vector<std::pair<std::string, FsOp>> ops = {
      {"open", FsOp::kOpen},       {"write", FsOp::kWrite},
      {"sync", FsOp::kSync},       {"rename", FsOp::kRename},
      {"remove", FsOp::kRemove},   {"truncate", FsOp::kTruncate},
      {"syncdir", FsOp::kSyncDir}, {"read", FsOp::kRead}};
  for (const auto& [name, op] : ops) {
    auto rules = ParseFaultRules(name + ":EIO");
    ASSERT_TRUE(rules) << name;
    EXPECT_EQ((*rules)[0].op, op) << name;
  }
  const std::vector<std::pair<std::string, int>> errs = {
      {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EDQUOT", EDQUOT}};
  for (const auto& [name, err] : errs) {
    auto rules = ParseFaultRules("write:" + name);
    ASSERT_TRUE(rules) << name;
    EXPECT_EQ((*rules)[0].err, err) << name;
  }
}

TEST(ParseFaultRulesTest, MalformedRulesAreInvalidArguments) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sync", "fault rule needs op:errno"},
      {"sync:EIO,,write:EIO", "fault rule needs op:errno"},
      {"fsync:EIO", "unknown fault op fsync"},
      {"SYNC:EIO", "unknown fault op SYNC"},
      {"sync:EAGAIN", "unknown fault errno EAGAIN"},
      {"sync:eio", "unknown fault errno eio"},
      {"sync:EIO:x", "bad fault skip count x"},
      {"sync:EIO:3x", "bad fault skip count 3x"},
      {"sync:EIO:-1", "bad fault skip count -1"},
      {"sync:EIO:99999999999999999999",
       "bad fault skip count "
       "99999999999999999999"},
  };
  for (const auto& [spec, message] : cases) {
    auto rules = ParseFaultRules(spec);
    ASSERT_FALSE(rules) << spec;
    EXPECT_EQ(rules.error(), Status(StatusCode::kInvalidArgument, message))
        << spec;
  }
}

// -------------------------------------------------- FaultInjectionFileSystem

class FaultInjectionFileSystemTest : public ::testing::Test {
 protected:
  FaultInjectionFileSystemTest() {
    EXPECT_TRUE(mem_.CreateDir("/d").ok());
    mem_.SetContents("/d/journal", "abc");
  }

  static FaultRule Rule(FsOp op, int err, std::string path = "",
                        std::uint64_t skip = 0, bool sticky = true) {
    return FaultRule{op, err, std::move(path), skip, sticky};
  }

  // Runs the call that |op| names, on /d/journal (a rename: onto it).
  Status Call(FsOp op) {
    switch (op) {
      case FsOp::kOpen:
        return fs_.NewAppendableFile("/d/journal").status();
      case FsOp::kWrite:
        return Open()->Append("x");
      case FsOp::kSync:
        return Open()->Sync();
      case FsOp::kRename:
        mem_.SetContents("/d/journal.tmp", "new");
        return fs_.Rename("/d/journal.tmp", "/d/journal");
      case FsOp::kRemove:
        return fs_.RemoveFile("/d/journal");
      case FsOp::kTruncate:
        return fs_.TruncateFile("/d/journal", 1);
      case FsOp::kSyncDir:
        return fs_.SyncDir("/d");
      case FsOp::kRead:
        return fs_.ReadFile("/d/journal").status();
    }
    return Status::Internal("unknown op");
  }

  // /d/journal opened for appending while no rule is set.
  WritableFile* Open() {
    if (!file_) {
      auto file = fs_.NewAppendableFile("/d/journal");
      EXPECT_TRUE(file) << file.error().ToString();
      if (file) file_ = std::move(*file);
    }
    return file_.get();
  }

  counterd::testing::MemFileSystem mem_;
  FaultInjectionFileSystem fs_{mem_};
  std::unique_ptr<WritableFile> file_;
};

constexpr FsOp kAllOps[] = {FsOp::kOpen,    FsOp::kWrite,  FsOp::kSync,
                            FsOp::kRename,  FsOp::kRemove, FsOp::kTruncate,
                            FsOp::kSyncDir, FsOp::kRead};

TEST_F(FaultInjectionFileSystemTest, WithoutRulesEveryCallGoesThrough) {
  for (const FsOp op : kAllOps) {
    mem_.SetContents("/d/journal", "abc");
    EXPECT_TRUE(Call(op).ok()) << static_cast<int>(op);
  }
}

TEST_F(FaultInjectionFileSystemTest, EachRuleFailsTheCallItNamesOnly) {
  // The injected Status reads like the real one, marked "(injected)", with
  // the system call's name.
  const std::vector<std::pair<FsOp, std::string>> expected = {
      {FsOp::kOpen, "open (injected) /d/journal"},
      {FsOp::kWrite, "write (injected) /d/journal"},
      {FsOp::kSync, "fdatasync (injected) /d/journal"},
      {FsOp::kRename, "rename (injected) /d/journal"},
      {FsOp::kRemove, "unlink (injected) /d/journal"},
      {FsOp::kTruncate, "ftruncate (injected) /d/journal"},
      {FsOp::kSyncDir, "fsync (injected) /d"},
      {FsOp::kRead, "read (injected) /d/journal"}};
  for (const auto& [failing, text] : expected) {
    SCOPED_TRACE(text);
    mem_.SetContents("/d/journal", "abc");
    Open();  // before the rule: the write and sync cases need an open file
    fs_.ClearRules();
    fs_.AddRule(Rule(failing, EIO));
    for (const FsOp op : kAllOps) {
      mem_.SetContents("/d/journal", "abc");
      const Status s = Call(op);
      if (op == failing) {
        EXPECT_EQ(
            s, Status(StatusCode::kUnavailable, text + ": Input/output error"));
      } else {
        EXPECT_TRUE(s.ok()) << static_cast<int>(op) << ": " << s.ToString();
      }
    }
  }
}

TEST_F(FaultInjectionFileSystemTest, SpaceErrorsAreResourceExhausted) {
  fs_.AddRule(Rule(FsOp::kWrite, ENOSPC));
  EXPECT_EQ(Open()->Append("x"),
            Status(StatusCode::kResourceExhausted,
                   "write (injected) /d/journal: No space left on device"));
  fs_.ClearRules();
  fs_.AddRule(Rule(FsOp::kSync, EDQUOT));
  EXPECT_EQ(Open()->Sync(),
            Status(StatusCode::kResourceExhausted,
                   "fdatasync (injected) /d/journal: Disk quota exceeded"));
  fs_.ClearRules();
  fs_.AddRule(Rule(FsOp::kRename, EROFS));
  EXPECT_EQ(fs_.Rename("/d/journal", "/d/x"),
            Status(StatusCode::kUnavailable,
                   "rename (injected) /d/x: Read-only file system"));
}

TEST_F(FaultInjectionFileSystemTest, AFailedCallDoesNotReachTheFileSystem) {
  WritableFile* file = Open();
  fs_.AddRule(Rule(FsOp::kWrite, EIO));
  EXPECT_FALSE(file->Append("more").ok());
  EXPECT_EQ(mem_.Contents("/d/journal"), "abc");
  EXPECT_EQ(file->Size(), 3u);
  fs_.AddRule(Rule(FsOp::kRemove, EIO));
  EXPECT_FALSE(fs_.RemoveFile("/d/journal").ok());
  EXPECT_EQ(fs_.FileExists("/d/journal").value(), true);
}

TEST_F(FaultInjectionFileSystemTest, SkipLetsThatManyCallsThroughFirst) {
  WritableFile* file = Open();
  fs_.AddRule(Rule(FsOp::kWrite, EIO, "", 2));
  EXPECT_TRUE(file->Append("1").ok());
  EXPECT_TRUE(file->Append("2").ok());
  EXPECT_FALSE(file->Append("3").ok());
  EXPECT_FALSE(file->Append("4").ok()) << "a sticky rule keeps failing";
  EXPECT_EQ(mem_.Contents("/d/journal"), "abc12");
}

TEST_F(FaultInjectionFileSystemTest, ANonStickyRuleFailsOnce) {
  WritableFile* file = Open();
  fs_.AddRule(Rule(FsOp::kSync, EIO, "", 1, /*sticky=*/false));
  EXPECT_TRUE(file->Sync().ok());
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_TRUE(file->Sync().ok());
  EXPECT_TRUE(file->Sync().ok());
}

TEST_F(FaultInjectionFileSystemTest, APathRuleOnlyMatchesAndCountsItsPaths) {
  mem_.SetContents("/d/state.json", "{}");
  fs_.AddRule(Rule(FsOp::kRead, EIO, "state", 1));
  EXPECT_TRUE(fs_.ReadFile("/d/journal").has_value());
  EXPECT_TRUE(fs_.ReadFile("/d/journal").has_value());
  EXPECT_TRUE(fs_.ReadFile("/d/state.json").has_value())
      << "the one skipped call";
  EXPECT_EQ(fs_.ReadFile("/d/state.json").error(),
            Status(StatusCode::kUnavailable,
                   "read (injected) /d/state.json: Input/output error"));
  EXPECT_TRUE(fs_.ReadFile("/d/journal").has_value());
}

TEST_F(FaultInjectionFileSystemTest, ARenameIsMatchedOnItsTarget) {
  mem_.SetContents("/d/target.tmp", "x");
  fs_.AddRule(Rule(FsOp::kRename, EIO, "target"));
  EXPECT_TRUE(fs_.Rename("/d/target.tmp", "/d/other").ok());
  mem_.SetContents("/d/a", "x");
  EXPECT_FALSE(fs_.Rename("/d/a", "/d/target").ok());
}

TEST_F(FaultInjectionFileSystemTest, ClearRulesEndsTheFailures) {
  fs_.AddRule(Rule(FsOp::kSyncDir, EIO));
  EXPECT_FALSE(fs_.SyncDir("/d").ok());
  fs_.ClearRules();
  EXPECT_TRUE(fs_.SyncDir("/d").ok());
}

TEST_F(FaultInjectionFileSystemTest, UncheckedCallsNeverFail) {
  WritableFile* file = Open();
  for (const FsOp op : kAllOps) fs_.AddRule(Rule(op, EIO));
  EXPECT_EQ(fs_.FileExists("/d/journal").value(), true);
  EXPECT_TRUE(fs_.ListDir("/d").has_value());
  EXPECT_TRUE(fs_.CreateDir("/d/sub").ok());
  EXPECT_TRUE(fs_.LockFile("/d/LOCK").has_value());
  EXPECT_TRUE(file->Close().ok());
  EXPECT_EQ(file->Size(), 3u);
}

TEST_F(FaultInjectionFileSystemTest,
       MutatingCallsCountsEveryCheckedCallButReads) {
  EXPECT_EQ(fs_.MutatingCalls(), 0u);
  for (const FsOp op : kAllOps) {
    mem_.SetContents("/d/journal", "abc");
    ASSERT_TRUE(Call(op).ok());
  }
  // open (twice: the kOpen call, and Open() for write and sync), write,
  // sync, rename, remove, truncate, syncdir; not read.
  EXPECT_EQ(fs_.MutatingCalls(), 8u);
  EXPECT_TRUE(fs_.FileExists("/d/journal").has_value());
  EXPECT_TRUE(fs_.ListDir("/d").has_value());
  EXPECT_EQ(fs_.MutatingCalls(), 8u);
  // Calls that fail are counted too.
  fs_.AddRule(Rule(FsOp::kSyncDir, EIO));
  EXPECT_FALSE(fs_.SyncDir("/d").ok());
  EXPECT_EQ(fs_.MutatingCalls(), 9u);
}

}  // namespace
}  // namespace counterd::platform
