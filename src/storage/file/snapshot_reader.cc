// NewSnapshotReader: the format-2 snapshot document of a store, encoded a
// piece at a time from pages of its contents with the same SnapshotEncoder
// that writes state.json, so GET /admin/snapshot streams exactly those
// bytes while holding one page and one piece.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "counterd/storage/snapshot_document.h"
#include "snapshot_codec.h"

namespace counterd::storage {
namespace {

// Counters and records per page asked of the source: small enough that a
// backend holds its lock briefly per page, large enough that a piece of
// ~60 KiB takes a page or two.
constexpr std::size_t kPageItems = 512;

class PagedReader final : public SnapshotReader {
 public:
  PagedReader(std::uint64_t seq, std::unique_ptr<SnapshotPages> pages)
      : pages_(std::move(pages)), encoder_(seq) {}

  std::string Next(std::size_t size_hint) override {
    while (stage_ != Stage::kFinished && encoder_.buffer().size() < size_hint) {
      EncodeOne();
    }
    return encoder_.TakeBuffered();
  }

 private:
  enum class Stage : std::uint8_t { kCounters, kRecords, kFinished };

  // Encodes the next counter or record of the page at hand, or the section
  // break or the end after the last of its kind, or else takes the next
  // page: a piece is never more than one record past its size hint.
  void EncodeOne() {
    if (stage_ == Stage::kCounters) {
      if (next_ < counters_.items.size()) {
        encoder_.AddCounter(counters_.items[next_++]);
      } else if (counters_.last) {
        counters_ = {};
        encoder_.BeginIdempotency();
        stage_ = Stage::kRecords;
      } else {
        counters_ = pages_->NextCounters(kPageItems);
        next_ = 0;
      }
      return;
    }
    if (next_ < records_.items.size()) {
      encoder_.AddIdempotency(records_.items[next_++]);
    } else if (records_.last) {
      encoder_.Finish();
      stage_ = Stage::kFinished;
      pages_.reset();  // a backend's cursor closes as soon as it is read
    } else {
      records_ = pages_->NextRecords(kPageItems);
      next_ = 0;
    }
  }

  std::unique_ptr<SnapshotPages> pages_;
  SnapshotEncoder encoder_;
  Stage stage_ = Stage::kCounters;
  SnapshotPage<domain::Counter> counters_;           // the page at hand
  SnapshotPage<domain::IdempotencyRecord> records_;  // (one or the other)
  std::size_t next_ = 0;                             // its next item
};

// Pages of a copy.
class ContentsPages final : public SnapshotPages {
 public:
  explicit ContentsPages(SnapshotContents contents)
      : contents_(std::move(contents)) {}

  SnapshotPage<domain::Counter> NextCounters(std::size_t max) override {
    return Take(contents_.counters, next_counter_, max);
  }
  SnapshotPage<domain::IdempotencyRecord> NextRecords(
      std::size_t max) override {
    return Take(contents_.idempotency, next_record_, max);
  }

 private:
  template <typename T>
  static SnapshotPage<T> Take(const std::vector<T>& all, std::size_t& next,
                              std::size_t max) {
    SnapshotPage<T> page;
    const std::size_t end = std::min(all.size(), next + max);
    page.items.assign(all.begin() + static_cast<std::ptrdiff_t>(next),
                      all.begin() + static_cast<std::ptrdiff_t>(end));
    next = end;
    page.last = next == all.size();
    return page;
  }

  const SnapshotContents contents_;
  std::size_t next_counter_ = 0;
  std::size_t next_record_ = 0;
};

}  // namespace

std::unique_ptr<SnapshotReader> NewSnapshotReader(
    std::uint64_t seq, std::unique_ptr<SnapshotPages> pages) {
  return std::make_unique<PagedReader>(seq, std::move(pages));
}

std::unique_ptr<SnapshotReader> NewSnapshotReader(SnapshotContents contents) {
  const std::uint64_t seq = contents.summary.seq;
  return NewSnapshotReader(
      seq, std::make_unique<ContentsPages>(std::move(contents)));
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
