// Transaction: the meaning of one client request that reads or changes
// counters, as a declarative value ("increment orders by 5 if at version
// 3"), and its outcome. Handlers build transactions, every storage backend
// commits them through service::MutationRules, and idempotency records keep
// them as the request's fingerprint; nothing here knows HTTP.
// Value types; thread-compatible.
#ifndef COUNTERD_DOMAIN_TRANSACTION_H_
#define COUNTERD_DOMAIN_TRANSACTION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "counterd/core/status.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/counter_name.h"
#include "counterd/domain/idempotency_key.h"

namespace counterd::domain {

enum class OpKind : std::uint8_t {
  kGet,       // read, inside a batch
  kSet,       // PUT: replace the value (create if absent)
  kAdd,       // increment by |operand|
  kSubtract,  // decrement by |operand| (computed exactly, even for INT64_MIN)
  kDelete,
};

// The longest expiry a request may set: one year.
inline constexpr std::uint32_t kMaxTtlSeconds = 31'536'000;

struct Operation {
  OpKind kind = OpKind::kGet;
  CounterName name = CounterName::Default();
  // kSet: the new value; kAdd/kSubtract: the amount; otherwise 0.
  std::int64_t operand = 0;
  Precondition precondition;
  // kAdd/kSubtract: the result must stay within [min, max], else nothing
  // changes (kLimitExceeded). REQUIRES: min <= max when both are set.
  std::optional<std::int64_t> min;
  std::optional<std::int64_t> max;
  // kSet: the counter expires this long after the change (none: it never
  // does). kAdd/kSubtract: applies only when the operation creates the
  // counter (absent or expired); on a live counter it is ignored, which is
  // what makes a fixed window. 1 .. kMaxTtlSeconds.
  std::optional<std::uint32_t> ttl_seconds;

  friend bool operator==(const Operation&, const Operation&) = default;
};

// The Idempotency-Key of a request and who sent it. Keys of different
// scopes (authentication token names; "" without authentication) never
// meet: one caller cannot replay another's answer.
struct IdempotencyIntent {
  std::string scope;
  IdempotencyKey key;

  friend bool operator==(const IdempotencyIntent&,
                         const IdempotencyIntent&) = default;
};

// The semantic identity of a request: what a reuse of its idempotency key
// must match to be a retry rather than a different request.
struct Fingerprint {
  bool batch = false;  // POST /batch answers a list; others one counter
  std::vector<Operation> ops;

  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

inline constexpr std::size_t kMaxBatchOperations = 100;

struct Transaction {
  // Applied in order, each against the state the earlier ones left; all or
  // nothing. 1 .. kMaxBatchOperations operations.
  std::vector<Operation> ops;
  bool batch = false;
  std::optional<IdempotencyIntent> idempotency;

  // True if no operation changes anything (only kGet).
  bool ReadOnly() const;
  Fingerprint MakeFingerprint() const { return Fingerprint{batch, ops}; }
};

// A transaction of one operation.
Transaction SingleOperation(Operation op);

struct OpResult {
  // The counter after the operation: kGet its state, kSet/kAdd/kSubtract
  // the new state; none for kDelete and for a kGet of a missing counter.
  std::optional<Counter> counter;
  bool created = false;  // kSet/kAdd/kSubtract created it (absent/expired)

  friend bool operator==(const OpResult&, const OpResult&) = default;
};

struct TransactionOutcome {
  // OK, or why nothing changed: kFailedPrecondition, kNotFound (delete of
  // a missing counter), kOutOfRange (int64 overflow), kLimitExceeded
  // (bounds), kAlreadyExists (idempotency key reused for a different
  // request), kAborted (same key in flight), kUnavailable /
  // kResourceExhausted (the store cannot write).
  Status status;
  // Which operation was refused (0-based), when one was.
  std::optional<std::uint32_t> failed_op;
  // One per operation when OK.
  std::vector<OpResult> results;
  // The refused operation's counter as it stood (live), when it exists:
  // what a kLimitExceeded answer reports (Retry-After until its expiry).
  std::optional<Counter> current;
  bool replayed = false;  // answered from the idempotency record

  friend bool operator==(const TransactionOutcome&,
                         const TransactionOutcome&) = default;
};

// An outcome that only refuses: |status| must not be OK.
TransactionOutcome Refusal(Status status);

// The stored answer to the first request made with an idempotency key.
struct IdempotencyRecord {
  std::string scope;
  std::string key;
  Fingerprint request;
  std::int64_t created_at_ms = 0;  // wall clock, ms since the Unix epoch
  TransactionOutcome outcome;      // replayed == false

  friend bool operator==(const IdempotencyRecord&,
                         const IdempotencyRecord&) = default;
};

}  // namespace counterd::domain

#endif  // COUNTERD_DOMAIN_TRANSACTION_H_
