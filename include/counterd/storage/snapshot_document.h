// The snapshot document (docs/storage-format.md, format 2) of a store, for
// GET /admin/snapshot: both backends hand their counters and records to
// this reader, so that the endpoint answers the same bytes whatever the
// backend, byte for byte what the file backend's state.json would hold.
#ifndef COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_
#define COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

// Part of a sequence, and whether it is the end of it. A page may be empty
// without being the last (what it spanned had all gone).
template <typename T>
struct SnapshotPage {
  std::vector<T> items;
  bool last = false;  // nothing follows
};

// Where a document's contents come from, a page at a time: every counter
// in name order (byte order), then every idempotency record, oldest first.
// A backend that pages through its store instead of copying it keeps the
// reader's memory at one page. One call at a time; each calls its |done|
// once, before returning or later on the backend's thread (as
// SnapshotReader::Next), with the page or why there is none.
class SnapshotPages {
 public:
  template <typename T>
  using PageHandler = std::function<void(Result<SnapshotPage<T>>)>;
  virtual ~SnapshotPages() = default;
  // The next counters, about |max| of them.
  virtual void NextCounters(std::size_t max,
                            PageHandler<domain::Counter> done) = 0;
  // Then the records, in the same way.
  virtual void NextRecords(std::size_t max,
                           PageHandler<domain::IdempotencyRecord> done) = 0;
};

// The document of the store as of commit |seq|, encoded piece by piece as
// the reader is read (GET /admin/snapshot streams it).
std::unique_ptr<SnapshotReader> NewSnapshotReader(
    std::uint64_t seq, std::unique_ptr<SnapshotPages> pages);
// The same over a copy (contents.summary.seq is the seq). REQUIRES:
// contents.counters sorted by name, idempotency oldest first.
std::unique_ptr<SnapshotReader> NewSnapshotReader(SnapshotContents contents);

// For a reader that answers before Next returns (the file backend's, or
// one over a copy): the next piece, or kInternal if it did not answer.
Result<std::string> ReadPieceNow(SnapshotReader& reader, std::size_t size_hint);
// Everything such a reader has left, as one string (tests).
Result<std::string> ReadWholeDocument(SnapshotReader& reader);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_
