// FaultInjectionFileSystem: wraps another FileSystem and makes chosen calls
// fail with a chosen errno (fmt's posix-mock, leveldb's force_error_). Used
// by unit tests and, through COUNTERD_TEST_FAULTS, by end-to-end fault
// tests of the real binary. Thread-safe.
#ifndef COUNTERD_PLATFORM_FAULT_INJECTION_FILE_SYSTEM_H_
#define COUNTERD_PLATFORM_FAULT_INJECTION_FILE_SYSTEM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/platform/file_system.h"

namespace counterd::platform {

enum class FsOp {
  kOpen,   // NewWritableFile / NewAppendableFile
  kWrite,  // WritableFile::Append
  kSync,   // WritableFile::Sync
  kRename,
  kRemove,
  kTruncate,  // TruncateFile, ReleasedFile::FreeInSteps
  kSyncDir,
  kRead,
};

struct FaultRule {
  FsOp op = FsOp::kWrite;
  int err = 5;  // EIO
  // Only calls on paths containing this (empty: any path).
  std::string path_contains;
  // Let this many matching calls succeed first.
  std::uint64_t skip = 0;
  // Fail every matching call after the skipped ones (else only the first).
  bool sticky = true;
};

// Parses "op:errno[:skip][:path]" rules separated by commas, e.g.
// "sync:EIO:3" or "write:ENOSPC:0:journal". Ops: open write sync rename
// remove truncate syncdir read. Errnos: EIO ENOSPC EROFS EDQUOT.
Result<std::vector<FaultRule>> ParseFaultRules(std::string_view spec);

class FaultInjectionFileSystem final : public FileSystem {
 public:
  // |base| must outlive this object.
  explicit FaultInjectionFileSystem(FileSystem& base) : base_(base) {}

  void AddRule(FaultRule rule);
  void ClearRules();
  // Calls of each mutating kind seen so far (for "fail at step k" tests).
  std::uint64_t MutatingCalls() const { return mutating_calls_.load(); }

  // Returns the injected error for this call, or OK.
  Status Check(FsOp op, std::string_view path);

  Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Result<bool> FileExists(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status TruncateFile(const std::string& path, std::uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
  Result<std::uint64_t> FreeBytes(const std::string& dir) override;
  Result<std::unique_ptr<ReleasedFile>> OpenToRelease(
      const std::string& path) override;

 private:
  struct ActiveRule {
    FaultRule rule;
    std::uint64_t seen = 0;
    bool fired = false;
  };
  FileSystem& base_;
  std::mutex mu_;
  std::vector<ActiveRule> rules_;  // GUARDED_BY(mu_)
  std::atomic<std::uint64_t> mutating_calls_{0};
};

}  // namespace counterd::platform

#endif  // COUNTERD_PLATFORM_FAULT_INJECTION_FILE_SYSTEM_H_
