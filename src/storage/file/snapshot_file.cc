#include "snapshot_file.h"

namespace counterd::storage {

Status ReplaceSnapshotAtomically(platform::FileSystem& fs,
                                 const std::string& dir,
                                 std::string_view contents) {
  const std::string temp = dir + "/" + std::string(kSnapshotTempFileName);
  const std::string target = dir + "/" + std::string(kSnapshotFileName);

  // Crash from here until the rename: state.json is untouched; a stale
  // state.json.tmp is deleted at the next start.
  auto file = fs.NewWritableFile(temp);
  if (!file) return file.error();
  COUNTERD_RETURN_IF_ERROR((*file)->Append(contents));
  // The data must be on disk before the rename can make it the snapshot;
  // otherwise a crash could leave a renamed but empty or partial file.
  COUNTERD_RETURN_IF_ERROR((*file)->Sync());
  COUNTERD_RETURN_IF_ERROR((*file)->Close());

  // Atomic: after a crash state.json is the old or the new file, in full.
  COUNTERD_RETURN_IF_ERROR(fs.Rename(temp, target));
  // Until the directory is fsynced the rename itself may be lost; only
  // after this may journal files covered by the new snapshot go.
  return fs.SyncDir(dir);
}

}  // namespace counterd::storage
