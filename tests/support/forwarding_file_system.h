// ForwardingFileSystem and ForwardingWritableFile: pass every call to
// another file system (file), for the test file systems that change a few
// calls (cut the power, hold a sync) and must pass on the rest — including
// calls the interface gains later, which a hand-written forwarder would
// silently answer with the base class's default instead.
#ifndef COUNTERD_TESTS_SUPPORT_FORWARDING_FILE_SYSTEM_H_
#define COUNTERD_TESTS_SUPPORT_FORWARDING_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/core/status.h"
#include "counterd/platform/file_system.h"

namespace counterd::testing {

class ForwardingWritableFile : public platform::WritableFile {
 public:
  explicit ForwardingWritableFile(std::unique_ptr<platform::WritableFile> base)
      : base_(std::move(base)) {}

  Status Append(std::string_view data) override { return base_->Append(data); }
  Status Sync() override { return base_->Sync(); }
  Status WriteBack() override { return base_->WriteBack(); }
  Status ZeroFillAhead(std::uint64_t bytes) override {
    return base_->ZeroFillAhead(bytes);
  }
  Status Close() override { return base_->Close(); }
  std::uint64_t Size() const override { return base_->Size(); }

 private:
  std::unique_ptr<platform::WritableFile> base_;
};

class ForwardingFileSystem : public platform::FileSystem {
 public:
  explicit ForwardingFileSystem(platform::FileSystem& base) : base_(base) {}

  Result<std::unique_ptr<platform::WritableFile>> NewWritableFile(
      const std::string& path) override {
    return base_.NewWritableFile(path);
  }
  Result<std::unique_ptr<platform::WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return base_.NewAppendableFile(path);
  }
  Result<std::string> ReadFile(const std::string& path) override {
    return base_.ReadFile(path);
  }
  Result<bool> FileExists(const std::string& path) override {
    return base_.FileExists(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_.ListDir(dir);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_.Rename(from, to);
  }
  Status RemoveFile(const std::string& path) override {
    return base_.RemoveFile(path);
  }
  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    return base_.TruncateFile(path, size);
  }
  Status SyncDir(const std::string& dir) override { return base_.SyncDir(dir); }
  Status CreateDir(const std::string& dir) override {
    return base_.CreateDir(dir);
  }
  Result<std::unique_ptr<platform::FileLock>> LockFile(
      const std::string& path) override {
    return base_.LockFile(path);
  }
  Result<std::uint64_t> FreeBytes(const std::string& dir) override {
    return base_.FreeBytes(dir);
  }
  Result<std::unique_ptr<platform::ReleasedFile>> OpenToRelease(
      const std::string& path) override {
    return base_.OpenToRelease(path);
  }

 private:
  platform::FileSystem& base_;
};

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_SUPPORT_FORWARDING_FILE_SYSTEM_H_
