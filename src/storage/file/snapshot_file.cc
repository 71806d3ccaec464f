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

  // The old snapshot stays open across the rename, so that its blocks are
  // freed in steps once the rename is durable, not all in one commit.
  auto old = fs.OpenToRelease(target);
  if (!old) return old.error();
  // Atomic: after a crash state.json is the old or the new file, in full.
  COUNTERD_RETURN_IF_ERROR(fs.Rename(temp, target));
  // Until the directory is fsynced the rename itself may be lost; only
  // after this may journal files covered by the new snapshot go.
  COUNTERD_RETURN_IF_ERROR(fs.SyncDir(dir));
  // No name reaches the old file any more, durably: its contents can go.
  return *old ? (*old)->FreeInSteps(kReleaseStepBytes) : Status::Ok();
}

constexpr std::size_t kWritePieceBytes = std::size_t{1} << 20;
// A large snapshot is written out to the disk as it goes (WriteBack after
// every piece, so about two pieces are ever dirty), not only by the Sync
// at the end: on ext4 (data=ordered) the journal's fdatasync commits the
// file system's transaction and waits for the dirty data blocks in it, the
// snapshot's included, so an unwritten snapshot of hundreds of MiB would
// hold one acknowledgement up for as long as it takes to write them all.
// WriteBack rather than a Sync every few MiB (what this did before): each
// Sync is a file system commit and a device cache flush of its own, which
// the journal's fdatasyncs queued behind (p99 of increments during a
// compaction of 10^7 counters: docs/BENCHMARKS.md).
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
    for (;;) {
      Result<std::string> piece = ReadPieceNow(document, kWritePieceBytes);
      if (!piece) return piece.error();
      if (piece->empty()) return Status::Ok();
      COUNTERD_RETURN_IF_ERROR(file.Append(*piece));
      bytes += piece->size();
      // Durability is unchanged: a crash before the Sync and rename below
      // leaves a partial state.json.tmp, deleted at the next start like
      // any other (state.json is untouched). A failure here fails the
      // compaction like a failed Sync.
      COUNTERD_RETURN_IF_ERROR(file.WriteBack());
    }
  };
  COUNTERD_RETURN_IF_ERROR(ReplaceWith(fs, dir, write_pieces));
  return bytes;
}

}  // namespace counterd::storage
