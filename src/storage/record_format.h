// The journal record format of docs/storage-format.md: encoding and decoding
// of record headers and effect payloads. Pure functions; thread-safe.
#ifndef COUNTERD_STORAGE_RECORD_FORMAT_H_
#define COUNTERD_STORAGE_RECORD_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/storage/records.h"

namespace counterd::storage {

inline constexpr std::size_t kRecordHeaderSize = 16;  // crc, length, seq
inline constexpr std::uint32_t kMaxRecordPayload = 64u << 20;

struct RecordHeader {
  std::uint32_t crc = 0;
  std::uint32_t length = 0;
  std::uint64_t seq = 0;
};

// Appends the full record (header + payload) for |effects| to |out|.
void EncodeRecord(std::uint64_t seq, const std::vector<Effect>& effects,
                  std::string& out);

// REQUIRES: bytes.size() >= kRecordHeaderSize.
RecordHeader DecodeHeader(std::string_view bytes);

// The CRC a record with this header and payload must carry.
std::uint32_t RecordChecksum(std::string_view header_and_payload);

// Returns kDataLoss describing what is wrong if |payload| is not a valid
// effect list.
Result<std::vector<Effect>> DecodePayload(std::string_view payload);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_RECORD_FORMAT_H_
