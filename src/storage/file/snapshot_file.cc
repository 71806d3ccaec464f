#include "snapshot_file.h"

#include <cstddef>
#include <memory>

namespace counterd::storage {
namespace {

// Appends what |write| gives to a new temp file, then makes it state.json.
template <typename WriteContents>
Status ReplaceWith(platform::FileSystem& fs, const std::string& dir,
                   WriteContents write) {
  const std::string temp = dir + "/" + std::string(kSnapshotTempFileName);
  const std::string target = dir + "/" + std::string(kSnapshotFileName);

  // Crash from here until the rename: state.json is untouched; a stale
  // state.json.tmp is deleted at the next start.
  auto file = fs.NewWritableFile(temp);
  if (!file) return file.error();
  COUNTERD_RETURN_IF_ERROR(write(**file));
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

constexpr std::size_t kWritePieceBytes = std::size_t{1} << 20;

}  // namespace

Status ReplaceSnapshotAtomically(platform::FileSystem& fs,
                                 const std::string& dir,
                                 std::string_view contents) {
  return ReplaceWith(fs, dir, [contents](platform::WritableFile& file) {
    return file.Append(contents);
  });
}

Result<std::uint64_t> ReplaceSnapshotAtomically(platform::FileSystem& fs,
                                                const std::string& dir,
                                                SnapshotReader& document) {
  std::uint64_t bytes = 0;
  const auto write_pieces = [&](platform::WritableFile& file) {
    for (std::string piece = document.Next(kWritePieceBytes); !piece.empty();
         piece = document.Next(kWritePieceBytes)) {
      COUNTERD_RETURN_IF_ERROR(file.Append(piece));
      bytes += piece.size();
    }
    return Status::Ok();
  };
  COUNTERD_RETURN_IF_ERROR(ReplaceWith(fs, dir, write_pieces));
  return bytes;
}

}  // namespace counterd::storage
