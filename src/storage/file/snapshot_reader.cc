// NewSnapshotReader: the format-2 snapshot document of a store, encoded a
// piece at a time from pages of its contents with the same SnapshotEncoder
// that writes state.json, so GET /admin/snapshot streams exactly those
// bytes while holding one page and one piece.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "counterd/storage/snapshot_document.h"
#include "snapshot_codec.h"

namespace counterd::storage {
namespace {

// Counters and records per page asked of the source: small enough that a
// backend holds its lock (or a database its cursor's fetch) briefly per
// page, large enough that a piece of ~60 KiB takes a page or two.
constexpr std::size_t kPageItems = 512;

// The encoding state. Shared with the page handlers in flight, so that a
// reader dropped while a page is on its way (a client gone) is freed only
// once the page has arrived.
class Encoding final : public std::enable_shared_from_this<Encoding> {
 public:
  Encoding(std::uint64_t seq, std::unique_ptr<SnapshotPages> pages)
      : pages_(std::move(pages)), encoder_(seq) {}

  void Next(std::size_t size_hint, SnapshotReader::PieceHandler done) {
    size_hint_ = size_hint;
    done_ = std::move(done);
    Pump();
  }

 private:
  enum class Stage : std::uint8_t { kCounters, kRecords, kFinished };

  // Encodes until the piece is big enough or the document is done, then
  // answers; returns early, to be called again by the page handler, when a
  // page has to come from a backend that answers later.
  void Pump() {
    while (!failed_ && stage_ != Stage::kFinished &&
           encoder_.buffer().size() < size_hint_) {
      if (EncodeOne()) continue;
      // Whoever of this thread and the page handler (on the backend's
      // thread, or on this one before RequestPage returns) gets to the
      // hand-off second goes on pumping: exactly one of them does.
      handoff_.store(Handoff::kRequested, std::memory_order_relaxed);
      RequestPage();
      if (handoff_.exchange(Handoff::kRequesterDone,
                            std::memory_order_acq_rel) != Handoff::kPageIn) {
        return;  // OnPage pumps on
      }
    }
    // A failure stays: every later Next answers it too.
    if (failed_) return Answer(*failed_);
    Answer(encoder_.TakeBuffered());
  }

  // Encodes the next counter or record of the page at hand, or the section
  // break or the end after the last of its kind: a piece is never more
  // than one record past its size hint. False when a page is needed.
  bool EncodeOne() {
    if (stage_ == Stage::kCounters) {
      if (next_ < counters_.items.size()) {
        encoder_.AddCounter(counters_.items[next_++]);
      } else if (counters_.last) {
        counters_ = {};
        next_ = 0;
        encoder_.BeginIdempotency();
        stage_ = Stage::kRecords;
      } else {
        return false;
      }
      return true;
    }
    if (next_ < records_.items.size()) {
      encoder_.AddIdempotency(records_.items[next_++]);
    } else if (records_.last) {
      encoder_.Finish();
      stage_ = Stage::kFinished;
      records_ = {};
      pages_.reset();  // a backend's cursor closes as soon as it is read
    } else {
      return false;
    }
    return true;
  }

  // Nothing of this object is touched after the request is made: the page
  // may be in, and pumping on, on another thread already.
  void RequestPage() {
    auto self = shared_from_this();
    if (stage_ == Stage::kCounters) {
      pages_->NextCounters(kPageItems,
                           [self](Result<SnapshotPage<domain::Counter>> page) {
                             self->OnPage(std::move(page), self->counters_);
                           });
    } else {
      pages_->NextRecords(
          kPageItems,
          [self](Result<SnapshotPage<domain::IdempotencyRecord>> page) {
            self->OnPage(std::move(page), self->records_);
          });
    }
  }

  template <typename T>
  void OnPage(Result<SnapshotPage<T>> page, SnapshotPage<T>& into) {
    if (page) {
      into = std::move(*page);
      next_ = 0;
    } else {
      failed_ = page.error();
    }
    // Published by the exchange (release) to the requester if it goes on;
    // if the requester is done, its state is seen here (acquire).
    if (handoff_.exchange(Handoff::kPageIn, std::memory_order_acq_rel) ==
        Handoff::kRequesterDone) {
      Pump();
    }
  }

  void Answer(Result<std::string> piece) {
    SnapshotReader::PieceHandler done = std::move(done_);
    done_ = nullptr;
    done(std::move(piece));
  }

  std::unique_ptr<SnapshotPages> pages_;
  SnapshotEncoder encoder_;
  Stage stage_ = Stage::kCounters;
  SnapshotPage<domain::Counter> counters_;           // the page at hand
  SnapshotPage<domain::IdempotencyRecord> records_;  // (one or the other)
  std::size_t next_ = 0;                             // its next item
  std::size_t size_hint_ = 0;
  SnapshotReader::PieceHandler done_;
  // The hand-off of one page request between the requester (Pump) and the
  // page handler, which may run on another thread at any time after the
  // request is made.
  enum class Handoff : std::uint8_t {
    kRequested,      // asked for; neither side is done
    kRequesterDone,  // RequestPage returned first: OnPage pumps on
    kPageIn,         // the page came first: the requester pumps on
  };
  std::atomic<Handoff> handoff_{Handoff::kRequested};
  std::optional<Status> failed_;
};

class PagedReader final : public SnapshotReader {
 public:
  PagedReader(std::uint64_t seq, std::unique_ptr<SnapshotPages> pages)
      : encoding_(std::make_shared<Encoding>(seq, std::move(pages))) {}

  void Next(std::size_t size_hint, PieceHandler done) override {
    encoding_->Next(size_hint, std::move(done));
  }

 private:
  std::shared_ptr<Encoding> encoding_;
};

// Pages of a copy, answered at once.
class ContentsPages final : public SnapshotPages {
 public:
  explicit ContentsPages(SnapshotContents contents)
      : contents_(std::move(contents)) {}

  void NextCounters(std::size_t max,
                    PageHandler<domain::Counter> done) override {
    done(Take(contents_.counters, next_counter_, max));
  }
  void NextRecords(std::size_t max,
                   PageHandler<domain::IdempotencyRecord> done) override {
    done(Take(contents_.idempotency, next_record_, max));
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

Result<std::string> ReadPieceNow(SnapshotReader& reader,
                                 std::size_t size_hint) {
  std::optional<Result<std::string>> piece;
  reader.Next(size_hint,
              [&piece](Result<std::string> got) { piece = std::move(got); });
  if (!piece) {
    return Status::Internal("snapshot reader did not answer at once");
  }
  return std::move(*piece);
}

Result<std::string> ReadWholeDocument(SnapshotReader& reader) {
  std::string out;
  for (;;) {
    Result<std::string> piece = ReadPieceNow(reader, std::size_t{1} << 20);
    if (!piece) return piece.error();
    if (piece->empty()) return out;
    out += *piece;
  }
}

}  // namespace counterd::storage
