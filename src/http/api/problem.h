// Problem details (RFC 9457): every error counterd answers is one of the
// problem types below, sent as application/problem+json. This file also
// holds the one mapping from Status codes to HTTP status codes.
// Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_PROBLEM_H_
#define COUNTERD_HTTP_API_PROBLEM_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "counterd/core/status.h"

namespace counterd::http {

enum class ProblemType {
  kBadRequest,              // 400 malformed HTTP, or a service refusal
  kInvalidJson,             // 400 body is not a JSON object
  kInvalidField,            // 400 unknown, missing or ill-typed field
  kInvalidName,             // 400 counter name rules
  kInvalidQuery,            // 400 bad list parameter
  kInvalidIdempotencyKey,   // 400
  kUnauthorized,            // 401 missing, malformed or unknown bearer token
  kForbidden,               // 403 the token lacks the scope or prefix
  kRouteNotFound,           // 404 no such path
  kNotFound,                // 404 no such counter
  kMethodNotAllowed,        // 405
  kOverflow,                // 409 result outside int64
  kLimitExceeded,           // 409 a bounded change would pass min/max
  kIdempotencyKeyInFlight,  // 409
  kPreconditionFailed,      // 412
  kPayloadTooLarge,         // 413
  kUnsupportedMediaType,    // 415
  kIdempotencyKeyReused,    // 422
  kHeaderTooLarge,          // 431
  kInternal,                // 500
  kNotImplemented,          // 501 unknown method or transfer coding
  kStoreUnavailable,        // 503 store failed closed or closing
  kNotReady,                // 503 /readyz while draining or failed
  kTooManyConnections,      // 503 over --max-connections
  kTooManyWatchers,         // 503 over --max-watchers
  kInsufficientStorage,     // 507
};

struct ProblemTypeInfo {
  std::string_view slug;   // the type URI is kProblemTypePrefix + slug
  std::string_view title;  // fixed per type, as RFC 9457 asks
  unsigned status;
};

inline constexpr std::string_view kProblemTypePrefix = "urn:counterd:problem:";

const ProblemTypeInfo& Describe(ProblemType type);

struct Problem {
  ProblemType type = ProblemType::kInternal;
  unsigned status = 500;
  std::string detail;    // this occurrence, for humans
  std::string instance;  // the request path
  // POST /batch: the 0-based index of the operation that was refused.
  std::optional<std::size_t> operation;

  std::string TypeUri() const;
  std::string_view Title() const { return Describe(type).title; }
};

// The HTTP status for a Status code: the only place this mapping lives.
// REQUIRES: code != kOk.
unsigned HttpStatusFor(StatusCode code);

// The problem type reported for a refusal with |code|.
ProblemType ProblemTypeFor(StatusCode code);

Problem MakeProblem(ProblemType type, std::string detail, std::string instance);
// A problem for a Status the service returned. REQUIRES: !status.ok().
Problem ProblemFromStatus(const Status& status, std::string instance);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_PROBLEM_H_
