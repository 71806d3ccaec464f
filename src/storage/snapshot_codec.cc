#include "snapshot_codec.h"

#include <charconv>
#include <cstdio>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "counterd/core/crc32c.h"

namespace counterd::storage {
namespace {

using nlohmann::json;

constexpr std::string_view kFormat = "counterd-snapshot";
constexpr int kVersion = 1;
constexpr std::string_view kCrcLinePrefix = "\"crc32c\":\"";

std::string Quote(std::string_view s) {
  return json(std::string(s))
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

json CounterToJson(const domain::Counter& c) {
  return json{{"name", c.name}, {"value", c.value}, {"version", c.version}};
}

json IdempotencyToJson(const IdempotencyRecord& r) {
  json outcome{{"code", static_cast<int>(r.outcome.status.code())},
               {"message", r.outcome.status.message()},
               {"created", r.outcome.created}};
  if (r.outcome.counter) outcome["counter"] = CounterToJson(*r.outcome.counter);
  return json{{"key", r.key},
              {"fingerprint", r.fingerprint},
              {"created_at_ms", r.created_at_ms},
              {"outcome", std::move(outcome)}};
}

std::string Hex(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

Status Malformed(std::string_view file, std::size_t offset,
                 std::string_view what) {
  return Status::DataLoss(std::string(file) + " at byte offset " +
                          std::to_string(offset) + ": " + std::string(what));
}

// Throws json exceptions on shape errors; caught by DecodeSnapshot.
domain::Counter CounterFromJson(const json& j) {
  domain::Counter c;
  c.name = j.at("name").get<std::string>();
  c.value = j.at("value").get<std::int64_t>();
  c.version = j.at("version").get<std::uint64_t>();
  if (!j.at("value").is_number_integer() ||
      !j.at("version").is_number_unsigned() || j.size() != 3) {
    throw std::invalid_argument("bad counter entry for " + c.name);
  }
  return c;
}

}  // namespace

std::string EncodeSnapshot(const SnapshotData& snapshot) {
  std::string out;
  out.reserve(64 + snapshot.counters.size() * 48);
  out += "{\"format\":\"";
  out += kFormat;
  out += "\",\"version\":" + std::to_string(kVersion) +
         ",\"last_seq\":" + std::to_string(snapshot.last_seq) + ",\n";
  out += "\"counters\":[\n";
  bool first = true;
  for (const domain::Counter& c : snapshot.counters) {
    if (!first) out += ",\n";
    first = false;
    out += "{\"name\":";
    out += Quote(c.name);
    out += ",\"value\":";
    out += std::to_string(c.value);
    out += ",\"version\":";
    out += std::to_string(c.version);
    out += '}';
  }
  out += first ? "],\n" : "\n],\n";
  out += "\"idempotency\":[";
  first = true;
  for (const IdempotencyRecord& r : snapshot.idempotency) {
    out += first ? "\n" : ",\n";
    first = false;
    out += IdempotencyToJson(r).dump(-1, ' ', false,
                                     json::error_handler_t::replace);
  }
  out += first ? "],\n" : "\n],\n";
  const std::uint32_t crc = crc32c::Value(out);
  out += kCrcLinePrefix;
  out += Hex(crc);
  out += "\"}\n";
  return out;
}

Result<SnapshotData> DecodeSnapshot(std::string_view data,
                                    std::string_view file) {
  if (data.empty()) return Malformed(file, 0, "empty snapshot");
  // The checksum line: the last line, covering every byte before it.
  const std::size_t crc_line =
      data.rfind(std::string("\n") + std::string(kCrcLinePrefix));
  if (crc_line == std::string_view::npos) {
    return Malformed(file, data.size(), "no crc32c line (truncated?)");
  }
  const std::size_t hex_at = crc_line + 1 + kCrcLinePrefix.size();
  const std::string_view tail = data.substr(hex_at);
  std::uint32_t stored = 0;
  const auto [ptr, ec] = std::from_chars(
      tail.data(), tail.data() + std::min<std::size_t>(8, tail.size()), stored,
      16);
  if (ec != std::errc() || ptr != tail.data() + 8 ||
      tail.substr(8) != "\"}\n") {
    return Malformed(file, crc_line + 1, "malformed crc32c line");
  }
  if (crc32c::Value(data.substr(0, crc_line + 1)) != stored) {
    return Malformed(
        file, crc_line + 1,
        "checksum mismatch over bytes 0.." + std::to_string(crc_line));
  }

  json doc;
  try {
    doc = json::parse(data);
  } catch (const json::parse_error& e) {
    return Malformed(file, e.byte, e.what());
  }
  SnapshotData snapshot;
  try {
    if (doc.at("format").get<std::string>() != kFormat ||
        doc.at("version").get<int>() != kVersion) {
      return Malformed(file, 0, "unknown snapshot format or version");
    }
    snapshot.last_seq = doc.at("last_seq").get<std::uint64_t>();
    const json& counters = doc.at("counters");
    snapshot.counters.reserve(counters.size());
    for (const json& c : counters)
      snapshot.counters.push_back(CounterFromJson(c));
    for (const json& r : doc.at("idempotency")) {
      IdempotencyRecord record;
      record.key = r.at("key").get<std::string>();
      record.fingerprint = r.at("fingerprint").get<std::string>();
      record.created_at_ms = r.at("created_at_ms").get<std::int64_t>();
      const json& o = r.at("outcome");
      const int code = o.at("code").get<int>();
      if (code < 0 || code > static_cast<int>(StatusCode::kInternal)) {
        throw std::invalid_argument("bad outcome code");
      }
      if (code != 0) {
        record.outcome.status = Status(static_cast<StatusCode>(code),
                                       o.at("message").get<std::string>());
      }
      record.outcome.created = o.at("created").get<bool>();
      if (o.contains("counter")) {
        record.outcome.counter = CounterFromJson(o.at("counter"));
      }
      snapshot.idempotency.push_back(std::move(record));
    }
  } catch (const std::exception& e) {
    // The checksum held, so this is a writer bug or a foreign file; the
    // offset of the whole document is all we can name.
    return Malformed(file, 0, std::string("ill-formed snapshot: ") + e.what());
  }
  for (std::size_t i = 1; i < snapshot.counters.size(); ++i) {
    if (!(snapshot.counters[i - 1].name < snapshot.counters[i].name)) {
      return Malformed(file, 0, "counters not sorted by name");
    }
  }
  return snapshot;
}

}  // namespace counterd::storage
