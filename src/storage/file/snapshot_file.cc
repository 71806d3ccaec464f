#include "snapshot_file.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "counterd/storage/snapshot_document.h"

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
// A large snapshot is synced every this many bytes as it is written, not
// only at the end: on ext4 (data=ordered) the journal's fdatasync commits
// the file system's transaction and waits for every dirty data block in it,
// the snapshot's included, so an unsynced snapshot of hundreds of MiB would
// hold one acknowledgement up for as long as it takes to write them all.
// Synced as it goes, a commit waits for a few MiB at most. (Each sync's
// failure fails the compaction like the last one's: never retried.)
constexpr std::uint64_t kSyncEveryBytes = std::uint64_t{4} << 20;

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
    std::uint64_t unsynced = 0;
    for (;;) {
      Result<std::string> piece = ReadPieceNow(document, kWritePieceBytes);
      if (!piece) return piece.error();
      if (piece->empty()) return Status::Ok();
      COUNTERD_RETURN_IF_ERROR(file.Append(*piece));
      bytes += piece->size();
      unsynced += piece->size();
      if (unsynced >= kSyncEveryBytes) {
        // A crash after this leaves a longer state.json.tmp, deleted at
        // the next start like any other (state.json is untouched).
        COUNTERD_RETURN_IF_ERROR(file.Sync());
        unsynced = 0;
      }
    }
  };
  COUNTERD_RETURN_IF_ERROR(ReplaceWith(fs, dir, write_pieces));
  return bytes;
}

}  // namespace counterd::storage
