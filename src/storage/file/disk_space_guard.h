// DiskSpaceGuard: keeps a full disk from failing the store closed (issue
// 14 §2). It watches the free space of the file system that holds the data
// dir and, while it is under the threshold, has the repository refuse
// writes with kResourceExhausted (507) *before* they reach the journal:
// nothing is appended, so nothing needs taking back, and the store stays
// open. Once space is back the next look lets writes through again; no
// restart. A write that meets ENOSPC anyway (another process filled the
// disk between two looks) still fails the store closed (FailureLatch).
//
// Looking is statvfs(2) through the FileSystem seam, at most once per
// check_interval whoever asks (commits, /readyz, /metrics): one caller
// wins the turn and the others use the last answer, so a burst of requests
// never turns into a burst of syscalls.
//
// Thread-safe.
#ifndef COUNTERD_STORAGE_FILE_DISK_SPACE_GUARD_H_
#define COUNTERD_STORAGE_FILE_DISK_SPACE_GUARD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "counterd/core/status.h"
#include "counterd/platform/file_system.h"

namespace counterd::storage {

class DiskSpaceGuard {
 public:
  // The default threshold: room for the next snapshot with the journal and
  // everything else that is still there while it is written, plus a
  // margin. A snapshot is the whole state, so it is about as big as the
  // last one; twice that allows for growth since. At least 64 MiB.
  static std::uint64_t DefaultMinFreeBytes(std::uint64_t last_snapshot_bytes);

  // |fs| must outlive the guard. |min_free_bytes|: nullopt for the default
  // rule, 0 to never refuse. |check_interval| 0: look on every call.
  DiskSpaceGuard(platform::FileSystem& fs, std::string dir,
                 std::optional<std::uint64_t> min_free_bytes,
                 std::chrono::milliseconds check_interval);
  DiskSpaceGuard(const DiskSpaceGuard&) = delete;
  DiskSpaceGuard& operator=(const DiskSpaceGuard&) = delete;

  // Looks at the free space again if it is time (|last_snapshot_bytes|
  // feeds the default rule); then OK, or kResourceExhausted naming the free
  // bytes and the threshold while they are under it.
  Status Check(std::uint64_t last_snapshot_bytes);
  // Counts a write refused because of Check.
  void CountRefusal() { refused_.fetch_add(1, std::memory_order_relaxed); }

  // As of the last look.
  bool low() const { return low_.load(std::memory_order_acquire); }
  std::uint64_t free_bytes() const { return free_bytes_.load(); }
  std::uint64_t threshold() const { return threshold_.load(); }
  std::uint64_t refused() const { return refused_.load(); }

 private:
  void Look(std::uint64_t last_snapshot_bytes);
  Status Refusal() const;

  platform::FileSystem& fs_;
  const std::string dir_;
  const std::optional<std::uint64_t> min_free_bytes_;
  const std::chrono::nanoseconds check_interval_;

  // steady_clock nanoseconds of the next look; 0 before the first.
  std::atomic<std::int64_t> next_look_ns_{0};
  std::atomic<bool> low_{false};
  std::atomic<bool> statvfs_failing_{false};
  std::atomic<std::uint64_t> free_bytes_{0};
  std::atomic<std::uint64_t> threshold_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_DISK_SPACE_GUARD_H_
