// NewSnapshotReader: the format-2 snapshot document of a copy of a store,
// encoded a piece at a time with the same SnapshotEncoder that writes
// state.json, so GET /admin/snapshot streams exactly those bytes.
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "counterd/storage/snapshot_document.h"
#include "snapshot_codec.h"

namespace counterd::storage {
namespace {

class ContentsReader final : public SnapshotReader {
 public:
  explicit ContentsReader(SnapshotContents contents)
      : contents_(std::move(contents)), encoder_(contents_.summary.seq) {}

  std::string Next(std::size_t size_hint) override {
    while (!finished_ && encoder_.buffer().size() < size_hint) EncodeOne();
    return encoder_.TakeBuffered();
  }

 private:
  // Encodes the next record, or the section break or end after the last.
  void EncodeOne() {
    if (next_counter_ < contents_.counters.size()) {
      encoder_.AddCounter(contents_.counters[next_counter_++]);
    } else if (!idempotency_begun_) {
      encoder_.BeginIdempotency();
      idempotency_begun_ = true;
    } else if (next_record_ < contents_.idempotency.size()) {
      encoder_.AddIdempotency(contents_.idempotency[next_record_++]);
    } else {
      encoder_.Finish();
      finished_ = true;
    }
  }

  const SnapshotContents contents_;
  SnapshotEncoder encoder_;
  std::size_t next_counter_ = 0;
  std::size_t next_record_ = 0;
  bool idempotency_begun_ = false;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<SnapshotReader> NewSnapshotReader(SnapshotContents contents) {
  return std::make_unique<ContentsReader>(std::move(contents));
}

std::string ReadWholeDocument(SnapshotReader& reader) {
  std::string out;
  for (std::string piece = reader.Next(std::size_t{1} << 20); !piece.empty();
       piece = reader.Next(std::size_t{1} << 20)) {
    out += piece;
  }
  return out;
}

}  // namespace counterd::storage
