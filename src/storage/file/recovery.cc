#include "recovery.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "journal.h"
#include "journal_reader.h"
#include "restore.h"
#include "snapshot_codec.h"
#include "snapshot_file.h"

namespace counterd::storage {
namespace {

struct JournalFile {
  std::uint64_t first_seq;
  std::string name;
};

// Everything Recover and VerifyDataDir share: read, check and replay, with
// the changes to the directory left to the caller.
struct Scan {
  explicit Scan(StoreState state) : store(std::move(state)) {}

  RecoveredStore store;
  std::vector<JournalFile> obsolete;  // covered by the snapshot
  std::vector<JournalFile> live;      // to replay, in order
  std::uint64_t torn_offset = 0;      // valid bytes of the torn file
  bool stale_temp = false;
  // The newest file when its creation was cut short and it is not the one
  // to continue: it holds nothing and goes.
  std::optional<std::string> cut_short_file;
};

// What a data dir holds, by name, before anything is read.
struct DirListing {
  std::vector<JournalFile> journals;  // in seq order
  bool have_snapshot = false;
  bool stale_temp = false;
};

// Sorts the names in |dir|; refuses a store a restore did not finish.
Result<DirListing> ListDataDir(platform::FileSystem& fs,
                               const std::string& dir) {
  auto names = fs.ListDir(dir);
  if (!names) return names.error();
  DirListing listing;
  for (const std::string& name : *names) {
    std::uint64_t first_seq = 0;
    if (ParseJournalFileName(name, first_seq)) {
      listing.journals.push_back({first_seq, name});
    } else if (name == kSnapshotFileName) {
      listing.have_snapshot = true;
    } else if (name == kSnapshotTempFileName) {
      listing.stale_temp = true;
    } else if (name == kRestoreMarkerFileName) {
      std::string path = dir;
      path += '/';
      path += name;
      return Status::FailedPrecondition(
          path +
          ": a counterd restore into this data dir did not finish; run "
          "counterd restore --force again (refusing to start on a "
          "half-restored store)");
    }
  }
  std::sort(
      listing.journals.begin(), listing.journals.end(),
      [](const auto& a, const auto& b) { return a.first_seq < b.first_seq; });
  return listing;
}

// Loads the snapshot of |dir| into |out| (state, size, format) and prunes
// the idempotency records expired at |now_ms|; returns its last seq.
Result<std::uint64_t> LoadSnapshot(platform::FileSystem& fs,
                                   const std::string& dir, std::int64_t now_ms,
                                   RecoveredStore& out) {
  const std::string path = dir + "/" + std::string(kSnapshotFileName);
  auto data = fs.ReadFile(path);
  if (!data) return data.error();
  out.snapshot_bytes = data->size();
  // Straight into the state, without a decoded copy of every counter in
  // between (at ten million counters that copy was 560 MB). On an error
  // the half-loaded state is dropped with the rest of the recovery.
  struct IntoState final : SnapshotSink {
    explicit IntoState(StoreState& s) : state(s) {}
    void OnCounter(const domain::Counter& counter) override {
      state.LoadCounter(counter);
    }
    void OnIdempotency(domain::IdempotencyRecord&& record) override {
      state.LoadIdempotency(std::move(record));
    }
    StoreState& state;
  } sink(out.state);
  out.state.BeginLoad();
  auto header = DecodeSnapshotInto(*data, path, sink);
  if (!header) return header.error();
  out.info.snapshot_format = header->format;
  out.state.PruneIdempotency(now_ms);
  return header->last_seq;
}

// Sorts |journals| into scan.obsolete and scan.live, and refuses live ones
// that do not start right after the snapshot (which ends at
// |snapshot_seq|).
Status SplitJournals(const std::vector<JournalFile>& journals,
                     std::uint64_t snapshot_seq, bool have_snapshot,
                     const std::string& dir, Scan& scan) {
  // File i holds seqs [first_i, first_{i+1}); it is obsolete when the
  // snapshot covers all of them (Invariant 4). The newest file never is.
  for (std::size_t i = 0; i < journals.size(); ++i) {
    const bool covered = i + 1 < journals.size() &&
                         journals[i + 1].first_seq <= snapshot_seq + 1;
    (covered ? scan.obsolete : scan.live).push_back(journals[i]);
  }
  if (!scan.live.empty() && scan.live.front().first_seq > snapshot_seq + 1) {
    return Status::DataLoss(
        dir + "/" + scan.live.front().name +
        " at byte offset 0: journal starts at seq " +
        std::to_string(scan.live.front().first_seq) + " but " +
        (have_snapshot
             ? "the snapshot ends at seq " + std::to_string(snapshot_seq)
             : std::string("there is no snapshot (state.json missing)")) +
        "; refusing to start with records missing");
  }
  return Status::Ok();
}

// Applies the records of the journal at |path| (|file|) that follow
// out.last_seq to |out|, advancing out.last_seq; returns what the reader
// found. |is_last|: the newest file, whose tail may be torn.
Result<JournalScan> ReplayJournal(platform::FileSystem& fs,
                                  const std::string& path,
                                  const JournalFile& file, bool is_last,
                                  RecoveredStore& out) {
  std::uint64_t& last_seq = out.last_seq;
  // Each file must begin right after the previous one ended.
  if (file.first_seq > last_seq + 1) {
    return Status::DataLoss(path + " at byte offset 0: starts at seq " +
                            std::to_string(file.first_seq) + " after seq " +
                            std::to_string(last_seq) + " (records missing)");
  }
  auto data = fs.ReadFile(path);
  if (!data) return data.error();
  auto result = ReadJournal(
      *data, path, file.first_seq, is_last,
      [&](std::uint64_t seq, std::vector<Effect>&& effects) -> Status {
        if (seq <= last_seq) return Status::Ok();  // in the snapshot
        if (seq != last_seq + 1) {
          return Status::DataLoss("sequence gap after seq " +
                                  std::to_string(last_seq));
        }
        for (const Effect& e : effects) out.state.Apply(e);
        last_seq = seq;
        ++out.info.records_replayed;
        return Status::Ok();
      });
  if (!result) return result.error();
  if (result->records > 0 && (out.info.journal_format == 0 ||
                              result->format < out.info.journal_format)) {
    out.info.journal_format = result->format;
  }
  return result;
}

// Decides, from how the newest journal (|path|, |file|) ended, whether it
// is continued, has a torn tail to cut or is a creation cut short to
// remove. REQUIRES: every live journal replayed (scan.store.last_seq).
void NoteNewestJournal(const std::string& dir, const std::string& path,
                       const JournalFile& file, const JournalScan& result,
                       Scan& scan) {
  RecoveredStore& out = scan.store;
  const std::uint64_t last_seq = out.last_seq;
  // Append to the newest file only if its next record is the next seq;
  // otherwise (a file the snapshot already covers, or named oddly)
  // start journal-(last_seq+1), and the old one becomes obsolete.
  const std::uint64_t next_in_file =
      result.records > 0 ? result.last_seq + 1 : file.first_seq;
  out.journal_path = path;
  // Only a version-2 file with its header is continued: a version-1
  // file is never appended to (the upgrade starts a new one).
  out.journal_exists =
      next_in_file == last_seq + 1 && result.format == 2 && !result.header_torn;
  if (result.header_torn) {
    if (path != dir + "/" + JournalFileName(last_seq + 1)) {
      scan.cut_short_file = path;
    }
  } else if (result.torn_bytes > 0) {
    out.torn_file = path;
    out.info.torn_bytes_truncated = result.torn_bytes;
    scan.torn_offset = result.valid_bytes;
  }
}

Result<Scan> ScanDataDir(platform::FileSystem& fs, const std::string& dir,
                         std::chrono::milliseconds retention,
                         std::chrono::system_clock::time_point now) {
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          now.time_since_epoch())
          .count();
  Scan scan{StoreState(retention)};
  RecoveredStore& out = scan.store;

