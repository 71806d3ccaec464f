// Sample values that use every field the storage formats persist: counters
// with and without expiry at the int64/uint64 edges, and idempotency
// records whose fingerprints hold every operation kind, precondition,
// bound and ttl, and whose outcomes carry every status code. The journal
// and snapshot codec tests round-trip them.
#ifndef COUNTERD_TESTS_UNIT_STORAGE_SAMPLE_RECORDS_H_
#define COUNTERD_TESTS_UNIT_STORAGE_SAMPLE_RECORDS_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "counterd/core/status.h"
#include "counterd/domain/transaction.h"
#include "effects.h"
#include "store_test_util.h"

namespace counterd::storage::testing {

inline constexpr std::int64_t kI64Min =
    std::numeric_limits<std::int64_t>::min();
inline constexpr std::int64_t kI64Max =
    std::numeric_limits<std::int64_t>::max();
inline constexpr std::uint64_t kU64Max =
    std::numeric_limits<std::uint64_t>::max();

// Every StatusCode, kOk first.
inline std::vector<StatusCode> AllStatusCodes() {
  std::vector<StatusCode> out;
  for (int c = 0; c <= static_cast<int>(StatusCode::kLimitExceeded); ++c) {
    out.push_back(static_cast<StatusCode>(c));
  }
  return out;
}

inline std::vector<domain::Counter> SampleCounters() {
  return {
      {"a", kI64Min, 1, 0},
      {"rl:user42", 3, 3, 1'763'683'260'000},
      {"user.42_x-y:z", kI64Max, kU64Max, kI64Max},
      {std::string(domain::CounterName::kMaxLength, 'n'), -1, 2, 1},
  };
}

// A POST /batch fingerprint with every operation kind and every optional
// field of an operation.
inline domain::Fingerprint BatchFingerprint() {
  domain::Fingerprint f;
  f.batch = true;
  f.ops.push_back(GetOp("a"));
  domain::Operation set = SetOp("b", kI64Min);
  set.precondition.version_in = {1, 7, kU64Max};
  set.ttl_seconds = domain::kMaxTtlSeconds;
  f.ops.push_back(set);
  domain::Operation add = AddOp("rl:user42", kI64Max);
  add.precondition.must_exist = true;
  add.min = kI64Min;
  add.max = 100;
  add.ttl_seconds = 1;
  f.ops.push_back(add);
  domain::Operation sub = SubOp("c", kI64Min);
  sub.precondition.must_be_absent = true;
  sub.min = -5;
  sub.ttl_seconds = std::numeric_limits<std::uint32_t>::max();
  f.ops.push_back(sub);
  domain::Operation del = DeleteOp("d");
  del.precondition.version_in = {2};
  del.max = kI64Max;
  f.ops.push_back(del);
  return f;
}

inline std::vector<domain::IdempotencyRecord> SampleIdempotency() {
  std::vector<domain::IdempotencyRecord> out;
  // A single increment, answered OK with a counter it created.
  domain::IdempotencyRecord single;
  single.key = "key-1";
  single.request = Add("a", 1).MakeFingerprint();
  single.created_at_ms = 1'763'683'200'000;
  single.outcome.results.push_back(
      domain::OpResult{domain::Counter{"a", 1, 1, 0}, true});
  out.push_back(single);
  // A batch with results of every shape, under a scope, with a key that
  // needs escaping in JSON.
  domain::IdempotencyRecord batch;
  batch.scope = "tenant \"a\"\\b";
  batch.key = "k\"\\~!";
  batch.request = BatchFingerprint();
  batch.created_at_ms = 0;
  batch.outcome.results = {
      {std::nullopt, false},
      {domain::Counter{"b", kI64Min, 1, 1'763'714'736'000}, true},
      {domain::Counter{"rl:user42", 4, 4, 1'763'683'201'000}, false},
      {domain::Counter{"c", 5, 9, 0}, true},
      {std::nullopt, false},
  };
  out.push_back(batch);
  // A refusal with every status code, the refused operation and the
  // counter as it stood.
  std::int64_t created = 1;
  for (const StatusCode code : AllStatusCodes()) {
    if (code == StatusCode::kOk) continue;
    domain::IdempotencyRecord refused;
    refused.key = "refused-" + std::string(StatusCodeName(code));
    refused.request = Add("x", -9).MakeFingerprint();
    refused.created_at_ms = created++;
    refused.outcome.status =
        Status(code, "why: " + std::string(StatusCodeName(code)));
    refused.outcome.failed_op = code == StatusCode::kAlreadyExists
                                    ? std::nullopt
                                    : std::optional<std::uint32_t>(0);
    if (code == StatusCode::kLimitExceeded || code == StatusCode::kOutOfRange) {
      refused.outcome.current = domain::Counter{"x", kI64Min, 3, 99};
    }
    out.push_back(refused);
  }
  // A refusal with an empty message and the largest op index.
  domain::IdempotencyRecord quiet;
  quiet.key = "quiet";
  quiet.request = BatchFingerprint();
  quiet.created_at_ms = -1;
  quiet.outcome.status = Status(StatusCode::kFailedPrecondition, "");
  quiet.outcome.failed_op = std::numeric_limits<std::uint32_t>::max();
  out.push_back(quiet);
  return out;
}

// Every effect kind, with the values above.
inline std::vector<Effect> SampleEffects() {
  std::vector<Effect> out;
  for (const domain::Counter& c : SampleCounters()) {
    out.emplace_back(PutCounter{c});
  }
  out.emplace_back(DeleteCounter{"gone:1"});
  for (const domain::IdempotencyRecord& r : SampleIdempotency()) {
    out.emplace_back(PutIdempotency{r});
  }
  return out;
}

}  // namespace counterd::storage::testing

#endif  // COUNTERD_TESTS_UNIT_STORAGE_SAMPLE_RECORDS_H_
