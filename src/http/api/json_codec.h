// JSON in and out of the HTTP layer: decodes request bodies strictly and
// encodes counters, pages, problems and service info. The only file of the
// HTTP layer that sees nlohmann/json; its exceptions stop here.
// Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_JSON_CODEC_H_
#define COUNTERD_HTTP_API_JSON_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "api/problem.h"
#include "counterd/domain/counter.h"
#include "counterd/service/counter_service.h"

namespace counterd::http {

// Why a body was refused: kInvalidJson (not a JSON object) or kInvalidField.
struct BodyError {
  ProblemType type;
  std::string detail;
};
using IntegerOrError = std::variant<std::int64_t, BodyError>;

// The body of increment/decrement: empty (by = 1) or {"by": <int64>}.
IntegerOrError DecodeDeltaBody(std::string_view body);
// The body of PUT: {"value": <int64>}; the field is required.
IntegerOrError DecodeSetBody(std::string_view body);

// What GET / reports.
struct ServiceInfo {
  std::string_view name;
  std::string_view version;
  std::string_view hostname;
  std::int64_t uptime_seconds = 0;
  std::string_view started_at;  // RFC 3339
};

// {"name":..., "value":..., "version":...}
std::string EncodeCounter(const domain::Counter& counter);
// {"counters":[...], "next": "<name>" | null}
std::string EncodeCounterPage(const service::ListPage& page);
// {"type","title","status","detail","instance"}
std::string EncodeProblem(const Problem& problem);
std::string EncodeServiceInfo(const ServiceInfo& info);
// {"status": "<status>"} for /livez and /readyz.
std::string EncodeHealth(std::string_view status);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_JSON_CODEC_H_
