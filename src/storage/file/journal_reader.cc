#include "journal_reader.h"

#include <algorithm>
#include <optional>
#include <string>

#include "journal_format.h"
#include "legacy_format.h"

namespace counterd::storage {
namespace {

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(),
                     [](char c) { return c == '\0'; });
}

// True if an intact record carrying |seq| starts anywhere in |data| at or
// after |from|. Only the last append can be torn (each record is synced
// before the next is written), so damage that such a record follows is not
// a torn tail.
bool IntactRecordFollows(std::string_view data, std::uint64_t from,
                         std::uint64_t seq) {
  for (std::uint64_t at = from; at + kRecordHeaderSize <= data.size(); ++at) {
    const std::string_view rest = data.substr(static_cast<std::size_t>(at));
    const RecordHeader header = DecodeHeader(rest);
    if (header.seq != seq || header.length == 0 ||
        header.length > kMaxRecordPayload ||
        kRecordHeaderSize + header.length > rest.size()) {
      continue;
    }
    if (RecordChecksum(rest.substr(0, kRecordHeaderSize + header.length)) ==
        header.crc) {
      return true;
    }
  }
  return false;
}

Status Damage(std::string_view file, std::uint64_t offset,
              std::string_view what) {
  return Status::DataLoss(std::string(file) + " at byte offset " +
                          std::to_string(offset) + ": " + std::string(what));
}

// Why the record at the start of |rest| (whose header is |header|) cannot
// be read, if it cannot: what is wrong and how far into |rest| the bytes it
// claims reach (all of |rest| when its length cannot be trusted).
struct BadRecord {
  std::uint64_t end = 0;
  std::string what;
};

std::optional<BadRecord> CheckRecordFrame(std::string_view rest,
                                          const RecordHeader& header) {
  if (header.length == 0 && header.crc == 0 && header.seq == 0) {
    // Zero-filled space: only a tail (a size extended, never written).
    return BadRecord{rest.size(), "zero-filled record header"};
  }
  if (header.length == 0 || header.length > kMaxRecordPayload) {
    return BadRecord{
        rest.size(),
        "record length " + std::to_string(header.length) + " out of range"};
  }
  const std::uint64_t record_size = kRecordHeaderSize + header.length;
  if (record_size > rest.size()) {
    return BadRecord{rest.size(), "record runs past the end of the file"};
  }
  if (RecordChecksum(rest.substr(0, static_cast<std::size_t>(record_size))) !=
      header.crc) {
    return BadRecord{record_size, "checksum mismatch"};
  }
  return std::nullopt;
}

// Reads the file header, if any: sets scan.format and scan.header_torn and
// returns where the records begin.
Result<std::uint64_t> ReadFileHeader(std::string_view data,
                                     std::string_view file,
                                     std::uint64_t first_seq, bool is_last_file,
                                     JournalScan& scan) {
  // A file whose creation a crash cut short: empty, shorter than a header,
  // or never written back (zeros). Only the newest file can be one, and it
  // holds no record: the header is synced before any record is written.
  const bool cut_short =
      data.size() < kJournalHeaderSize
          ? kJournalMagic.starts_with(data.substr(0, kJournalMagic.size())) ||
                AllZero(data)
          : AllZero(data);
  if (cut_short && (is_last_file || data.empty())) {
    scan.header_torn = true;
    scan.torn_bytes = data.size();
    return data.size();
  }
  if (!data.starts_with(kJournalMagic)) {
    scan.format = 1;  // counterd 0.1: records from byte 0
    return 0;
  }
  if (data.size() < kJournalHeaderSize) {
    return Damage(file, 0, "incomplete journal file header");
  }
  Result<JournalHeader> header = DecodeJournalHeader(data);
  if (!header) {
    // Torn while being written (nothing can follow it) or damaged.
    if (is_last_file && data.size() == kJournalHeaderSize) {
      scan.header_torn = true;
      scan.torn_bytes = data.size();
      return data.size();
    }
    return Damage(file, 0, header.error().message());
  }
  if (header->version > kJournalFormat) {
    return Damage(file, 0,
                  "journal format " + std::to_string(header->version) +
                      " is newer than this counterd reads (1 and 2); "
                      "refusing to guess — run a newer counterd");
  }
  if (header->version != kJournalFormat) {
    return Damage(file, 0,
                  "journal file header declares unknown format " +
                      std::to_string(header->version));
  }
  if (header->first_seq != first_seq) {
    return Damage(file, 0,
                  "journal file header says first seq " +
                      std::to_string(header->first_seq) +
                      " but the file name says " + std::to_string(first_seq));
  }
  return kJournalHeaderSize;
}

}  // namespace

Result<JournalScan> ReadJournal(std::string_view data, std::string_view file,
                                std::uint64_t first_seq, bool is_last_file,
                                const RecordVisitor& visit) {
  JournalScan scan;
  Result<std::uint64_t> records_at =
      ReadFileHeader(data, file, first_seq, is_last_file, scan);
  if (!records_at) return records_at.error();
  if (scan.header_torn) return scan;
  std::uint64_t offset = *records_at;
  scan.valid_bytes = offset;
  std::uint64_t expected_seq = first_seq;
  // A record that cannot be read: a torn tail if it is the last thing in
  // the newest file (only zeros, or no intact next record, follow), else
  // damage. A power loss while an unacknowledged record was written back
  // can leave zeros anywhere in it, its length field included, so what
  // follows the bad length is not always zeros.
  const auto unreadable = [&](std::uint64_t record_end,
                              std::string_view what) -> Result<JournalScan> {
    const bool tail =
        record_end >= data.size() ||
        AllZero(data.substr(static_cast<std::size_t>(record_end))) ||
        !IntactRecordFollows(data, offset + 1, expected_seq + 1);
    if (is_last_file && tail) {
      scan.torn_bytes = data.size() - offset;
      return scan;
    }
    return Damage(file, offset, what);
  };

  while (offset < data.size()) {
    const std::string_view rest = data.substr(static_cast<std::size_t>(offset));
    if (rest.size() < kRecordHeaderSize) {
      return unreadable(data.size(), "incomplete record header");
    }
    const RecordHeader header = DecodeHeader(rest);
    if (std::optional<BadRecord> bad = CheckRecordFrame(rest, header)) {
      return unreadable(offset + bad->end, bad->what);
    }
    const std::uint64_t record_size = kRecordHeaderSize + header.length;
    const std::string_view record =
        rest.substr(0, static_cast<std::size_t>(record_size));
    if (header.seq != expected_seq) {
      return Damage(file, offset,
                    "sequence number " + std::to_string(header.seq) +
                        " where " + std::to_string(expected_seq) +
                        " was expected");
    }
    auto effects = scan.format == 1
                       ? DecodeV1Payload(record.substr(kRecordHeaderSize))
                       : DecodePayload(record.substr(kRecordHeaderSize));
    if (!effects) return Damage(file, offset, effects.error().message());
    if (Status s = visit(header.seq, std::move(*effects)); !s.ok()) {
      return Damage(file, offset, s.message());
    }
    offset += record_size;
    scan.valid_bytes = offset;
    scan.last_seq = header.seq;
    ++scan.records;
    ++expected_seq;
  }
  return scan;
}

}  // namespace counterd::storage
