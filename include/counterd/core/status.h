// Status: the outcome of an operation that can fail in an expected way.
// A value type; thread-compatible. Modelled on abseil's absl::Status and
// leveldb's Status: a code plus a human-readable message with context
// ("fsync journal-00000000000000000001.log: Input/output error").
#ifndef COUNTERD_CORE_STATUS_H_
#define COUNTERD_CORE_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

namespace counterd {

// The codes counterd uses. Each has one meaning across the layers; the HTTP
// layer maps them to status codes in exactly one function. The numeric
// values are not a storage format: the storage codecs persist codes through
// their own explicit tables.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input (400)
  kNotFound,            // no such counter (404)
  kFailedPrecondition,  // If-Match / If-None-Match did not hold (412)
  kOutOfRange,          // result would leave int64 (409)
  kAborted,             // same idempotency key still in flight (409)
  kAlreadyExists,       // idempotency key reused for another request (422)
  kResourceExhausted,   // ENOSPC and similar (507)
  kUnavailable,         // store failed closed or shutting down (503)
  kDataLoss,            // corrupt state on disk; start-up refused
  kInternal,            // a bug
  kLimitExceeded,       // a bounded increment would pass min/max (409)
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) {
    return {StatusCode::kNotFound, std::move(m)};
  }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status OutOfRange(std::string m) {
    return {StatusCode::kOutOfRange, std::move(m)};
  }
  static Status Aborted(std::string m) {
    return {StatusCode::kAborted, std::move(m)};
  }
  static Status AlreadyExists(std::string m) {
    return {StatusCode::kAlreadyExists, std::move(m)};
  }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) {
    return {StatusCode::kUnavailable, std::move(m)};
  }
  static Status DataLoss(std::string m) {
    return {StatusCode::kDataLoss, std::move(m)};
  }
  static Status Internal(std::string m) {
    return {StatusCode::kInternal, std::move(m)};
  }
  static Status LimitExceeded(std::string m) {
    return {StatusCode::kLimitExceeded, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "CODE: message", or "OK".
  std::string ToString() const;

  // A copy whose message is prefixed with |context| ("recover: " + message).
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace counterd

// Returns early from the enclosing function when |expr| yields a non-OK Status.
#define COUNTERD_RETURN_IF_ERROR(expr)                        \
  do {                                                        \
    if (::counterd::Status status_ = (expr); !status_.ok()) { \
      return status_;                                         \
    }                                                         \
  } while (false)

#endif  // COUNTERD_CORE_STATUS_H_
