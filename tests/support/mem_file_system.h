// MemFileSystem: an in-memory FileSystem that models what survives a power
// loss (leveldb's FaultInjectionTestEnv). Each file remembers how many of
// its bytes were synced; each directory remembers its entries as of its last
// SyncDir. SimulateCrash() drops every unsynced byte and every directory
// change not made durable by a SyncDir. Thread-safe.
#ifndef COUNTERD_TESTS_SUPPORT_MEM_FILE_SYSTEM_H_
#define COUNTERD_TESTS_SUPPORT_MEM_FILE_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "counterd/platform/file_system.h"

namespace counterd::testing {

class MemFileSystem final : public platform::FileSystem {
 public:
  // Power loss: unsynced data and unsynced directory entries are gone.
  // Open WritableFiles must not be used afterwards. Locks are released.
  void SimulateCrash();
  // The contents of a file as the live system sees it ("" if absent).
  std::string Contents(const std::string& path);
  // Replaces a file's contents, synced (to plant corruption).
  void SetContents(const std::string& path, const std::string& data);

  Result<std::unique_ptr<platform::WritableFile>> NewWritableFile(
      const std::string& path) override;
  Result<std::unique_ptr<platform::WritableFile>> NewAppendableFile(
      const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Result<bool> FileExists(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status TruncateFile(const std::string& path, std::uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Result<std::unique_ptr<platform::FileLock>> LockFile(
      const std::string& path) override;
  // What SetFreeBytes set (1 TiB until then), whatever |dir|; appends do
  // not use it up. A status (SetFreeBytesError) makes it fail instead.
  Result<std::uint64_t> FreeBytes(const std::string& dir) override;
  // A file that exists is held (freeing it in steps does nothing here: its
  // bytes went with its name), so that fault rules on FreeInSteps apply.
  Result<std::unique_ptr<platform::ReleasedFile>> OpenToRelease(
      const std::string& path) override;

  // The free-space knob for the low-disk tests.
  void SetFreeBytes(std::uint64_t bytes);
  void SetFreeBytesError(Status error);
  // FreeBytes calls so far (the tests check that it is rate-limited).
  std::uint64_t free_bytes_calls();

  // Used by the file and lock handles.
  struct Inode {
    std::string data;
    std::size_t synced = 0;
  };
  std::mutex& mu() { return mu_; }
  void Unlock(const std::string& path);

 private:
  Result<std::unique_ptr<platform::WritableFile>> Open(const std::string& path,
                                                       bool truncate);
  static std::string DirOf(const std::string& path);

  std::mutex mu_;
  // Live namespace: path -> inode. Durable namespace: as of the last
  // SyncDir of each directory.
  std::map<std::string, std::shared_ptr<Inode>> live_;
  std::map<std::string, std::shared_ptr<Inode>> durable_;
  std::set<std::string> dirs_;
  std::set<std::string> locks_;
  std::uint64_t epoch_ = 0;  // bumped by SimulateCrash
  std::uint64_t free_bytes_ = std::uint64_t{1} << 40;
  Status free_bytes_error_;
  std::uint64_t free_bytes_calls_ = 0;
};

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_SUPPORT_MEM_FILE_SYSTEM_H_
