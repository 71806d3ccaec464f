#include "snapshot_codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "counterd/core/crc32c.h"
#include "legacy_format.h"
#include "status_table.h"

namespace counterd::storage {
namespace {

using domain::Counter;
using domain::IdempotencyRecord;
using domain::Operation;
using domain::OpKind;
using nlohmann::json;

constexpr std::string_view kHeaderV2 =
    "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":";
constexpr std::string_view kHeaderV1 =
    "{\"format\":\"counterd-snapshot\",\"version\":1,\"last_seq\":";
constexpr std::string_view kCrcLinePrefix = "\"crc32c\":\"";

// JSON string literal for |s|; plain names (the common case) need no
// escaping and skip nlohmann.
void AppendQuoted(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out +=
      json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

template <typename Integer>
void AppendInteger(std::string& out, Integer value) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, end);
}

// The counter line, byte for byte what the fast reader below expects.
void AppendCounter(std::string& out, const Counter& c) {
  out += "{\"name\":";
  AppendQuoted(out, c.name);
  out += ",\"value\":";
  AppendInteger(out, c.value);
  out += ",\"version\":";
  AppendInteger(out, c.version);
  if (c.expires_at_ms != 0) {
    out += ",\"expires_at_ms\":";
    AppendInteger(out, c.expires_at_ms);
  }
  out += '}';
}

// Idempotency lines are written with their members in the order of
// docs/storage-format.md (ordered_json keeps insertion order; json would
// sort them), so that a person reads scope, key and request first.
using ordered_json = nlohmann::ordered_json;

ordered_json CounterToJson(const Counter& c) {
  ordered_json j{{"name", c.name}, {"value", c.value}, {"version", c.version}};
  if (c.expires_at_ms != 0) j["expires_at_ms"] = c.expires_at_ms;
  return j;
}

ordered_json OperationToJson(const Operation& op) {
  ordered_json j{{"op", OpKindName(op.kind)}, {"name", op.name.str()}};
  if (op.kind == OpKind::kSet) j["value"] = op.operand;
  if (op.kind == OpKind::kAdd || op.kind == OpKind::kSubtract) {
    j["by"] = op.operand;
  }
  if (!op.precondition.version_in.empty()) {
    j["if_match"] = op.precondition.version_in;
  }
  if (op.precondition.must_exist) j["if_match_any"] = true;
  if (op.precondition.must_be_absent) j["if_none_match"] = true;
  if (op.min) j["min"] = *op.min;
  if (op.max) j["max"] = *op.max;
  if (op.ttl_seconds) j["ttl_seconds"] = *op.ttl_seconds;
  return j;
}

ordered_json OutcomeToJson(const domain::TransactionOutcome& o) {
  ordered_json j{{"status", StatusCodeName(o.status.code())}};
  if (!o.status.ok()) j["message"] = o.status.message();
  if (o.failed_op) j["failed_op"] = *o.failed_op;
  if (!o.results.empty()) {
    ordered_json results = ordered_json::array();
    for (const domain::OpResult& r : o.results) {
      ordered_json entry = ordered_json::object();
      if (r.counter) entry["counter"] = CounterToJson(*r.counter);
      if (r.created) entry["created"] = true;
      results.push_back(std::move(entry));
    }
    j["results"] = std::move(results);
  }
  if (o.current) j["current"] = CounterToJson(*o.current);
  return j;
}

ordered_json IdempotencyToJson(const IdempotencyRecord& r) {
  ordered_json ops = ordered_json::array();
  for (const Operation& op : r.request.ops) ops.push_back(OperationToJson(op));
  ordered_json request{{"batch", r.request.batch}, {"ops", std::move(ops)}};
  if (r.request.preconditions_unknown) {
    request["preconditions_unknown"] = true;
  }
  return ordered_json{{"scope", r.scope},
                      {"key", r.key},
                      {"created_at_ms", r.created_at_ms},
                      {"request", std::move(request)},
                      {"outcome", OutcomeToJson(r.outcome)}};
}

std::string Hex(std::uint32_t v) {
  char buf[9];
  (void)std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

Status Malformed(std::string_view file, std::size_t offset,
                 std::string_view what) {
  return Status::DataLoss(std::string(file) + " at byte offset " +
                          std::to_string(offset) + ": " + std::string(what));
}

// -- strict JSON field readers (throw; caught where a line is parsed) ---------
// Types are checked before get<>(): converting a float such as 1e23 to an
// integer is undefined behaviour (found by tests/fuzz/snapshot_fuzz).

[[noreturn]] void Bad(const std::string& what) {
  throw std::invalid_argument(what);
}

std::int64_t Int64Of(const json& v, const char* key) {
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() &&
       v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))) {
    Bad(std::string(key) + " is not an int64");
  }
  return v.get<std::int64_t>();
}
std::int64_t Int64Field(const json& j, const char* key) {
  return Int64Of(j.at(key), key);
}
std::uint64_t Uint64Of(const json& v, const char* key) {
  if (!v.is_number_unsigned()) Bad(std::string(key) + " is not a uint64");
  return v.get<std::uint64_t>();
}
std::uint64_t Uint64Field(const json& j, const char* key) {
  return Uint64Of(j.at(key), key);
}
std::string StringField(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_string()) Bad(std::string(key) + " is not a string");
  return v.get<std::string>();
}
bool TrueField(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return false;
  if (!it->is_boolean() || !it->get<bool>())
    Bad(std::string(key) + " must be true");
  return true;
}
// Every member of |j| is one of |allowed|.
void OnlyKeys(const json& j, std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) Bad("expected an object");
  for (const auto& [key, value] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      Bad("unexpected member \"" + key + "\"");
    }
  }
}

