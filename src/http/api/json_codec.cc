#include "api/json_codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "counterd/domain/counter_name.h"

namespace counterd::http {
namespace {

using Json = nlohmann::json;
// Output keeps the documented field order ("type" before "title", ...).
using OrderedJson = nlohmann::ordered_json;

// Text a client sent may be invalid UTF-8 (a path, a name in a message);
// replace such bytes rather than throw while encoding.
std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// nlohmann prefixes its messages with "[json.exception.parse_error.101] ".
std::string WithoutExceptionId(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    const std::size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  return std::string(what);
}

std::string RangeMessage(std::string_view field) {
  // Built with append: g++ 12 at -O2 reports a false -Wrestrict for
  // "literal" + std::string (GCC bug 105651).
  std::string message = "\"";
  message.append(field);
  message.append("\" must be an integer between ");
  message.append(std::to_string(std::numeric_limits<std::int64_t>::min()));
  message.append(" and ");
  message.append(std::to_string(std::numeric_limits<std::int64_t>::max()));
  return message;
}

// Parses |body| as a JSON object, or says why it is not one.
std::variant<Json, BodyError> ParseObject(std::string_view body) {
  Json j;
  try {
    j = Json::parse(body);
  } catch (const Json::exception& e) {
    return BodyError{ProblemType::kInvalidJson,
                     "malformed JSON: " + WithoutExceptionId(e.what())};
  }
  if (!j.is_object()) {
    return BodyError{ProblemType::kInvalidJson,
                     "request body must be a JSON object"};
  }
  return j;
}

BodyError FieldError(std::string detail) {
  return BodyError{ProblemType::kInvalidField, std::move(detail)};
}

// "unknown field "x"; allowed: "by", "min"" when |j| has a member outside
// |allowed|.
std::optional<BodyError> OnlyFields(
    const Json& j, std::initializer_list<std::string_view> allowed,
    std::string_view where = {}) {
  for (const auto& [key, value] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
      continue;
    }
    std::string detail(where);
    detail += "unknown field \"" + key + "\"; allowed: ";
    bool first = true;
    for (const std::string_view name : allowed) {
      if (!first) detail += ", ";
      first = false;
      detail += "\"";
      detail += name;
      detail += "\"";
    }
    return FieldError(std::move(detail));
  }
  return std::nullopt;
}

// The int64 member |field|, or nullopt if absent. is_number_integer() is
// true for signed and unsigned integers but not for 1.0 or 1e3, which are
// floats to nlohmann: all are refused, as are strings like "1".
std::variant<std::optional<std::int64_t>, BodyError> Int64Member(
    const Json& j, std::string_view field, std::string_view where = {}) {
  const auto it = j.find(field);
  if (it == j.end()) return std::optional<std::int64_t>();
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u <=
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::optional<std::int64_t>(static_cast<std::int64_t>(u));
    }
  } else if (it->is_number_integer()) {
    return std::optional<std::int64_t>(it->get<std::int64_t>());
  }
  return FieldError(std::string(where) + RangeMessage(field));
}

std::variant<std::optional<std::uint32_t>, BodyError> TtlMember(
    const Json& j, std::string_view where = {}) {
  const auto it = j.find("ttl_seconds");
  if (it == j.end()) return std::optional<std::uint32_t>();
  if (it->is_number_unsigned() && it->get<std::uint64_t>() >= 1 &&
      it->get<std::uint64_t>() <= domain::kMaxTtlSeconds) {
    return std::optional<std::uint32_t>(
        static_cast<std::uint32_t>(it->get<std::uint64_t>()));
  }
  return FieldError(std::string(where) +
                    "\"ttl_seconds\" must be an integer from 1 to " +
                    std::to_string(domain::kMaxTtlSeconds));
}

