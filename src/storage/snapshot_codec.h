// The snapshot document (state.json) of docs/storage-format.md: encoding and
// checked decoding. One of the two files allowed to include nlohmann/json.
// Pure functions; thread-safe.
#ifndef COUNTERD_STORAGE_SNAPSHOT_CODEC_H_
#define COUNTERD_STORAGE_SNAPSHOT_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/storage/records.h"

namespace counterd::storage {

struct SnapshotData {
  std::uint64_t last_seq = 0;
  std::vector<domain::Counter> counters;       // sorted by name
  std::vector<IdempotencyRecord> idempotency;  // oldest first
};

std::string EncodeSnapshot(const SnapshotData& snapshot);

// Returns kDataLoss naming |file| and the byte offset of the problem for an
// empty, truncated, unparseable, checksum-failing or ill-formed document.
Result<SnapshotData> DecodeSnapshot(std::string_view data,
                                    std::string_view file);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_SNAPSHOT_CODEC_H_