Counter CounterFromJson(const json& j, bool with_expiry) {
  if (with_expiry) {
    OnlyKeys(j, {"name", "value", "version", "expires_at_ms"});
  } else {
    OnlyKeys(j, {"name", "value", "version"});
  }
  Counter c;
  c.name = StringField(j, "name");
  if (!domain::CounterName::Parse(c.name)) Bad("invalid counter name");
  c.value = Int64Field(j, "value");
  c.version = Uint64Field(j, "version");
  if (j.contains("expires_at_ms")) {
    c.expires_at_ms = Int64Field(j, "expires_at_ms");
    if (c.expires_at_ms == 0)
      Bad("expires_at_ms 0 is written by leaving it out");
  }
  return c;
}

Operation OperationFromJson(const json& j) {
  OnlyKeys(j, {"op", "name", "value", "by", "if_match", "if_match_any",
               "if_none_match", "min", "max", "ttl_seconds"});
  Operation op;
  const std::optional<OpKind> kind = OpKindFromName(StringField(j, "op"));
  if (!kind) Bad("unknown op");
  op.kind = *kind;
  Result<domain::CounterName> name =
      domain::CounterName::Parse(StringField(j, "name"));
  if (!name) Bad("invalid counter name");
  op.name = std::move(*name);
  const char* operand =
      op.kind == OpKind::kSet                                     ? "value"
      : (op.kind == OpKind::kAdd || op.kind == OpKind::kSubtract) ? "by"
                                                                  : nullptr;
  if (operand != nullptr) op.operand = Int64Field(j, operand);
  if ((operand == nullptr || std::string_view(operand) != "value") &&
      j.contains("value")) {
    Bad("value on a non-set op");
  }
  if ((operand == nullptr || std::string_view(operand) != "by") &&
      j.contains("by")) {
    Bad("by on a non-increment op");
  }
  if (const auto it = j.find("if_match"); it != j.end()) {
    if (!it->is_array() || it->empty()) Bad("if_match is not a version list");
    for (const json& v : *it) {
      op.precondition.version_in.push_back(Uint64Of(v, "if_match"));
    }
  }
  op.precondition.must_exist = TrueField(j, "if_match_any");
  op.precondition.must_be_absent = TrueField(j, "if_none_match");
  if (j.contains("min")) op.min = Int64Field(j, "min");
  if (j.contains("max")) op.max = Int64Field(j, "max");
  if (j.contains("ttl_seconds")) {
    const std::uint64_t ttl = Uint64Field(j, "ttl_seconds");
    if (ttl > UINT32_MAX) Bad("ttl_seconds out of range");
    op.ttl_seconds = static_cast<std::uint32_t>(ttl);
  }
  return op;
}