// Reads by/min/max/ttl_seconds (as present) into |out|.
std::optional<BodyError> ReadDeltaFields(const Json& j, std::string_view where,
                                         std::int64_t& by,
                                         std::optional<std::int64_t>& min,
                                         std::optional<std::int64_t>& max,
                                         std::optional<std::uint32_t>& ttl) {
  auto by_field = Int64Member(j, "by", where);
  if (auto* e = std::get_if<BodyError>(&by_field)) return std::move(*e);
  if (auto v = std::get<std::optional<std::int64_t>>(by_field)) by = *v;
  auto min_field = Int64Member(j, "min", where);
  if (auto* e = std::get_if<BodyError>(&min_field)) return std::move(*e);
  min = std::get<std::optional<std::int64_t>>(min_field);
  auto max_field = Int64Member(j, "max", where);
  if (auto* e = std::get_if<BodyError>(&max_field)) return std::move(*e);
  max = std::get<std::optional<std::int64_t>>(max_field);
  if (min && max && *min > *max) {
    return FieldError(std::string(where) + "\"min\" (" + std::to_string(*min) +
                      ") must not exceed \"max\" (" + std::to_string(*max) +
                      ")");
  }
  auto ttl_field = TtlMember(j, where);
  if (auto* e = std::get_if<BodyError>(&ttl_field)) return std::move(*e);
  ttl = std::get<std::optional<std::uint32_t>>(ttl_field);
  return std::nullopt;
}

std::variant<std::string, BodyError> StringMember(const Json& j,
                                                  std::string_view field,
                                                  std::string_view where) {
  const auto it = j.find(field);
  if (it == j.end() || !it->is_string()) {
    return FieldError(std::string(where) + "\"" + std::string(field) +
                      "\" must be a string");
  }
  return it->get<std::string>();
}

// The fields of a "set" operation besides "op" and the preconditions:
// "value" (required) and "ttl_seconds".
std::optional<BodyError> ReadSetFields(const Json& j, const std::string& where,
                                       BatchOperation& op) {
  auto value = Int64Member(j, "value", where);
  if (auto* e = std::get_if<BodyError>(&value)) return std::move(*e);
  if (!std::get<std::optional<std::int64_t>>(value)) {
    return FieldError(where + "missing field \"value\"");
  }
  op.operand = *std::get<std::optional<std::int64_t>>(value);
  auto ttl = TtlMember(j, where);
  if (auto* e = std::get_if<BodyError>(&ttl)) return std::move(*e);
  op.ttl_seconds = std::get<std::optional<std::uint32_t>>(ttl);
  return std::nullopt;
}

// Reads "op" into op.kind, refuses the fields that kind does not take and
// reads the ones it does (all but "name" and the preconditions).
std::optional<BodyError> ReadKindAndFields(const Json& j,
                                           const std::string& where,
                                           BatchOperation& op) {
  auto kind = StringMember(j, "op", where);
  if (auto* e = std::get_if<BodyError>(&kind)) return std::move(*e);
  const std::string& spelled = std::get<std::string>(kind);
  if (spelled == "increment" || spelled == "decrement") {
    op.kind = spelled == "increment" ? domain::OpKind::kAdd
                                     : domain::OpKind::kSubtract;
    std::optional<BodyError> unknown = OnlyFields(
        j, {"op", "name", "by", "min", "max", "ttl_seconds", "if_match"},
        where);
    op.operand = 1;  // "by" defaults to 1, as on the single endpoints
    if (unknown) return unknown;
    return ReadDeltaFields(j, where, op.operand, op.min, op.max,
                           op.ttl_seconds);
  }
  if (spelled == "set") {
    op.kind = domain::OpKind::kSet;
    std::optional<BodyError> unknown = OnlyFields(
        j, {"op", "name", "value", "ttl_seconds", "if_match", "if_none_match"},
        where);
    if (unknown) return unknown;
    return ReadSetFields(j, where, op);
  }
  if (spelled == "delete") {
    op.kind = domain::OpKind::kDelete;
    return OnlyFields(j, {"op", "name", "if_match"}, where);
  }
  if (spelled == "get") {
    op.kind = domain::OpKind::kGet;
    return OnlyFields(j, {"op", "name"}, where);
  }
  return FieldError(
      where +
      "\"op\" must be \"increment\", \"decrement\", \"set\", \"delete\" "
      "or \"get\"");
}