  auto listing = ListDataDir(fs, dir);
  if (!listing) return listing.error();
  scan.stale_temp = listing->stale_temp;

  std::uint64_t snapshot_seq = 0;
  if (listing->have_snapshot) {
    auto loaded = LoadSnapshot(fs, dir, now_ms, out);
    if (!loaded) return loaded.error();
    snapshot_seq = *loaded;
  }
  out.info.snapshot_seq = snapshot_seq;
  COUNTERD_RETURN_IF_ERROR(SplitJournals(listing->journals, snapshot_seq,
                                         listing->have_snapshot, dir, scan));

  out.last_seq = snapshot_seq;         // advanced by each record replayed
  bool last_record_in_newest = false;  // the newest file holds a record
  for (std::size_t i = 0; i < scan.live.size(); ++i) {
    const JournalFile& file = scan.live[i];
    const bool is_last = i + 1 == scan.live.size();
    const std::string path = dir + "/" + file.name;
    auto result = ReplayJournal(fs, path, file, is_last, out);
    if (!result) return result.error();
    if (!is_last && result->records > 0 &&
        result->last_seq + 1 != scan.live[i + 1].first_seq) {
      return Status::DataLoss(
          path + " at byte offset " + std::to_string(result->valid_bytes) +
          ": ends at seq " + std::to_string(result->last_seq) +
          " but the next journal starts at seq " +
          std::to_string(scan.live[i + 1].first_seq));
    }
    if (is_last) {
      last_record_in_newest = result->records > 0;
      NoteNewestJournal(dir, path, file, *result, scan);
    }
  }
  if (!out.journal_exists) {
    out.journal_path = dir + "/" + JournalFileName(out.last_seq + 1);
    // A file of that name is created anew only if it holds no record (a
    // creation cut short, or an empty version-1 file).
    if (!scan.live.empty() &&
        out.journal_path == dir + "/" + scan.live.back().name &&
        last_record_in_newest) {
      return Status::DataLoss(out.journal_path +
                              " at byte offset 0: cannot be continued");
    }
  }
  out.state.PruneIdempotency(now_ms);
  out.info.counters = out.state.counter_count();
  return scan;
}

}  // namespace

