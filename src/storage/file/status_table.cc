#include "status_table.h"

#include <array>
#include <utility>

namespace counterd::storage {
namespace {

using domain::OpKind;

// The persisted byte of every status code. Entry i is the code stored as
// byte i; bytes are never reused.
constexpr std::array<StatusCode, 12> kStatusByByte = {
    StatusCode::kOk,                  // 0
    StatusCode::kInvalidArgument,     // 1
    StatusCode::kNotFound,            // 2
    StatusCode::kFailedPrecondition,  // 3
    StatusCode::kOutOfRange,          // 4
    StatusCode::kAborted,             // 5
    StatusCode::kAlreadyExists,       // 6
    StatusCode::kResourceExhausted,   // 7
    StatusCode::kUnavailable,         // 8
    StatusCode::kDataLoss,            // 9
    StatusCode::kInternal,            // 10
    StatusCode::kLimitExceeded,       // 11
};
// Pinned: these bytes are in journal files in the field.
static_assert(kStatusByByte[0] == StatusCode::kOk);
static_assert(kStatusByByte[2] == StatusCode::kNotFound);
static_assert(kStatusByByte[3] == StatusCode::kFailedPrecondition);
static_assert(kStatusByByte[4] == StatusCode::kOutOfRange);
static_assert(kStatusByByte[6] == StatusCode::kAlreadyExists);
static_assert(kStatusByByte[10] == StatusCode::kInternal);
static_assert(kStatusByByte[11] == StatusCode::kLimitExceeded);

// Every StatusCode has a byte: the table covers the enum (its last
// enumerator is kLimitExceeded, and codes are dense from kOk).
constexpr bool CoversAllCodes() {
  for (int c = 0; c <= static_cast<int>(StatusCode::kLimitExceeded); ++c) {
    bool found = false;
    for (const StatusCode s : kStatusByByte) {
      found = found || static_cast<int>(s) == c;
    }
    if (!found) return false;
  }
  return true;
}
static_assert(CoversAllCodes(), "a StatusCode has no persisted byte");

constexpr std::array<std::pair<OpKind, std::string_view>, 5> kOpKinds = {{
    {OpKind::kGet, "get"},             // 0
    {OpKind::kSet, "set"},             // 1
    {OpKind::kAdd, "increment"},       // 2
    {OpKind::kSubtract, "decrement"},  // 3
    {OpKind::kDelete, "delete"},       // 4
}};
static_assert(kOpKinds[2].first == OpKind::kAdd);
static_assert(kOpKinds[3].first == OpKind::kSubtract);

}  // namespace

std::uint8_t PersistedStatus(StatusCode code) {
  for (std::size_t i = 0; i < kStatusByByte.size(); ++i) {
    if (kStatusByByte[i] == code) return static_cast<std::uint8_t>(i);
  }
  return PersistedStatus(StatusCode::kInternal);  // unreachable: see above
}

std::optional<StatusCode> StatusFromPersisted(std::uint8_t byte) {
  if (byte >= kStatusByByte.size()) return std::nullopt;
  return kStatusByByte[byte];
}

std::optional<StatusCode> StatusFromName(std::string_view name) {
  for (const StatusCode code : kStatusByByte) {
    if (StatusCodeName(code) == name) return code;
  }
  return std::nullopt;
}

std::uint8_t PersistedOpKind(OpKind kind) {
  for (std::size_t i = 0; i < kOpKinds.size(); ++i) {
    if (kOpKinds[i].first == kind) return static_cast<std::uint8_t>(i);
  }
  return 0;  // unreachable: every kind is in the table
}

std::optional<OpKind> OpKindFromPersisted(std::uint8_t byte) {
  if (byte >= kOpKinds.size()) return std::nullopt;
  return kOpKinds[byte].first;
}

std::string_view OpKindName(OpKind kind) {
  return kOpKinds[PersistedOpKind(kind)].second;
}

std::optional<OpKind> OpKindFromName(std::string_view name) {
  for (const auto& [kind, spelling] : kOpKinds) {
    if (spelling == name) return kind;
  }
  return std::nullopt;
}

}  // namespace counterd::storage
