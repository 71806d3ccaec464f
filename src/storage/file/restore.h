// RestoreDataDir: builds a file backend's data dir from a snapshot document
// (counterd restore; the document GET /admin/snapshot streams). The steps,
// and what a crash after each leaves, are in restore.cc and
// docs/durability.md; in short, a restore cut short leaves a marker file
// that makes counterd refuse to start until a restore completes.
#ifndef COUNTERD_STORAGE_FILE_RESTORE_H_
#define COUNTERD_STORAGE_FILE_RESTORE_H_

#include <string>
#include <string_view>

#include "counterd/core/result.h"
#include "counterd/platform/file_system.h"
#include "counterd/storage/file_repository.h"

namespace counterd::storage {

// Present while a restore is replacing the data dir's contents: recovery
// (and counterd check) refuse a data dir holding it.
inline constexpr std::string_view kRestoreMarkerFileName = "RESTORING";

Result<SnapshotSummary> RestoreDataDir(platform::FileSystem& fs,
                                       std::string_view document,
                                       std::string_view source,
                                       const std::string& data_dir, bool force);

Result<SnapshotSummary> SummarizeSnapshot(std::string_view document,
                                          std::string_view source);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_RESTORE_H_