// "if_match" and "if_none_match", as present (ReadKindAndFields has refused
// them where the kind does not take them).
std::optional<BodyError> ReadPreconditions(const Json& j,
                                           const std::string& where,
                                           BatchOperation& op) {
  if (j.contains("if_match")) {
    auto tags = StringMember(j, "if_match", where);
    if (auto* e = std::get_if<BodyError>(&tags)) return std::move(*e);
    op.if_match = std::move(std::get<std::string>(tags));
  }
  if (j.contains("if_none_match")) {
    const auto& v = j.at("if_none_match");
    if (!v.is_string() || v.get<std::string>() != "*") {
      return FieldError(where + "\"if_none_match\" may only be \"*\"");
    }
    op.if_none_match = true;
  }
  return std::nullopt;
}

// One element of "operations"; |where| is "operations[i]: ".
Decoded<BatchOperation> DecodeBatchOperation(const Json& j,
                                             const std::string& where) {
  if (!j.is_object()) {
    return FieldError(where + "each operation must be a JSON object");
  }
  BatchOperation op;
  if (auto e = ReadKindAndFields(j, where, op)) return std::move(*e);
  auto name = StringMember(j, "name", where);
  if (auto* e = std::get_if<BodyError>(&name)) return std::move(*e);
  op.name = std::move(std::get<std::string>(name));
  if (auto e = ReadPreconditions(j, where, op)) return std::move(*e);
  return op;
}

template <typename Integer>
void AppendInteger(std::string& out, Integer value) {
  std::array<char, 24> buf{};
  const auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), value);
  out.append(buf.data(), end);
}

OrderedJson CounterJson(const domain::Counter& counter) {
  OrderedJson j{{"name", counter.name},
                {"value", counter.value},
                {"version", counter.version}};
  if (counter.expires_at_ms != 0) {
    j["expires_at"] = FormatRfc3339Millis(counter.expires_at_ms);
  }
  return j;
}

}  // namespace

Decoded<DeltaBody> DecodeDeltaBody(std::string_view body) {
  DeltaBody out;
  if (body.empty()) return out;
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<BodyError>(&parsed)) return std::move(*e);
  const Json& j = std::get<Json>(parsed);
  if (auto e = OnlyFields(j, {"by", "min", "max", "ttl_seconds"})) {
    return std::move(*e);
  }
  if (auto e =
          ReadDeltaFields(j, {}, out.by, out.min, out.max, out.ttl_seconds)) {
    return std::move(*e);
  }
  return out;
}

Decoded<SetBody> DecodeSetBody(std::string_view body) {
  if (body.empty()) {
    return BodyError{ProblemType::kInvalidJson,
                     "request body must be a JSON object with \"value\""};
  }
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<BodyError>(&parsed)) return std::move(*e);
  const Json& j = std::get<Json>(parsed);
  if (auto e = OnlyFields(j, {"value", "ttl_seconds"})) return std::move(*e);
  auto value = Int64Member(j, "value");
  if (auto* e = std::get_if<BodyError>(&value)) return std::move(*e);
  if (!std::get<std::optional<std::int64_t>>(value)) {
    return FieldError("missing field \"value\"");
  }
  auto ttl = TtlMember(j);
  if (auto* e = std::get_if<BodyError>(&ttl)) return std::move(*e);
  return SetBody{*std::get<std::optional<std::int64_t>>(value),
                 std::get<std::optional<std::uint32_t>>(ttl)};
}

