#include "snapshot_codec.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
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

// JSON string literal for |s|; plain names (the common case) need no
// escaping and skip nlohmann.
std::string Quote(std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    out += s;
    out += '"';
    return out;
  }
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
// Types are checked before get<>(): converting a float such as 1e23 to an
// integer is undefined behaviour (found by tests/fuzz/snapshot_fuzz).
std::int64_t Int64Field(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() &&
       v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))) {
    throw std::invalid_argument(std::string(key) + " is not an int64");
  }
  return v.get<std::int64_t>();
}

std::uint64_t Uint64Field(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned()) {
    throw std::invalid_argument(std::string(key) + " is not a uint64");
  }
  return v.get<std::uint64_t>();
}

domain::Counter CounterFromJson(const json& j) {
  if (!j.is_object() || j.size() != 3) {
    throw std::invalid_argument("bad counter entry");
  }
  domain::Counter c;
  c.name = j.at("name").get<std::string>();
  c.value = Int64Field(j, "value");
  c.version = Uint64Field(j, "version");
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
  out += "\"idempotency\":[\n";
  first = true;
  for (const IdempotencyRecord& r : snapshot.idempotency) {
    if (!first) out += ",\n";
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

namespace {

// Reads the snapshot line by line in exactly the layout EncodeSnapshot
// writes (docs/storage-format.md). The checksum has already proved the
// bytes are what counterd wrote, so a strict reader is enough, and it is
// what makes recovering a million counters take well under a second.
class LineReader {
 public:
  LineReader(std::string_view data, std::string_view file)
      : data_(data), file_(file) {}

  // The next line without its '\n'; false at the end.
  bool Next(std::string_view& line) {
    if (pos_ >= data_.size()) return false;
    line_start_ = pos_;
    const std::size_t nl = data_.find('\n', pos_);
    const std::size_t end = nl == std::string_view::npos ? data_.size() : nl;
    line = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }
  Status Error(std::string_view what, std::size_t column = 0) const {
    return Malformed(file_, line_start_ + column, what);
  }

 private:
  std::string_view data_;
  std::string_view file_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
};

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

template <typename T>
bool ConsumeInteger(std::string_view& s, T& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc()) return false;
  s.remove_prefix(static_cast<std::size_t>(ptr - s.data()));
  return true;
}

// One line of the counters array: {"name":"n","value":v,"version":n}[,]
// Names without escapes (all valid counter names) take the fast path.
bool ParseCounterLine(std::string_view line, domain::Counter& c) {
  if (line.ends_with(',')) line.remove_suffix(1);
  std::string_view s = line;
  if (ConsumePrefix(s, "{\"name\":\"")) {
    const std::size_t quote = s.find('"');
    const std::string_view name = s.substr(0, quote);
    if (quote != std::string_view::npos &&
        name.find('\\') == std::string_view::npos) {
      c.name.assign(name);
      s.remove_prefix(quote + 1);
      return ConsumePrefix(s, ",\"value\":") && ConsumeInteger(s, c.value) &&
             ConsumePrefix(s, ",\"version\":") &&
             ConsumeInteger(s, c.version) && s == "}";
    }
  }
  try {
    c = CounterFromJson(json::parse(line));
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

Result<IdempotencyRecord> ParseIdempotencyLine(std::string_view line) {
  if (line.ends_with(',')) line.remove_suffix(1);
  try {
    const json r = json::parse(line);
    IdempotencyRecord record;
    record.key = r.at("key").get<std::string>();
    record.fingerprint = r.at("fingerprint").get<std::string>();
    record.created_at_ms = Int64Field(r, "created_at_ms");
    const json& o = r.at("outcome");
    const std::int64_t code = Int64Field(o, "code");
    if (code < 0 || code > static_cast<int>(StatusCode::kInternal)) {
      return Status::InvalidArgument("bad outcome code");
    }
    if (code != 0) {
      record.outcome.status = Status(static_cast<StatusCode>(code),
                                     o.at("message").get<std::string>());
    }
    record.outcome.created = o.at("created").get<bool>();
    if (o.contains("counter")) {
      record.outcome.counter = CounterFromJson(o.at("counter"));
    }
    return record;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(e.what());
  }
}

}  // namespace

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

  LineReader lines(data.substr(0, crc_line + 1), file);
  SnapshotData snapshot;
  std::string_view line;
  // Line 1: {"format":"counterd-snapshot","version":1,"last_seq":N,
  if (!lines.Next(line)) return lines.Error("missing header line");
  std::string_view s = line;
  if (!ConsumePrefix(s, "{\"format\":\"" + std::string(kFormat) +
                            "\",\"version\":" + std::to_string(kVersion) +
                            ",\"last_seq\":") ||
      !ConsumeInteger(s, snapshot.last_seq) || s != ",") {
    return lines.Error("unknown snapshot format, version or header");
  }
  // An empty array may also be written on one line ("counters":[],).
  if (!lines.Next(line) ||
      (line != "\"counters\":[" && line != "\"counters\":[],")) {
    return lines.Error("expected \"counters\":[");
  }
  for (bool more = line == "\"counters\":["; more;) {
    if (!lines.Next(line)) return lines.Error("unterminated counters array");
    if (line == "],") {
      more = false;
      continue;
    }
    domain::Counter c;
    if (!ParseCounterLine(line, c)) return lines.Error("bad counter entry");
    if (!snapshot.counters.empty() &&
        !(snapshot.counters.back().name < c.name)) {
      return lines.Error("counters not sorted by name");
    }
    snapshot.counters.push_back(std::move(c));
  }
  if (!lines.Next(line) ||
      (line != "\"idempotency\":[" && line != "\"idempotency\":[],")) {
    return lines.Error("expected \"idempotency\":[");
  }
  for (bool more = line == "\"idempotency\":["; more;) {
    if (!lines.Next(line)) {
      return lines.Error("unterminated idempotency array");
    }
    if (line == "],") {
      more = false;
      continue;
    }
    auto record = ParseIdempotencyLine(line);
    if (!record) {
      return lines.Error("bad idempotency entry: " + record.error().message());
    }
    snapshot.idempotency.push_back(std::move(*record));
  }
  if (lines.Next(line)) return lines.Error("unexpected data before crc32c");
  return snapshot;
}

}  // namespace counterd::storage
