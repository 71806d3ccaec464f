// libFuzzer target: snapshot loading (docs/storage-format.md, "Snapshot").
// The first input byte picks the mode: even, the rest is state.json as is
// (the checksum line must hold, which random bytes rarely manage); odd, the
// rest is the document up to its checksum line and the target appends the
// right "crc32c" line, so the fuzzer explores the JSON validation behind it.
// Beyond "no crash, no sanitizer report" it checks:
//  - a refusal names the file and a byte offset within (or at the end of)
//    the document;
//  - an accepted snapshot whose counter names are valid counter names (all
//    counterd can write) re-encodes to a document that decodes to the same
//    data, and that re-encoding is a fixed point (the writer is
//    deterministic and the reader takes back what the writer wrote). The
//    reader does not check names: one with bytes that are not UTF-8 would
//    come back with U+FFFD in their place (see the fuzzing notes in
//    docs/durability.md).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "counterd/core/crc32c.h"
#include "counterd/domain/counter_name.h"
#include "storage/snapshot_codec.h"

namespace {

using counterd::storage::DecodeSnapshot;
using counterd::storage::EncodeSnapshot;
using counterd::storage::SnapshotData;

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

bool SameData(const SnapshotData& a, const SnapshotData& b) {
  return a.last_seq == b.last_seq && a.counters == b.counters &&
         a.idempotency == b.idempotency;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  if (size == 0) return 0;
  std::string doc(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  if ((bytes[0] & 1) != 0) {
    char line[32];
    std::snprintf(line, sizeof(line), "\"crc32c\":\"%08x\"}\n",
                  counterd::crc32c::Value(doc));
    doc += line;
  }
  auto decoded = DecodeSnapshot(doc, "/fuzz/state.json");
  if (!decoded) {
    const std::string& message = decoded.error().message();
    constexpr std::string_view kPrefix = "/fuzz/state.json at byte offset ";
    Require(message.compare(0, kPrefix.size(), kPrefix) == 0);
    return 0;
  }
  for (const auto& c : decoded->counters) {
    if (!counterd::domain::CounterName::Parse(c.name)) return 0;
  }
  const std::string encoded = EncodeSnapshot(*decoded);
  auto again = DecodeSnapshot(encoded, "/fuzz/state.json");
  Require(again.has_value());
  Require(SameData(*decoded, *again));
  Require(EncodeSnapshot(*again) == encoded);
  return 0;
}
