#include "api/problem.h"

#include <utility>

namespace counterd::http {

const ProblemTypeInfo& Describe(ProblemType type) {
  static constexpr ProblemTypeInfo kBadRequest{"bad-request", "Bad request",
                                               400};
  static constexpr ProblemTypeInfo kInvalidJson{
      "invalid-json", "Request body is not a JSON object", 400};
  static constexpr ProblemTypeInfo kInvalidField{
      "invalid-field", "Request body has an invalid field", 400};
  static constexpr ProblemTypeInfo kInvalidName{"invalid-name",
                                                "Invalid counter name", 400};
  static constexpr ProblemTypeInfo kInvalidQuery{
      "invalid-query", "Invalid query parameter", 400};
  static constexpr ProblemTypeInfo kInvalidIdempotencyKey{
      "invalid-idempotency-key", "Invalid Idempotency-Key header", 400};
  static constexpr ProblemTypeInfo kUnauthorized{
      "unauthorized", "Authentication required", 401};
  static constexpr ProblemTypeInfo kForbidden{"forbidden", "Forbidden", 403};
  static constexpr ProblemTypeInfo kRouteNotFound{"route-not-found",
                                                  "No such resource", 404};
  static constexpr ProblemTypeInfo kNotFound{"not-found", "Counter not found",
                                             404};
  static constexpr ProblemTypeInfo kMethodNotAllowed{"method-not-allowed",
                                                     "Method not allowed", 405};
  static constexpr ProblemTypeInfo kOverflow{
      "overflow", "Result would overflow a 64-bit integer", 409};
  static constexpr ProblemTypeInfo kLimitExceeded{
      "limit-exceeded", "Change would pass the counter's limit", 409};
  static constexpr ProblemTypeInfo kInFlight{
      "idempotency-key-in-flight",
      "A request with this Idempotency-Key is still in progress", 409};
  static constexpr ProblemTypeInfo kPreconditionFailed{
      "precondition-failed", "Precondition failed", 412};
  static constexpr ProblemTypeInfo kPayloadTooLarge{
      "payload-too-large", "Request body too large", 413};
  static constexpr ProblemTypeInfo kUnsupportedMediaType{
      "unsupported-media-type", "Unsupported media type", 415};
  static constexpr ProblemTypeInfo kReused{
      "idempotency-key-reused",
      "Idempotency-Key was already used for a different request", 422};
  static constexpr ProblemTypeInfo kHeaderTooLarge{
      "header-too-large", "Request header too large", 431};
  static constexpr ProblemTypeInfo kInternal{"internal",
                                             "Internal server error", 500};
  static constexpr ProblemTypeInfo kNotImplemented{"not-implemented",
                                                   "Not implemented", 501};
  static constexpr ProblemTypeInfo kStoreUnavailable{
      "store-unavailable", "Storage unavailable", 503};
  static constexpr ProblemTypeInfo kNotReady{"not-ready", "Not ready", 503};
  static constexpr ProblemTypeInfo kTooManyConnections{
      "too-many-connections", "Too many connections", 503};
  static constexpr ProblemTypeInfo kTooManyWatchers{"too-many-watchers",
                                                    "Too many watchers", 503};
  static constexpr ProblemTypeInfo kInsufficientStorage{
      "insufficient-storage", "Insufficient storage", 507};

  switch (type) {
    case ProblemType::kBadRequest:
      return kBadRequest;
    case ProblemType::kInvalidJson:
      return kInvalidJson;
    case ProblemType::kInvalidField:
      return kInvalidField;
    case ProblemType::kInvalidName:
      return kInvalidName;
    case ProblemType::kInvalidQuery:
      return kInvalidQuery;
    case ProblemType::kInvalidIdempotencyKey:
      return kInvalidIdempotencyKey;
    case ProblemType::kUnauthorized:
      return kUnauthorized;
    case ProblemType::kForbidden:
      return kForbidden;
    case ProblemType::kRouteNotFound:
      return kRouteNotFound;
    case ProblemType::kNotFound:
      return kNotFound;
    case ProblemType::kMethodNotAllowed:
      return kMethodNotAllowed;
    case ProblemType::kOverflow:
      return kOverflow;
    case ProblemType::kLimitExceeded:
      return kLimitExceeded;
    case ProblemType::kIdempotencyKeyInFlight:
      return kInFlight;
    case ProblemType::kPreconditionFailed:
      return kPreconditionFailed;
    case ProblemType::kPayloadTooLarge:
      return kPayloadTooLarge;
    case ProblemType::kUnsupportedMediaType:
      return kUnsupportedMediaType;
    case ProblemType::kIdempotencyKeyReused:
      return kReused;
    case ProblemType::kHeaderTooLarge:
      return kHeaderTooLarge;
    case ProblemType::kInternal:
      return kInternal;
    case ProblemType::kNotImplemented:
      return kNotImplemented;
    case ProblemType::kStoreUnavailable:
      return kStoreUnavailable;
    case ProblemType::kNotReady:
      return kNotReady;
    case ProblemType::kTooManyConnections:
      return kTooManyConnections;
    case ProblemType::kTooManyWatchers:
      return kTooManyWatchers;
    case ProblemType::kInsufficientStorage:
      return kInsufficientStorage;
  }
  return kInternal;
}

std::string Problem::TypeUri() const {
  std::string uri(kProblemTypePrefix);
  uri += Describe(type).slug;
  return uri;
}

unsigned HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
      return 412;
    case StatusCode::kOutOfRange:
    case StatusCode::kAborted:
    case StatusCode::kLimitExceeded:
      return 409;
    case StatusCode::kAlreadyExists:
      return 422;
    case StatusCode::kResourceExhausted:
      return 507;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kOk:  // a bug in the caller; report it as one
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      break;
  }
  return 500;
}

ProblemType ProblemTypeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return ProblemType::kBadRequest;
    case StatusCode::kNotFound:
      return ProblemType::kNotFound;
    case StatusCode::kFailedPrecondition:
      return ProblemType::kPreconditionFailed;
    case StatusCode::kOutOfRange:
      return ProblemType::kOverflow;
    case StatusCode::kLimitExceeded:
      return ProblemType::kLimitExceeded;
    case StatusCode::kAborted:
      return ProblemType::kIdempotencyKeyInFlight;
    case StatusCode::kAlreadyExists:
      return ProblemType::kIdempotencyKeyReused;
    case StatusCode::kResourceExhausted:
      return ProblemType::kInsufficientStorage;
    case StatusCode::kUnavailable:
      return ProblemType::kStoreUnavailable;
    case StatusCode::kOk:
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
      break;
  }
  return ProblemType::kInternal;
}

Problem MakeProblem(ProblemType type, std::string detail,
                    std::string instance) {
  return Problem{type, Describe(type).status, std::move(detail),
                 std::move(instance), std::nullopt};
}

Problem ProblemFromStatus(const Status& status, std::string instance) {
  return Problem{ProblemTypeFor(status.code()), HttpStatusFor(status.code()),
                 status.message(), std::move(instance), std::nullopt};
}

}  // namespace counterd::http
