#include "api/json_codec.h"

#include <algorithm>
#include <charconv>
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

// Parses |body| as a JSON object whose only field is |field|, which must be
// an int64. |required| says whether the field may be left out.
IntegerOrError DecodeIntegerField(std::string_view body, std::string_view field,
                                  bool required, std::int64_t fallback) {
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
  for (const auto& [key, value] : j.items()) {
    if (key != field) {
      return BodyError{ProblemType::kInvalidField,
                       "unknown field \"" + key + "\"; only \"" +
                           std::string(field) + "\" is allowed"};
    }
  }
  const auto it = j.find(field);
  if (it == j.end()) {
    if (required) {
      return BodyError{ProblemType::kInvalidField,
                       "missing field \"" + std::string(field) + "\""};
    }
    return fallback;
  }
  // is_number_integer() is true for signed and unsigned integers but not
  // for 1.0 or 1e3, which are floats to nlohmann: all are refused, as are
  // strings like "1".
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u >
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return BodyError{ProblemType::kInvalidField, RangeMessage(field)};
    }
    return static_cast<std::int64_t>(u);
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  return BodyError{ProblemType::kInvalidField, RangeMessage(field)};
}

template <typename Integer>
void AppendInteger(std::string& out, Integer value) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, end);
}

OrderedJson CounterJson(const domain::Counter& counter) {
  return OrderedJson{{"name", counter.name},
                     {"value", counter.value},
                     {"version", counter.version}};
}

}  // namespace

IntegerOrError DecodeDeltaBody(std::string_view body) {
  if (body.empty()) return std::int64_t{1};
  return DecodeIntegerField(body, "by", /*required=*/false, /*fallback=*/1);
}

IntegerOrError DecodeSetBody(std::string_view body) {
  if (body.empty()) {
    return BodyError{ProblemType::kInvalidJson,
                     "request body must be a JSON object with \"value\""};
  }
  return DecodeIntegerField(body, "value", /*required=*/true, /*fallback=*/0);
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
  out.push_back('}');
  return out;
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
  return Dump(OrderedJson{{"type", problem.TypeUri()},
                          {"title", problem.Title()},
                          {"status", problem.status},
                          {"detail", problem.detail},
                          {"instance", problem.instance}});
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
