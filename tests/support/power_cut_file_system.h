// PowerCut: a FileSystem that forwards to another until |budget| mutating
// calls (open for writing, write, fdatasync, rename, unlink, truncate,
// directory fsync, freeing a released file) have been made; every mutating call
// after that fails, as if the power were gone. Paired with
// MemFileSystem::SimulateCrash, which then drops whatever was not synced, it
// puts a crash at every step of a workload. Reads are never cut. Not
// thread-safe: the tests step the store by hand.
#ifndef COUNTERD_TESTS_SUPPORT_POWER_CUT_FILE_SYSTEM_H_
#define COUNTERD_TESTS_SUPPORT_POWER_CUT_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/core/status.h"
#include "counterd/platform/file_system.h"
#include "support/forwarding_file_system.h"

namespace counterd::testing {

class PowerCut final : public ForwardingFileSystem {
 public:
  PowerCut(platform::FileSystem& base, std::uint64_t budget)
      : ForwardingFileSystem(base), budget_(budget) {}

  // Mutating calls made so far (at most |budget|).
  std::uint64_t steps() const { return steps_; }

  Result<std::unique_ptr<platform::WritableFile>> NewWritableFile(
      const std::string& path) override {
    COUNTERD_RETURN_IF_ERROR(Step("open", path));
    return Wrap(path, ForwardingFileSystem::NewWritableFile(path));
  }
  Result<std::unique_ptr<platform::WritableFile>> NewAppendableFile(
      const std::string& path) override {
    COUNTERD_RETURN_IF_ERROR(Step("open", path));
    return Wrap(path, ForwardingFileSystem::NewAppendableFile(path));
  }
  Status Rename(const std::string& from, const std::string& to) override {
    COUNTERD_RETURN_IF_ERROR(Step("rename", from));
    return ForwardingFileSystem::Rename(from, to);
  }
  Status RemoveFile(const std::string& path) override {
    COUNTERD_RETURN_IF_ERROR(Step("unlink", path));
    return ForwardingFileSystem::RemoveFile(path);
  }
  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    COUNTERD_RETURN_IF_ERROR(Step("truncate", path));
    return ForwardingFileSystem::TruncateFile(path, size);
  }
  Status SyncDir(const std::string& dir) override {
    COUNTERD_RETURN_IF_ERROR(Step("fsync(dir)", dir));
    return ForwardingFileSystem::SyncDir(dir);
  }
  Result<std::unique_ptr<platform::ReleasedFile>> OpenToRelease(
      const std::string& path) override {
    auto held = ForwardingFileSystem::OpenToRelease(path);
    if (!held || *held == nullptr) return held;
    return std::unique_ptr<platform::ReleasedFile>(
        std::make_unique<Released>(*this, path, std::move(*held)));
  }

 private:
  class File final : public ForwardingWritableFile {
   public:
    File(PowerCut& fs, std::string path,
         std::unique_ptr<platform::WritableFile> base)
        : ForwardingWritableFile(std::move(base)),
          fs_(fs),
          path_(std::move(path)) {}
    Status Append(std::string_view data) override {
      COUNTERD_RETURN_IF_ERROR(fs_.Step("write", path_));
      return ForwardingWritableFile::Append(data);
    }
    Status Sync() override {
      COUNTERD_RETURN_IF_ERROR(fs_.Step("fdatasync", path_));
      return ForwardingWritableFile::Sync();
    }

   private:
    PowerCut& fs_;
    std::string path_;
  };
  // Freeing a released file in steps is a mutating call too.
  class Released final : public platform::ReleasedFile {
   public:
    Released(PowerCut& fs, std::string path,
             std::unique_ptr<platform::ReleasedFile> base)
        : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
    Status FreeInSteps(std::uint64_t step_bytes) override {
      COUNTERD_RETURN_IF_ERROR(fs_.Step("ftruncate", path_));
      return base_->FreeInSteps(step_bytes);
    }

   private:
    PowerCut& fs_;
    std::string path_;
    std::unique_ptr<platform::ReleasedFile> base_;
  };

  Status Step(std::string_view what, const std::string& path) {
    if (steps_ < budget_) {
      ++steps_;
      return Status::Ok();
    }
    return Status::Unavailable(std::string(what) + " " + path + ": power lost");
  }
  Result<std::unique_ptr<platform::WritableFile>> Wrap(
      const std::string& path,
      Result<std::unique_ptr<platform::WritableFile>> file) {
    if (!file) return file;
    return std::unique_ptr<platform::WritableFile>(
        std::make_unique<File>(*this, path, std::move(*file)));
  }

  std::uint64_t budget_;
  std::uint64_t steps_ = 0;
};

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_SUPPORT_POWER_CUT_FILE_SYSTEM_H_