Decoded<std::vector<BatchOperation>> DecodeBatchBody(std::string_view body) {
  if (body.empty()) {
    return BodyError{ProblemType::kInvalidJson,
                     "request body must be a JSON object with \"operations\""};
  }
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<BodyError>(&parsed)) return std::move(*e);
  const Json& j = std::get<Json>(parsed);
  if (auto e = OnlyFields(j, {"operations"})) return std::move(*e);
  const auto it = j.find("operations");
  if (it == j.end() || !it->is_array() || it->empty() ||
      it->size() > domain::kMaxBatchOperations) {
    return FieldError("\"operations\" must be a list of 1 to " +
                      std::to_string(domain::kMaxBatchOperations) +
                      " operations");
  }
  std::vector<BatchOperation> ops;
  ops.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    Decoded<BatchOperation> op = DecodeBatchOperation(
        (*it)[i], "operations[" + std::to_string(i) + "]: ");
    if (auto* e = std::get_if<BodyError>(&op)) return std::move(*e);
    ops.push_back(std::move(std::get<BatchOperation>(op)));
  }
  return ops;
}

std::string EncodeCounter(const domain::Counter& counter) {
  // The hot path of every read and write: written directly, byte for byte
  // what Dump(CounterJson(counter)) gives. A valid counter name needs no
  // JSON escaping; anything else takes the general path.
  if (!std::all_of(counter.name.begin(), counter.name.end(),
                   domain::IsCounterNameChar)) {
    return Dump(CounterJson(counter));
  }
  std::string out;
  out.reserve(counter.name.size() + 64);
  out.append(R"({"name":")").append(counter.name).append(R"(","value":)");
  AppendInteger(out, counter.value);
  out.append(R"(,"version":)");
  AppendInteger(out, counter.version);
  if (counter.expires_at_ms != 0) {
    out.append(R"(,"expires_at":")")
        .append(FormatRfc3339Millis(counter.expires_at_ms))
        .push_back('"');
  }
  out.push_back('}');
  return out;
}

std::string EncodeBatchResults(const std::vector<domain::OpResult>& results) {
  std::string out = R"({"results":[)";
  bool first = true;
  for (const domain::OpResult& r : results) {
    if (!first) out.push_back(',');
    first = false;
    out += r.counter ? EncodeCounter(*r.counter) : "null";
  }
  out += "]}";
  return out;
}

std::string FormatRfc3339Millis(std::int64_t ms_since_epoch) {
  const std::chrono::sys_time<std::chrono::milliseconds> t{
      std::chrono::milliseconds(ms_since_epoch)};
  const auto days = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{t - days};
  std::array<char, 40> buf{};
  const int n = std::snprintf(
      buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()),
      static_cast<int>(hms.subseconds().count()));
  return {buf.data(), static_cast<std::size_t>(n)};
}

std::string EncodeCounterPage(const service::ListPage& page) {
  OrderedJson counters = OrderedJson::array();
  for (const domain::Counter& c : page.counters) {
    counters.push_back(CounterJson(c));
  }
  OrderedJson j{{"counters", std::move(counters)}, {"next", nullptr}};
  if (page.next) j["next"] = *page.next;
  return Dump(j);
}

std::string EncodeProblem(const Problem& problem) {
  OrderedJson j{{"type", problem.TypeUri()},
                {"title", problem.Title()},
                {"status", problem.status},
                {"detail", problem.detail},
                {"instance", problem.instance}};
  if (problem.operation) j["operation"] = *problem.operation;
  return Dump(j);
}

std::string EncodeServiceInfo(const ServiceInfo& info) {
  return Dump(OrderedJson{{"name", info.name},
                          {"version", info.version},
                          {"hostname", info.hostname},
                          {"uptime_seconds", info.uptime_seconds},
                          {"started_at", info.started_at}});
}

std::string EncodeHealth(std::string_view status) {
  return Dump(OrderedJson{{"status", status}});
}

}  // namespace counterd::http