Result<RecoveredStore> Recover(platform::FileSystem& fs, const std::string& dir,
                               std::chrono::milliseconds idempotency_retention,
                               std::chrono::system_clock::time_point now) {
  auto scan = ScanDataDir(fs, dir, idempotency_retention, now);
  if (!scan) return scan.error();

  if (scan->stale_temp) {
    // A snapshot write that a crash interrupted before its rename.
    COUNTERD_RETURN_IF_ERROR(
        fs.RemoveFile(dir + "/" + std::string(kSnapshotTempFileName)));
  }
  if (scan->cut_short_file) {
    // Holds no record (its header never became durable).
    COUNTERD_RETURN_IF_ERROR(fs.RemoveFile(*scan->cut_short_file));
  }
  if (!scan->store.torn_file.empty()) {
    // Invariant 6: never acknowledged, so cutting it loses nothing.
    COUNTERD_RETURN_IF_ERROR(
        fs.TruncateFile(scan->store.torn_file, scan->torn_offset));
  }
  if (!scan->obsolete.empty()) {
    // The snapshot we read may have been renamed into place without the
    // directory fsync that makes it durable (a crash between steps 2 and 3
    // of the replace); make it durable before deleting what it covers
    // (Invariant 5).
    COUNTERD_RETURN_IF_ERROR(fs.SyncDir(dir));
    for (const auto& file : scan->obsolete) {
      COUNTERD_RETURN_IF_ERROR(fs.RemoveFile(dir + "/" + file.name));
    }
  }
  if (scan->stale_temp || scan->cut_short_file || !scan->obsolete.empty()) {
    COUNTERD_RETURN_IF_ERROR(fs.SyncDir(dir));
  }
  return std::move(scan->store);
}

Result<RecoveryInfo> VerifyDataDir(platform::FileSystem& fs,
                                   const std::string& dir) {
  // Retention does not matter for a check: nothing is written.
  auto scan = ScanDataDir(fs, dir, std::chrono::hours(24),
                          std::chrono::system_clock::now());
  if (!scan) return scan.error();
  return scan->store.info;
}

}  // namespace counterd::storage
