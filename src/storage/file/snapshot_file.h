// ReplaceSnapshotAtomically: the one place state.json is written.
#ifndef COUNTERD_STORAGE_FILE_SNAPSHOT_FILE_H_
#define COUNTERD_STORAGE_FILE_SNAPSHOT_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "counterd/core/status.h"
#include "counterd/platform/file_system.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

inline constexpr std::string_view kSnapshotFileName = "state.json";
// Files that lose their name (the old snapshot, covered journals) are
// freed this many bytes a commit (FileSystem::OpenToRelease).
inline constexpr std::uint64_t kReleaseStepBytes = std::uint64_t{8} << 20;
inline constexpr std::string_view kSnapshotTempFileName = "state.json.tmp";

// Replaces |dir|/state.json with |contents| so that after a crash at any
// point the file holds either the old or the new contents in full
// (Invariant 3): write temp, fsync, close, rename, fsync(dir).
Status ReplaceSnapshotAtomically(platform::FileSystem& fs,
                                 const std::string& dir,
                                 std::string_view contents);
// The same with the document read piece by piece from |document| (about a
// MiB at a time, so a snapshot of any size is written in bounded memory);
// the bytes written. REQUIRES: |document| answers before Next returns (the
// file backend's; see ReadPieceNow).
Result<std::uint64_t> ReplaceSnapshotAtomically(platform::FileSystem& fs,
                                                const std::string& dir,
                                                SnapshotReader& document);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_SNAPSHOT_FILE_H_
