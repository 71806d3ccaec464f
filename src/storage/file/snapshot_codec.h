// The snapshot document (state.json) of docs/storage-format.md: encoding in
// version 2, piece by piece so a large store can be written in bounded
// memory, and checked decoding of versions 1 and 2. One of the two files
// allowed to include nlohmann/json. Pure functions and a value-type
// encoder; thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_SNAPSHOT_CODEC_H_
#define COUNTERD_STORAGE_FILE_SNAPSHOT_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"

namespace counterd::storage {

inline constexpr int kSnapshotFormat = 2;

struct SnapshotData {
  int format = kSnapshotFormat;  // of the document it was decoded from
  std::uint64_t last_seq = 0;
  std::vector<domain::Counter> counters;               // sorted by name
  std::vector<domain::IdempotencyRecord> idempotency;  // oldest first
};

// Writes a version-2 snapshot in order: the header, every counter (sorted
// by name), every idempotency record, then Finish. Bytes accumulate in
// buffer(); a streaming caller may take them (TakeBuffered) at any point,
// since the checksum is kept as they go.
class SnapshotEncoder {
 public:
  explicit SnapshotEncoder(std::uint64_t last_seq);

  void AddCounter(const domain::Counter& counter);
  // Ends the counters; call once, after the last AddCounter.
  void BeginIdempotency();
  void AddIdempotency(const domain::IdempotencyRecord& record);
  // Ends the document (the crc32c line). REQUIRES: BeginIdempotency called.
  void Finish();

  const std::string& buffer() const { return buffer_; }
  // Moves the bytes encoded so far out (their checksum is kept).
  std::string TakeBuffered();
  std::uint64_t bytes_total() const { return bytes_taken_ + buffer_.size(); }

 private:
  void Checksum();  // folds buffer_[crc_done_..] into crc_

  std::string buffer_;
  std::uint32_t crc_ = 0;
  std::size_t crc_done_ = 0;  // bytes of buffer_ already in crc_
  std::uint64_t bytes_taken_ = 0;
  bool first_ = true;
};

std::string EncodeSnapshot(const SnapshotData& snapshot);

// What the first line of a snapshot says.
struct SnapshotHeader {
  int format = kSnapshotFormat;
  std::uint64_t last_seq = 0;
};

// Takes a snapshot's contents one element at a time, in document order, as
// DecodeSnapshotInto checks them: a large store loads without a second
// copy of every counter.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  // Each counter, sorted by name (checked before the call).
  virtual void OnCounter(const domain::Counter& counter) = 0;
  virtual void OnIdempotency(domain::IdempotencyRecord&& record) = 0;
};

// Returns kDataLoss naming |file| and the byte offset of the problem for an
// empty, truncated, unparseable, checksum-failing or ill-formed document,
// or one of a format this counterd does not read.
Result<SnapshotData> DecodeSnapshot(std::string_view data,
                                    std::string_view file);
// The same checks, handing the contents to |sink| as they are read. The
// checksum is checked first, so a damaged document gives |sink| nothing;
// an ill-formed one (a checksum that matches bytes the codec rejects, as
// a hand-edited file may) stops part of the way, and the caller discards
// what |sink| took.
Result<SnapshotHeader> DecodeSnapshotInto(std::string_view data,
                                          std::string_view file,
                                          SnapshotSink& sink);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_SNAPSHOT_CODEC_H_
