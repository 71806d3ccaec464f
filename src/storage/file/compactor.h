// Compactor: writes snapshots on a thread of its own, so commits go on into
// the new journal while a snapshot is serialised and written; then deletes
// the journal files the snapshot covers (Invariants 3 to 5). A failure
// shuts the FailureLatch (Invariant 7).
//
// Thread-safety: Start, Wait and WriteNow are called by the holder of the
// committer's role (one thread at a time); the counters are atomics.
#ifndef COUNTERD_STORAGE_FILE_COMPACTOR_H_
#define COUNTERD_STORAGE_FILE_COMPACTOR_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "counterd/platform/file_system.h"
#include "counterd/storage/counter_repository.h"
#include "failure_latch.h"
#include "snapshot_codec.h"

namespace counterd::storage {

class Compactor {
 public:
  // |fs| and |latch| must outlive the Compactor.
  Compactor(platform::FileSystem& fs, std::string data_dir, FailureLatch& latch,
            std::uint64_t snapshot_bytes_at_start)
      : fs_(fs),
        dir_(std::move(data_dir)),
        latch_(latch),
        snapshot_bytes_(snapshot_bytes_at_start) {}
  ~Compactor() { Wait(); }
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  bool running() const { return running_.load(std::memory_order_acquire); }
  // Writes |snapshot| on the compactor thread, reading its document a
  // piece at a time (the file backend's is a cursor of the store, so
  // commits go on while it is read). REQUIRES: !running().
  void Start(SnapshotImage snapshot);
  // Waits for the snapshot in progress, if any.
  void Wait();
  // Writes |snapshot| on this thread; the latch's refusal if it failed.
  Status WriteNow(SnapshotImage snapshot);

  std::uint64_t compactions() const { return compactions_.load(); }
  std::uint64_t snapshot_bytes() const { return snapshot_bytes_.load(); }

 private:
  void Write(SnapshotImage& snapshot);
  // Deletes the journals a durable snapshot up to |seq| covers.
  Status RemoveCoveredJournals(std::uint64_t seq);

  platform::FileSystem& fs_;
  const std::string dir_;
  FailureLatch& latch_;
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> compactions_{0};
  std::atomic<std::uint64_t> snapshot_bytes_;
  std::jthread thread_;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_COMPACTOR_H_
