// FileSystem: the one seam between counterd and the operating system's files
// (leveldb's Env). Every file-system call the storage engine makes goes
// through it, so tests can substitute an in-memory file system that loses
// unsynced data (power loss) or one that fails chosen calls (ENOSPC, EIO).
// Implementations are thread-safe; a WritableFile is used by one thread.
#ifndef COUNTERD_PLATFORM_FILE_SYSTEM_H_
#define COUNTERD_PLATFORM_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/core/status.h"

namespace counterd::platform {

// A file open for writing at its end.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of |data| (looping over partial writes and EINTR).
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync). After a failure
  // the file's durable contents are unknown: callers must not retry.
  virtual Status Sync() = 0;
  // Starts writing the bytes appended since the last call out to the
  // device, and waits until the bytes of the call before are out
  // (sync_file_range on Linux). A long write that calls it as it goes
  // keeps its dirty data to about two calls' worth, without the file
  // system commits and cache flushes a Sync costs. It promises nothing
  // about durability (neither the metadata nor the device's cache): Sync
  // still does that. Where the platform has nothing like it, a no-op.
  virtual Status WriteBack() { return Status::Ok(); }
  // Writes zeros over the |bytes| after the end of what was appended, but
  // does not move the end: Size() and the next Append stay where they were.
  // Why: an append into space the file system has already allocated,
  // written and sized needs no file-size or extent change, so the Sync
  // after it flushes only the data, not a file-system journal commit as
  // well (on ext4 on this project's VM, 40 % less CPU and latency per
  // fdatasync: docs/BENCHMARKS.md). The zeros are not durable until a Sync
  // and are none of the file's contents, but whoever reads the file back
  // sees them after the last append. Where the platform gains nothing by
  // it (and in-memory test file systems), a no-op.
  virtual Status ZeroFillAhead(std::uint64_t /*bytes*/) { return Status::Ok(); }
  // Closes the descriptor, reporting close(2)'s error. Idempotent.
  virtual Status Close() = 0;
  // Bytes appended to the file (what was there at open plus what was
  // appended since); zeros written ahead are not counted.
  virtual std::uint64_t Size() const = 0;
};

// A file held open while its name goes (a rename over it, RemoveFile), so
// that its blocks can be freed in steps afterwards: see
// FileSystem::OpenToRelease. Destroying it closes the file, which frees
// whatever is left at once.
class ReleasedFile {
 public:
  virtual ~ReleasedFile() = default;
  // Frees the file's blocks |step_bytes| at a time from its end, each step
  // synced on its own (ftruncate + fdatasync), then closes it.
  // REQUIRES: the removal of the file's name is durable (SyncDir), since
  // this destroys the contents.
  virtual Status FreeInSteps(std::uint64_t step_bytes) = 0;
};

// An exclusive advisory lock, held until destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates |path| or truncates it to empty.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens |path| for appending at its current end, creating it empty if it
  // does not exist.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;
  // The whole contents; kNotFound if absent.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  virtual Result<bool> FileExists(const std::string& path) = 0;
  // Entry names (not paths) in |dir|, excluding "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // rename(2): atomically replaces |to|. Durable only after SyncDir.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // unlink(2). Durable only after SyncDir.
  virtual Status RemoveFile(const std::string& path) = 0;
  // Cuts |path| to |size| bytes and fsyncs it.
  virtual Status TruncateFile(const std::string& path, std::uint64_t size) = 0;
  // fsync of the directory itself: makes creations, renames and removals
  // of its entries durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Opens |path|, which is about to lose its name, so that its blocks can
  // be freed in steps afterwards; nullptr when there is nothing to free in
  // steps (no such file, or this default: freeing is cheap). Why:
  // on a file system that discards freed blocks online (ext4 mounted with
  // -o discard, common on virtual disks) the blocks freed in one commit
  // are discarded before that commit completes, and dropping a 430 MB
  // snapshot at once held every journal fdatasync up for 50-160 ms.
  virtual Result<std::unique_ptr<ReleasedFile>> OpenToRelease(
      const std::string& /*path*/) {
    return std::unique_ptr<ReleasedFile>();
  }
  // mkdir -p; OK if it exists.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Takes an exclusive lock on |path| (created if absent) without waiting;
  // kUnavailable if another process holds it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) = 0;
  // Bytes an unprivileged process may still write on the file system that
  // holds |dir| (statvfs(3): f_bavail * f_frsize).
  virtual Result<std::uint64_t> FreeBytes(const std::string& dir) = 0;
};

}  // namespace counterd::platform

#endif  // COUNTERD_PLATFORM_FILE_SYSTEM_H_
