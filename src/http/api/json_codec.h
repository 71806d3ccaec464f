// JSON in and out of the HTTP layer: decodes request bodies strictly and
// encodes counters, pages, problems and service info. The only file of the
// HTTP layer that sees nlohmann/json; its exceptions stop here.
// Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_JSON_CODEC_H_
#define COUNTERD_HTTP_API_JSON_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/problem.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"
#include "counterd/service/counter_service.h"

namespace counterd::http {

// Why a body was refused: kInvalidJson (not a JSON object) or kInvalidField.
struct BodyError {
  ProblemType type;
  std::string detail;
};
template <typename T>
using Decoded = std::variant<T, BodyError>;

// The body of increment/decrement: empty, or {"by": <int64> (default 1),
// "min": <int64>, "max": <int64>, "ttl_seconds": 1..31536000}, each field
// optional; min <= max.
struct DeltaBody {
  std::int64_t by = 1;
  std::optional<std::int64_t> min;
  std::optional<std::int64_t> max;
  std::optional<std::uint32_t> ttl_seconds;
};
Decoded<DeltaBody> DecodeDeltaBody(std::string_view body);

// The body of PUT: {"value": <int64>, "ttl_seconds": 1..31536000}; value is
// required.
struct SetBody {
  std::int64_t value = 0;
  std::optional<std::uint32_t> ttl_seconds;
};
Decoded<SetBody> DecodeSetBody(std::string_view body);

// One operation of POST /batch, as sent: the name is still unvalidated and
// the preconditions are entity-tag strings, as in the headers.
struct BatchOperation {
  domain::OpKind kind = domain::OpKind::kGet;
  std::string name;
  std::int64_t operand = 0;  // "by" (default 1) or "value"
  std::optional<std::int64_t> min;
  std::optional<std::int64_t> max;
  std::optional<std::uint32_t> ttl_seconds;
  std::optional<std::string> if_match;  // "\"3\"", "*", a list
  bool if_none_match = false;           // "*"
};
// {"operations": [<1..100 operations>]}. Errors name the operation by its
// 0-based index ("operations[2]: ...").
Decoded<std::vector<BatchOperation>> DecodeBatchBody(std::string_view body);

// What GET / reports.
struct ServiceInfo {
  std::string_view name;
  std::string_view version;
  std::string_view hostname;
  std::int64_t uptime_seconds = 0;
  std::string_view started_at;  // RFC 3339
};

// {"name":..., "value":..., "version":...[, "expires_at": RFC 3339]}
std::string EncodeCounter(const domain::Counter& counter);
// {"results": [<counter> | null, ...]} for POST /batch.
std::string EncodeBatchResults(const std::vector<domain::OpResult>& results);
// "2026-12-01T13:00:00.250Z": UTC, millisecond precision.
std::string FormatRfc3339Millis(std::int64_t ms_since_epoch);
// {"counters":[...], "next": "<name>" | null}
std::string EncodeCounterPage(const service::ListPage& page);
// {"type","title","status","detail","instance"[,"operation"]}
std::string EncodeProblem(const Problem& problem);
std::string EncodeServiceInfo(const ServiceInfo& info);
// {"status": "<status>"} for /livez and /readyz.
std::string EncodeHealth(std::string_view status);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_JSON_CODEC_H_
