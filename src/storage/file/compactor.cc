#include "compactor.h"

#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "counterd/core/log.h"
#include "counterd/platform/thread_priority.h"
#include "journal.h"
#include "snapshot_file.h"

namespace counterd::storage {
namespace {

constexpr int kCompactorNiceIncrement = 10;

}  // namespace

void Compactor::Start(SnapshotImage snapshot) {
  Wait();
  running_.store(true, std::memory_order_release);
  thread_ = std::jthread([this, snapshot = std::move(snapshot)]() mutable {
    // Background work: when the CPUs are busy, the threads answering
    // requests go first, and a compaction takes longer instead of a
    // request. Nice 10 still leaves it about a tenth of a contended CPU,
    // so it always finishes (the journal it replaces grows meanwhile).
    (void)platform::LowerThisThreadPriority(kCompactorNiceIncrement);
    Write(snapshot);
  });
}

void Compactor::Wait() {
  if (thread_.joinable()) thread_.join();
}

Status Compactor::WriteNow(SnapshotImage snapshot) {
  Wait();
  running_.store(true, std::memory_order_release);
  Write(snapshot);
  return latch_.failed() ? latch_.Refusal() : Status::Ok();
}

Status Compactor::RemoveCoveredJournals(std::uint64_t seq) {
  // Invariant 5: the snapshot covering seq <= |seq| is durable, so the
  // journal files holding only such records may go. A crash part-way
  // leaves files whose records recovery skips by seq (Invariant 4).
  auto names = fs_.ListDir(dir_);
  if (!names) return names.error();
  bool removed = false;
  // Held open across their removal, freed in steps once it is durable.
  std::vector<std::unique_ptr<platform::ReleasedFile>> released;
  for (const std::string& name : *names) {
    std::uint64_t first_seq = 0;
    if (!ParseJournalFileName(name, first_seq) || first_seq > seq) continue;
    const std::string path = dir_ + "/" + name;
    auto held = fs_.OpenToRelease(path);
    if (!held) return held.error();
    if (*held) released.push_back(std::move(*held));
    COUNTERD_RETURN_IF_ERROR(fs_.RemoveFile(path));
    removed = true;
  }
  if (removed) COUNTERD_RETURN_IF_ERROR(fs_.SyncDir(dir_));
  for (auto& file : released) {
    COUNTERD_RETURN_IF_ERROR(file->FreeInSteps(kReleaseStepBytes));
  }
  return Status::Ok();
}

void Compactor::Write(SnapshotImage& snapshot) {
  const auto started = std::chrono::steady_clock::now();
  Result<std::uint64_t> written =
      ReplaceSnapshotAtomically(fs_, dir_, *snapshot.document);
  // Read to its end or not, the document's hold on the store goes now.
  snapshot.document.reset();
  Status s = written.status();
  if (s.ok()) s = RemoveCoveredJournals(snapshot.seq);
  if (s.ok()) {
    compactions_.fetch_add(1);
    snapshot_bytes_ = *written;
    log::Info(
        "compaction: snapshot written",
        {{"seq", snapshot.seq},
         {"bytes", *written},
         {"took_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count()}});
  } else {
    latch_.Fail(s.WithContext("compaction"), /*answered=*/false);
  }
  running_.store(false, std::memory_order_release);
}

}  // namespace counterd::storage
