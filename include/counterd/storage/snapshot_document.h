// The snapshot document (docs/storage-format.md, format 2) of a copy of a
// store, for GET /admin/snapshot: both backends hand their copy to this
// reader, so that the endpoint answers the same bytes whatever the
// backend, byte for byte what the file backend's state.json would hold.
#ifndef COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_
#define COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_

#include <memory>
#include <string>

#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

// The document of |contents|, encoded piece by piece as the reader is
// read (GET /admin/snapshot streams it). REQUIRES: contents.counters
// sorted by name (byte order), idempotency oldest first. last_seq is
// contents.summary.seq.
std::unique_ptr<SnapshotReader> NewSnapshotReader(SnapshotContents contents);

// Everything |reader| has left, as one string (tests, small documents).
std::string ReadWholeDocument(SnapshotReader& reader);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_
