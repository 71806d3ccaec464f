// libFuzzer target: journal decoding (docs/storage-format.md, "Journal
// files" and "Upgrading from version 1"). The input is one journal file,
// version 2 (with its header) or version 1, read as the newest file and as
// an older one, plus the same bytes as one raw effect payload of each
// version. Beyond "no crash, no sanitizer report", the oracles:
//  - a version-2 payload that decodes re-encodes to the same bytes, and
//    every version-2 record the reader accepts is byte for byte the record
//    EncodeRecord writes for its seq and effects (nothing is read that the
//    writer would not write);
//  - a version-1 payload that decodes is translated into effects that
//    round-trip through version 2 unchanged;
//  - the reader's accounting: intact records plus the torn tail are the
//    whole file; only the newest file may have a torn tail or a header cut
//    short at creation (an empty file holds no record wherever it is); an
//    older file is read in full or refused; refusals name the file and a
//    byte offset;
//  - any prefix of a file the reader accepts as the newest is accepted too,
//    with a prefix of its records (a crash can cut the file anywhere).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "binary_io.h"
#include "journal_format.h"
#include "journal_reader.h"
#include "legacy_format.h"

namespace {

using counterd::Status;
using counterd::storage::DecodePayload;
using counterd::storage::DecodeV1Payload;
using counterd::storage::Effect;
using counterd::storage::EncodeRecord;
using counterd::storage::JournalScan;
using counterd::storage::kJournalHeaderSize;
using counterd::storage::kRecordHeaderSize;
using counterd::storage::LoadFixed;
using counterd::storage::ReadJournal;

constexpr std::string_view kFile = "/fuzz/journal.log";

// libFuzzer reports the input; |what| names the broken promise in a
// debugger (and documents it here).
void Require(bool condition, const char* what) {
  if (!condition) __builtin_trap();
  (void)what;
}

std::string EncodedPayload(const std::vector<Effect>& effects) {
  std::string record;
  EncodeRecord(1, effects, record);
  return record.substr(kRecordHeaderSize);
}

// Effects decoded from either version survive a version-2 round trip.
void CheckRoundTrip(const std::vector<Effect>& effects) {
  const std::string payload = EncodedPayload(effects);
  auto again = DecodePayload(payload);
  Require(again.has_value(), "re-encoded payload does not decode");
  Require(*again == effects, "re-encoded payload decodes differently");
}

struct Read {
  counterd::Result<JournalScan> scan;
  std::vector<std::vector<Effect>> records;
};

Read ReadAs(std::string_view data, std::uint64_t first_seq, bool is_last) {
  std::vector<std::vector<Effect>> records;
  // Where the next record starts: after the header in version 2.
  const bool v2 = data.starts_with(counterd::storage::kJournalMagic);
  std::uint64_t offset = v2 ? kJournalHeaderSize : 0;
  auto scan = ReadJournal(
      data, kFile, first_seq, is_last,
      [&](std::uint64_t seq, std::vector<Effect>&& effects) -> Status {
        Require(seq == first_seq + records.size(), "records out of order");
        const std::uint32_t length =
            LoadFixed<std::uint32_t>(data.data() + offset + 4);
        if (v2) {
          std::string again;
          EncodeRecord(seq, effects, again);
          Require(again == data.substr(static_cast<std::size_t>(offset),
                                       kRecordHeaderSize + length),
                  "an accepted record is not what the writer writes");
        }
        offset += kRecordHeaderSize + length;
        CheckRoundTrip(effects);
        records.push_back(std::move(effects));
        return Status::Ok();
      });
  return Read{std::move(scan), std::move(records)};
}

void CheckScan(const Read& read, std::string_view data, std::uint64_t first_seq,
               bool is_last) {
  if (!read.scan) {
    const std::string& message = read.scan.error().message();
    Require(message.starts_with(std::string(kFile) + " at byte offset "),
            "damage report does not name file and offset");
    return;
  }
  const JournalScan& scan = *read.scan;
  Require(scan.records == read.records.size(), "record count != visits");
  Require(scan.valid_bytes + scan.torn_bytes == data.size(),
          "intact + torn bytes != file size");
  // An empty file holds no record wherever it is (a version-1 journal
  // created at a compaction); anything else cut short is the newest's.
  Require(
      is_last || (scan.torn_bytes == 0 && (!scan.header_torn || data.empty())),
      "torn tail or torn header in an older file");
  Require(!scan.header_torn || scan.records == 0, "records in a torn header");
  Require(scan.format == 1 || scan.format == 2, "unknown format reported");
  if (scan.records > 0) {
    Require(scan.last_seq == first_seq + scan.records - 1, "last_seq wrong");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  // The first seq as the file name would give it: taken from the header
  // (version 2) or the first record (version 1), so the fuzzer reaches the
  // records.
  std::uint64_t first_seq = 1;
  if (data.starts_with(counterd::storage::kJournalMagic) &&
      size >= kJournalHeaderSize) {
    first_seq = LoadFixed<std::uint64_t>(data.data() + 12);
  } else if (size >= kRecordHeaderSize) {
    first_seq = LoadFixed<std::uint64_t>(data.data() + 8);
  }
  const Read newest = ReadAs(data, first_seq, true);
  CheckScan(newest, data, first_seq, true);
  const Read older = ReadAs(data, first_seq, false);
  CheckScan(older, data, first_seq, false);
  if (older.scan) {
    Require(newest.scan && newest.records == older.records,
            "the newest-file reading disagrees with the full reading");
  }

  // Prefixes of an accepted newest file: a crash may cut it anywhere.
  if (newest.scan && size > 0) {
    for (const std::size_t cut :
         {size - 1, size / 2, static_cast<std::size_t>(bytes[0]) % size}) {
      const Read prefix = ReadAs(data.substr(0, cut), first_seq, true);
      Require(prefix.scan.has_value(), "a prefix of an accepted file refused");
      Require(prefix.records.size() <= newest.records.size(),
              "a prefix has more records");
      for (std::size_t i = 0; i < prefix.records.size(); ++i) {
        Require(prefix.records[i] == newest.records[i],
                "a prefix's records are not a prefix");
      }
    }
  }

  // The payload decoders on their own, on the raw bytes.
  if (auto effects = DecodePayload(data)) {
    Require(EncodedPayload(*effects) == data,
            "a decoded payload does not re-encode to the same bytes");
  }
  if (auto effects = DecodeV1Payload(data)) CheckRoundTrip(*effects);
  return 0;
}
