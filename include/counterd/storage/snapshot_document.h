// The snapshot document (docs/storage-format.md, format 2) for backends
// other than the file backend, whose own state.json it is: a backend that
// read its state some other way (PostgreSQL) encodes it with this, so that
// GET /admin/snapshot answers the same bytes whatever the backend.
#ifndef COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_
#define COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_

#include <string>

#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

// REQUIRES: contents.counters sorted by name (byte order), idempotency
// oldest first. last_seq is contents.summary.seq.
std::string EncodeSnapshotDocument(const SnapshotContents& contents);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_SNAPSHOT_DOCUMENT_H_