domain::TransactionOutcome OutcomeFromJson(const json& j) {
  OnlyKeys(j, {"status", "message", "failed_op", "results", "current"});
  domain::TransactionOutcome o;
  const std::optional<StatusCode> code =
      StatusFromName(StringField(j, "status"));
  if (!code) Bad("unknown status");
  if (*code != StatusCode::kOk) {
    o.status = Status(*code, StringField(j, "message"));
  } else if (j.contains("message")) {
    Bad("message on an OK outcome");
  }
  if (j.contains("failed_op")) {
    const std::uint64_t index = Uint64Field(j, "failed_op");
    if (index > UINT32_MAX) Bad("failed_op out of range");
    o.failed_op = static_cast<std::uint32_t>(index);
  }
  if (const auto it = j.find("results"); it != j.end()) {
    if (!it->is_array() || it->empty()) Bad("results is not a list");
    for (const json& entry : *it) {
      OnlyKeys(entry, {"counter", "created"});
      domain::OpResult r;
      if (entry.contains("counter")) {
        r.counter = CounterFromJson(entry.at("counter"), true);
      }
      r.created = TrueField(entry, "created");
      o.results.push_back(std::move(r));
    }
  }
  if (j.contains("current")) o.current = CounterFromJson(j.at("current"), true);
  return o;
}

IdempotencyRecord IdempotencyFromJson(const json& j) {
  OnlyKeys(j, {"scope", "key", "created_at_ms", "request", "outcome"});
  IdempotencyRecord r;
  r.scope = StringField(j, "scope");
  r.key = StringField(j, "key");
  if (!domain::IdempotencyKey::Parse(r.key)) Bad("invalid idempotency key");
  r.created_at_ms = Int64Field(j, "created_at_ms");
  const json& request = j.at("request");
  OnlyKeys(request, {"batch", "ops", "preconditions_unknown"});
  const json& batch = request.at("batch");
  if (!batch.is_boolean()) Bad("batch is not a boolean");
  r.request.batch = batch.get<bool>();
  if (const auto it = request.find("preconditions_unknown");
      it != request.end()) {
    if (!it->is_boolean() || !it->get<bool>()) {
      Bad("preconditions_unknown is not true");
    }
    r.request.preconditions_unknown = true;
  }
  const json& ops = request.at("ops");
  if (!ops.is_array() || ops.empty()) Bad("ops is not a list");
  for (const json& op : ops) r.request.ops.push_back(OperationFromJson(op));
  r.outcome = OutcomeFromJson(j.at("outcome"));
  return r;
}

// Version 1: {"key","fingerprint","created_at_ms","outcome":{"code",
// "message","created"[,"counter"]}}, translated into version 2.
IdempotencyRecord IdempotencyFromV1Json(const json& j) {
  OnlyKeys(j, {"key", "fingerprint", "created_at_ms", "outcome"});
  IdempotencyRecord r;
  r.key = StringField(j, "key");
  if (!domain::IdempotencyKey::Parse(r.key)) Bad("invalid idempotency key");
  r.created_at_ms = Int64Field(j, "created_at_ms");
  std::optional<domain::Fingerprint> request =
      TranslateV1Fingerprint(StringField(j, "fingerprint"));
  if (!request) Bad("unknown version-1 fingerprint");
  r.request = std::move(*request);
  const json& o = j.at("outcome");
  OnlyKeys(o, {"code", "message", "created", "counter"});
  const std::int64_t code = Int64Field(o, "code");
  if (code < 0 || code > 10) Bad("bad outcome code");
  const std::optional<StatusCode> status =
      StatusFromPersisted(static_cast<std::uint8_t>(code));
  const json& created = o.at("created");
  if (!created.is_boolean()) Bad("created is not a boolean");
  std::optional<Counter> counter;
  if (o.contains("counter")) counter = CounterFromJson(o.at("counter"), false);
  r.outcome = TranslateV1Outcome(
      *status == StatusCode::kOk ? Status::Ok()
                                 : Status(*status, StringField(o, "message")),
      std::move(counter), created.get<bool>());
  return r;
}

