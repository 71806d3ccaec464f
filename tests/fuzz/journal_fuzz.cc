// libFuzzer target: journal decoding (docs/storage-format.md, "Journal
// files"). The input is one journal file, read as the newest file and as an
// older one, plus one raw effect payload. Beyond "no crash, no sanitizer
// report", it checks the reader's own promises:
//  - the intact records and the torn tail never add up to more than the
//    file, and an older file is either read in full or refused;
//  - a torn tail is only ever reported for the newest file;
//  - every record it accepts decodes, and re-encoding the effects and
//    decoding them again gives the same effects (replay is lossless).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "storage/journal_reader.h"
#include "storage/record_format.h"

namespace {

using counterd::Status;
using counterd::storage::DecodePayload;
using counterd::storage::Effect;
using counterd::storage::EncodeRecord;
using counterd::storage::kRecordHeaderSize;
using counterd::storage::ReadJournal;

void Require(bool condition, const char* what) {
  if (!condition) {
    __builtin_trap();  // libFuzzer reports the input; |what| names the check
  }
  (void)what;
}

// Encoding the decoded effects and decoding them again must give them back.
void CheckRoundTrip(std::uint64_t seq, const std::vector<Effect>& effects) {
  std::string record;
  EncodeRecord(seq, effects, record);
  Require(record.size() >= kRecordHeaderSize, "encoded record too short");
  auto again =
      DecodePayload(std::string_view(record).substr(kRecordHeaderSize));
  Require(again.has_value(), "re-encoded payload does not decode");
  Require(*again == effects, "re-encoded payload decodes differently");
}

void ReadAs(std::string_view data, std::uint64_t first_seq, bool is_last) {
  std::uint64_t visited = 0;
  auto scan = ReadJournal(
      data, "/fuzz/journal.log", first_seq, is_last,
      [&](std::uint64_t seq, std::vector<Effect>&& effects) -> Status {
        Require(seq == first_seq + visited, "records out of order");
        ++visited;
        CheckRoundTrip(seq, effects);
        return Status::Ok();
      });
  if (!scan) {
    const std::string& message = scan.error().message();
    Require(message.find("/fuzz/journal.log at byte offset ") == 0,
            "damage report does not name file and offset");
    return;
  }
  Require(scan->records == visited, "record count differs from visits");
  Require(scan->valid_bytes + scan->torn_bytes == data.size(),
          "intact + torn bytes != file size");
  Require(is_last || scan->torn_bytes == 0, "torn tail in an older file");
  if (scan->records > 0) {
    Require(scan->last_seq == first_seq + scan->records - 1, "last_seq wrong");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  // The first record's seq as the file name would give it: taken from the
  // input when it looks like a record, so the fuzzer reaches the payload.
  std::uint64_t first_seq = 1;
  if (size >= kRecordHeaderSize) {
    first_seq = counterd::storage::DecodeHeader(data).seq;
  }
  ReadAs(data, first_seq, true);
  ReadAs(data, first_seq, false);
  // The payload decoder on its own, on the raw bytes.
  if (auto effects = DecodePayload(data)) CheckRoundTrip(1, *effects);
  return 0;
}
