#include "disk_space_guard.h"

#include <algorithm>
#include <utility>

#include "counterd/core/log.h"
#include "counterd/core/result.h"

namespace counterd::storage {

namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1024} * 1024;
constexpr std::uint64_t kFloorBytes = 64 * kMiB;
constexpr std::uint64_t kMarginBytes = 16 * kMiB;

std::int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::uint64_t DiskSpaceGuard::DefaultMinFreeBytes(
    std::uint64_t last_snapshot_bytes) {
  // Saturating: a snapshot size near 2^63 is not real, but must not wrap.
  const std::uint64_t twice =
      last_snapshot_bytes > (UINT64_MAX - kMarginBytes) / 2
          ? UINT64_MAX - kMarginBytes
          : 2 * last_snapshot_bytes;
  return std::max(kFloorBytes, twice + kMarginBytes);
}

DiskSpaceGuard::DiskSpaceGuard(platform::FileSystem& fs, std::string dir,
                               std::optional<std::uint64_t> min_free_bytes,
                               std::chrono::milliseconds check_interval)
    : fs_(fs),
      dir_(std::move(dir)),
      min_free_bytes_(min_free_bytes),
      check_interval_(check_interval) {}

Status DiskSpaceGuard::Check(std::uint64_t last_snapshot_bytes) {
  std::int64_t due = next_look_ns_.load(std::memory_order_relaxed);
  const std::int64_t now = SteadyNowNs();
  // One caller per interval wins the turn; the others read the last look.
  if (now >= due &&
      next_look_ns_.compare_exchange_strong(due, now + check_interval_.count(),
                                            std::memory_order_relaxed)) {
    Look(last_snapshot_bytes);
  }
  return low() ? Refusal() : Status::Ok();
}

void DiskSpaceGuard::Look(std::uint64_t last_snapshot_bytes) {
  const std::uint64_t threshold =
      min_free_bytes_ ? *min_free_bytes_
                      : DefaultMinFreeBytes(last_snapshot_bytes);
  Result<std::uint64_t> free = fs_.FreeBytes(dir_);
  if (!free) {
    // Not knowing is no reason to refuse writes: a real ENOSPC still fails
    // the store closed. Said once per spell of failures.
    if (!statvfs_failing_.exchange(true)) {
      log::Warn("cannot read the data dir's free space; not refusing writes",
                {{"data_dir", dir_}, {"error", free.error().ToString()}});
    }
    threshold_ = threshold;
    low_.store(false, std::memory_order_release);
    return;
  }
  statvfs_failing_ = false;
  free_bytes_ = *free;
  threshold_ = threshold;
  const bool low = threshold != 0 && *free < threshold;
  const bool was_low = low_.exchange(low, std::memory_order_acq_rel);
  if (low && !was_low) {
    log::Warn(
        "low disk: refusing writes (507) until free space is back over "
        "--min-free-bytes; reads go on",
        {{"data_dir", dir_},
         {"free_bytes", *free},
         {"min_free_bytes", threshold}});
  } else if (!low && was_low) {
    log::Info("disk space is back: writes resume",
              {{"data_dir", dir_},
               {"free_bytes", *free},
               {"min_free_bytes", threshold}});
  }
}

Status DiskSpaceGuard::Refusal() const {
  return Status::ResourceExhausted(
      "low disk: the data dir's file system has " +
      std::to_string(free_bytes()) + " bytes free, under --min-free-bytes " +
      std::to_string(threshold()) +
      "; writes are refused until space is freed (reads go on, nothing "
      "was written)");
}

}  // namespace counterd::storage