// Reads the snapshot line by line in exactly the layout the encoder
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

// One line of the counters array:
// {"name":"n","value":v,"version":n[,"expires_at_ms":e]}[,]
// Names without escapes (all valid counter names) take the fast path.
bool ParseCounterLine(std::string_view line, bool with_expiry, Counter& c) {
  if (line.ends_with(',')) line.remove_suffix(1);
  std::string_view s = line;
  if (ConsumePrefix(s, "{\"name\":\"")) {
    const std::size_t quote = s.find('"');
    const std::string_view name = s.substr(0, quote);
    if (quote != std::string_view::npos &&
        name.find('\\') == std::string_view::npos) {
      // Names as the API checks them: a counter no request could reach, or
      // bytes a JSON string cannot hold, is damage.
      if (!domain::CounterName::Parse(name)) return false;
      c.name.assign(name);
      s.remove_prefix(quote + 1);
      c.expires_at_ms = 0;
      if (!ConsumePrefix(s, ",\"value\":") || !ConsumeInteger(s, c.value) ||
          !ConsumePrefix(s, ",\"version\":") || !ConsumeInteger(s, c.version)) {
        return false;
      }
      if (with_expiry && ConsumePrefix(s, ",\"expires_at_ms\":") &&
          (!ConsumeInteger(s, c.expires_at_ms) || c.expires_at_ms == 0)) {
        return false;
      }
      return s == "}";
    }
  }
  try {
    c = CounterFromJson(json::parse(line), with_expiry);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// Reads an array section: the opening line |open| ("\"counters\":[" or
// its empty form "...[],"), then one element per line until "],".
template <typename ParseElement>
Status ReadSection(LineReader& lines, std::string_view name,
                   ParseElement parse) {
  const std::string open = "\"" + std::string(name) + "\":[";
  std::string_view line;
  if (!lines.Next(line) || (line != open && line != open + "],")) {
    return lines.Error("expected " + open);
  }
  for (bool more = line == open; more;) {
    if (!lines.Next(line)) {
      return lines.Error("unterminated " + std::string(name) + " array");
    }
    if (line == "],") {
      more = false;
      continue;
    }
    if (Status s = parse(line); !s.ok()) return lines.Error(s.message());
  }
  return Status::Ok();
}

// Line 1 names the format: version 2, version 1, or something newer.
Status ReadHeaderLine(LineReader& lines, SnapshotHeader& snapshot) {
  std::string_view line;
  if (!lines.Next(line)) return lines.Error("missing header line");
  std::string_view s = line;
  if (ConsumePrefix(s, kHeaderV2)) {
    snapshot.format = 2;
  } else if (ConsumePrefix(s, kHeaderV1)) {
    snapshot.format = 1;
  } else {
    std::string_view rest = line;
    std::int64_t declared = 0;
    if (ConsumePrefix(rest, "{\"format\":") && ConsumeInteger(rest, declared)) {
      return lines.Error("snapshot format " + std::to_string(declared) +
                         " is not one this counterd reads (1 and 2); "
                         "refusing to guess — run a newer counterd");
    }
    return lines.Error("unknown snapshot format, version or header");
  }
  if (!ConsumeInteger(s, snapshot.last_seq) || s != ",") {
    return lines.Error("malformed snapshot header line");
  }
  return Status::Ok();
}

}  // namespace

// -- SnapshotEncoder
// ------------------------------------------------------------

SnapshotEncoder::SnapshotEncoder(std::uint64_t last_seq) {
  buffer_.reserve(std::size_t{64} * 1024);
  buffer_ += kHeaderV2;
  AppendInteger(buffer_, last_seq);
  buffer_ += ",\n\"counters\":[";
}

void SnapshotEncoder::AddCounter(const Counter& counter) {
  buffer_ += first_ ? "\n" : ",\n";
  first_ = false;
  AppendCounter(buffer_, counter);
}

void SnapshotEncoder::BeginIdempotency() {
  buffer_ += first_ ? "],\n" : "\n],\n";
  buffer_ += "\"idempotency\":[";
  first_ = true;
}

void SnapshotEncoder::AddIdempotency(const IdempotencyRecord& record) {
  buffer_ += first_ ? "\n" : ",\n";
  first_ = false;
  buffer_ += IdempotencyToJson(record).dump(
      -1, ' ', false, ordered_json::error_handler_t::replace);
}

void SnapshotEncoder::Finish() {
  buffer_ += first_ ? "],\n" : "\n],\n";
  Checksum();
  buffer_ += kCrcLinePrefix;
  buffer_ += Hex(crc_);
  buffer_ += "\"}\n";
  crc_done_ = buffer_.size();
}

void SnapshotEncoder::Checksum() {
  crc_ = crc32c::Extend(crc_, std::string_view(buffer_).substr(crc_done_));
  crc_done_ = buffer_.size();
}

std::string SnapshotEncoder::TakeBuffered() {
  Checksum();
  std::string out = std::move(buffer_);
  bytes_taken_ += out.size();
  buffer_.clear();
  buffer_.reserve(std::size_t{64} * 1024);
  crc_done_ = 0;
  return out;
}

std::string EncodeSnapshot(const SnapshotData& snapshot) {
  SnapshotEncoder encoder(snapshot.last_seq);
  for (const Counter& c : snapshot.counters) encoder.AddCounter(c);
  encoder.BeginIdempotency();
  for (const IdempotencyRecord& r : snapshot.idempotency) {
    encoder.AddIdempotency(r);
  }
  encoder.Finish();
  return encoder.TakeBuffered();
}

Result<SnapshotHeader> DecodeSnapshotInto(std::string_view data,
                                          std::string_view file,
                                          SnapshotSink& sink) {
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
  SnapshotHeader header;
  COUNTERD_RETURN_IF_ERROR(ReadHeaderLine(lines, header));
  const bool v2 = header.format == 2;

  // Two counters alternate: the one just read and the one before it, whose
  // name the order is checked against.
  std::array<Counter, 2> counters;
  bool have_previous = false;
  COUNTERD_RETURN_IF_ERROR(
      ReadSection(lines, "counters", [&](std::string_view line) -> Status {
        Counter& c = counters[have_previous ? 1 : 0];
        if (!ParseCounterLine(line, v2, c)) {
          return Status::DataLoss("bad counter entry");
        }
        if (have_previous && !(counters[0].name < c.name)) {
          return Status::DataLoss("counters not sorted by name");
        }
        sink.OnCounter(c);
        if (have_previous) std::swap(counters[0], counters[1]);
        have_previous = true;
        return Status::Ok();
      }));
  COUNTERD_RETURN_IF_ERROR(
      ReadSection(lines, "idempotency", [&](std::string_view line) -> Status {
        if (line.ends_with(',')) line.remove_suffix(1);
        try {
          const json j = json::parse(line);
          sink.OnIdempotency(v2 ? IdempotencyFromJson(j)
                                : IdempotencyFromV1Json(j));
          return Status::Ok();
        } catch (const std::exception& e) {
          return Status::DataLoss(std::string("bad idempotency entry: ") +
                                  e.what());
        }
      }));
  std::string_view line;
  if (lines.Next(line)) return lines.Error("unexpected data before crc32c");
  return header;
}

Result<SnapshotData> DecodeSnapshot(std::string_view data,
                                    std::string_view file) {
  struct Collect final : SnapshotSink {
    void OnCounter(const Counter& counter) override {
      snapshot.counters.push_back(counter);
    }
    void OnIdempotency(IdempotencyRecord&& record) override {
      snapshot.idempotency.push_back(std::move(record));
    }
    SnapshotData snapshot;
  } collect;
  auto header = DecodeSnapshotInto(data, file, collect);
  if (!header) return header.error();
  collect.snapshot.format = header->format;
  collect.snapshot.last_seq = header->last_seq;
  return std::move(collect.snapshot);
}

}  // namespace counterd::storage
