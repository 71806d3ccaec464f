#include "restore.h"

#include <utility>
#include <vector>

#include "journal.h"
#include "snapshot_codec.h"
#include "snapshot_file.h"

namespace counterd::storage {
namespace {

// The files of a store (what recovery reads or cleans up). Anything else in
// the data dir — LOCK, a volume's lost+found, an operator's notes — is not
// the store's and is left alone.
bool IsStoreFile(const std::string& name) {
  std::uint64_t first_seq = 0;
  return name == kSnapshotFileName || name == kSnapshotTempFileName ||
         name == kRestoreMarkerFileName ||
         ParseJournalFileName(name, first_seq);
}

std::string ParentOf(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<SnapshotSummary> SummarizeSnapshot(std::string_view document,
                                          std::string_view source) {
  auto snapshot = DecodeSnapshot(document, source);
  if (!snapshot) return snapshot.error();
  SnapshotSummary summary;
  summary.format = snapshot->format;
  summary.seq = snapshot->last_seq;
  summary.counters = snapshot->counters.size();
  summary.idempotency_records = snapshot->idempotency.size();
  return summary;
}

// The steps, and what a crash (power loss) after each leaves:
//  1. Verify the document (decode it whole). Nothing written.
//  2. Create the data dir if absent (mkdir -p, then fsync its parent). An
//     empty dir: starts as an empty store, as before the restore began.
//     An existing dir is never chmod'ed, chown'ed or utime'd: on a volume
//     the kubelet prepared (root-owned, group fsGroup, setgid) only
//     creating, renaming and removing entries inside it is allowed.
//  3. Lock it (LOCK, as a running counterd does) and look for store files:
//     any present and no |force| → kFailedPrecondition, nothing changed.
//  4. Write RESTORING, fsync it and the dir. From here on counterd (and
//     counterd check) refuses the dir, naming the interrupted restore.
//  5. Remove the old store files, fsync the dir. Refused, as in 4.
//  6. Write state.json atomically (temp, fsync, rename, fsync dir:
//     Invariant 3). Refused, as in 4: state.json may be whole, but the
//     marker says the restore did not finish.
//  7. Remove RESTORING, fsync the dir: the restored store, which starts
//     at seq |last_seq| with a new journal after it.
// So an interrupted restore never starts as a half-restored store; running
// counterd restore --force again completes it.
Result<SnapshotSummary> RestoreDataDir(platform::FileSystem& fs,
                                       std::string_view document,
                                       std::string_view source,
                                       const std::string& data_dir,
                                       bool force) {
  auto summary = SummarizeSnapshot(document, source);  // step 1
  if (!summary) return summary.error();

  auto existed = fs.FileExists(data_dir);  // step 2
  if (!existed) return existed.error();
  COUNTERD_RETURN_IF_ERROR(fs.CreateDir(data_dir));
  if (!*existed) COUNTERD_RETURN_IF_ERROR(fs.SyncDir(ParentOf(data_dir)));

  auto lock = fs.LockFile(data_dir + "/LOCK");  // step 3
  if (!lock) return lock.error().WithContext("data dir " + data_dir);
  auto names = fs.ListDir(data_dir);
  if (!names) return names.error();
  std::vector<std::string> old;
  for (const std::string& name : *names) {
    if (IsStoreFile(name)) old.push_back(name);
  }
  if (!old.empty() && !force) {
    std::string list;
    for (const std::string& name : old) {
      list += (list.empty() ? "" : ", ") + name;
    }
    return Status::AlreadyExists(
        "data dir " + data_dir + " is not empty (it holds " + list +
        "); restore replaces a store only with --force");
  }

  const std::string marker =
      data_dir + "/" + std::string(kRestoreMarkerFileName);
  {  // step 4
    auto file = fs.NewWritableFile(marker);
    if (!file) return file.error();
    COUNTERD_RETURN_IF_ERROR((*file)->Append(
        "counterd restore is replacing this data dir; if it is not running, "
        "it was interrupted: run counterd restore --force again\n"));
    COUNTERD_RETURN_IF_ERROR((*file)->Sync());
    COUNTERD_RETURN_IF_ERROR((*file)->Close());
    COUNTERD_RETURN_IF_ERROR(fs.SyncDir(data_dir));
  }
  bool removed = false;  // step 5
  for (const std::string& name : old) {
    if (name == kRestoreMarkerFileName) continue;
    std::string path = data_dir;
    path += '/';
    path += name;
    COUNTERD_RETURN_IF_ERROR(fs.RemoveFile(path));
    removed = true;
  }
  if (removed) COUNTERD_RETURN_IF_ERROR(fs.SyncDir(data_dir));
  // Step 6.
  COUNTERD_RETURN_IF_ERROR(ReplaceSnapshotAtomically(fs, data_dir, document));
  COUNTERD_RETURN_IF_ERROR(fs.RemoveFile(marker));  // step 7
  COUNTERD_RETURN_IF_ERROR(fs.SyncDir(data_dir));
  return summary;
}

Result<SnapshotSummary> FileRepository::Restore(platform::FileSystem& fs,
                                                std::string_view document,
                                                std::string_view source,
                                                const std::string& data_dir,
                                                bool force) {
  return RestoreDataDir(fs, document, source, data_dir, force);
}

Result<SnapshotContents> FileRepository::ReadSnapshot(std::string_view document,
                                                      std::string_view source) {
  auto snapshot = DecodeSnapshot(document, source);
  if (!snapshot) return snapshot.error();
  SnapshotContents contents;
  contents.summary.format = snapshot->format;
  contents.summary.seq = snapshot->last_seq;
  contents.summary.counters = snapshot->counters.size();
  contents.summary.idempotency_records = snapshot->idempotency.size();
  contents.counters = std::move(snapshot->counters);
  contents.idempotency = std::move(snapshot->idempotency);
  return contents;
}

Result<SnapshotSummary> FileRepository::VerifySnapshot(
    std::string_view document, std::string_view source) {
  return SummarizeSnapshot(document, source);
}

}  // namespace counterd::storage
