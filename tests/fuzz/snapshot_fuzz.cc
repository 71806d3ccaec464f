// libFuzzer target: snapshot loading (docs/storage-format.md, "Snapshot"),
// versions 1 and 2. The first input byte picks the mode: even, the rest is
// state.json as is (the checksum line must hold, which random bytes rarely
// manage); odd, the rest is the document up to its checksum line and the
// target appends the right "crc32c" line, so the fuzzer explores the JSON
// validation behind it. Beyond "no crash, no sanitizer report", the
// oracles:
//  - a refusal names the file and a byte offset; a document whose checksum
//    holds and that declares format 3 is refused, and says so;
//  - an accepted snapshot re-encodes (in version 2) to a document that
//    decodes to the same data, and that re-encoding is a fixed point (the
//    writer is deterministic and the reader takes back all it wrote);
//  - encoding in pieces (the streaming encoder) gives the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "counterd/core/crc32c.h"
#include "snapshot_codec.h"

namespace {

using counterd::storage::DecodeSnapshot;
using counterd::storage::EncodeSnapshot;
using counterd::storage::SnapshotData;
using counterd::storage::SnapshotEncoder;

constexpr std::string_view kFile = "/fuzz/state.json";

void Require(bool condition, const char* what) {
  if (!condition) __builtin_trap();
  (void)what;
}

bool SameData(const SnapshotData& a, const SnapshotData& b) {
  return a.last_seq == b.last_seq && a.counters == b.counters &&
         a.idempotency == b.idempotency;
}

std::string EncodeInPieces(const SnapshotData& s) {
  SnapshotEncoder encoder(s.last_seq);
  std::string out;
  for (const auto& c : s.counters) {
    encoder.AddCounter(c);
    if (c.version % 2 == 0) out += encoder.TakeBuffered();
  }
  encoder.BeginIdempotency();
  out += encoder.TakeBuffered();
  for (const auto& r : s.idempotency) encoder.AddIdempotency(r);
  encoder.Finish();
  out += encoder.TakeBuffered();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  if (size == 0) return 0;
  std::string doc(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  // In the fix-up mode the checksum holds when the body ends its last line:
  // the header line is then the first thing checked.
  const bool checksum_holds = (bytes[0] & 1) != 0 && doc.ends_with('\n');
  if ((bytes[0] & 1) != 0) {
    char line[32];
    std::snprintf(line, sizeof(line), "\"crc32c\":\"%08x\"}\n",
                  counterd::crc32c::Value(doc));
    doc += line;
  }
  auto decoded = DecodeSnapshot(doc, kFile);
  if (!decoded) {
    const std::string& message = decoded.error().message();
    Require(message.starts_with(std::string(kFile) + " at byte offset "),
            "refusal does not name file and offset");
    if (checksum_holds && doc.starts_with("{\"format\":3,")) {
      Require(message.find("snapshot format 3 is not one this counterd "
                           "reads") != std::string::npos,
              "a newer format is not refused as such");
    }
    return 0;
  }
  Require(decoded->format == 1 || decoded->format == 2, "unknown format");
  const std::string encoded = EncodeSnapshot(*decoded);
  auto again = DecodeSnapshot(encoded, kFile);
  Require(again.has_value(), "a re-encoded snapshot does not decode");
  Require(again->format == 2, "re-encoded in another format");
  Require(SameData(*decoded, *again), "a re-encoded snapshot differs");
  Require(EncodeSnapshot(*again) == encoded, "re-encoding is no fixed point");
  Require(EncodeInPieces(*decoded) == encoded, "streamed pieces differ");
  return 0;
}
