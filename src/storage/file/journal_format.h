// The journal's byte format, version 2 (docs/storage-format.md): the file
// header, the record frame, and the effect payloads. Version-1 payloads are
// decoded by legacy_format.h. Pure functions; thread-safe.
#ifndef COUNTERD_STORAGE_FILE_JOURNAL_FORMAT_H_
#define COUNTERD_STORAGE_FILE_JOURNAL_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "effects.h"

namespace counterd::storage {

inline constexpr std::string_view kJournalMagic = "CNTRDJNL";
inline constexpr std::uint32_t kJournalFormat = 2;
inline constexpr std::size_t kJournalHeaderSize = 24;

inline constexpr std::size_t kRecordHeaderSize = 16;  // crc, length, seq
inline constexpr std::uint32_t kMaxRecordPayload = 64u << 20;

// The 24-byte header a version-2 journal file starts with.
std::string EncodeJournalHeader(std::uint64_t first_seq);

struct JournalHeader {
  std::uint32_t version = 0;
  std::uint64_t first_seq = 0;
};
// REQUIRES: bytes.size() >= kJournalHeaderSize and starts with the magic.
// kDataLoss (without file context) for a bad CRC.
Result<JournalHeader> DecodeJournalHeader(std::string_view bytes);

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
// version-2 effect list.
Result<std::vector<Effect>> DecodePayload(std::string_view payload);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_JOURNAL_FORMAT_H_
