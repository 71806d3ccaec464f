// Recover: rebuilds the store's state from a data dir at start-up: loads the
// snapshot, replays the journal after it, cuts a torn tail, removes stale
// temp files and journal files a durable snapshot covers. Refuses (kDataLoss,
// naming file and byte offset) any other damage; never resets to empty.
#ifndef COUNTERD_STORAGE_FILE_RECOVERY_H_
#define COUNTERD_STORAGE_FILE_RECOVERY_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "counterd/core/result.h"
#include "counterd/platform/file_system.h"
#include "counterd/storage/file_repository.h"
#include "store_state.h"

namespace counterd::storage {

struct RecoveredStore {
  explicit RecoveredStore(StoreState s) : state(std::move(s)) {}

  StoreState state;
  std::uint64_t last_seq = 0;
  // The journal file to append to, and whether it must be created (a
  // version-2 file of that name that holds no record is created anew).
  std::string journal_path;
  bool journal_exists = false;
  std::uint64_t snapshot_bytes = 0;
  std::string torn_file;  // the file a torn tail was cut from, if any
  RecoveryInfo info;
};

// REQUIRES: the caller holds the data dir's lock.
Result<RecoveredStore> Recover(platform::FileSystem& fs, const std::string& dir,
                               std::chrono::milliseconds idempotency_retention,
                               std::chrono::system_clock::time_point now);

// Read-only check of a data dir (counterd check): the same rules as Recover
// but nothing is changed; a torn tail is reported in RecoveryInfo.
Result<RecoveryInfo> VerifyDataDir(platform::FileSystem& fs,
                                   const std::string& dir);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_RECOVERY_H_
