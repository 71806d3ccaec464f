// The facts the storage engine keeps: counter states and idempotency
// records, and the effects a committed mutation has on them. Value types.
#ifndef COUNTERD_STORAGE_RECORDS_H_
#define COUNTERD_STORAGE_RECORDS_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "counterd/domain/counter.h"

namespace counterd::storage {

// The stored outcome of the first request made with an idempotency key.
struct IdempotencyRecord {
  std::string key;
  std::string fingerprint;  // identifies the request (method, path, body)
  std::int64_t created_at_ms = 0;  // wall clock, ms since the Unix epoch
  domain::MutationOutcome outcome;

  friend bool operator==(const IdempotencyRecord&,
                         const IdempotencyRecord&) = default;
};

// Effects: what one journal record replays. Each states the new fact in
// full (never a delta), so replaying a record twice is harmless.
struct PutCounter {
  domain::Counter counter;
  friend bool operator==(const PutCounter&, const PutCounter&) = default;
};
struct DeleteCounter {
  std::string name;
  friend bool operator==(const DeleteCounter&, const DeleteCounter&) = default;
};
struct PutIdempotency {
  IdempotencyRecord record;
  friend bool operator==(const PutIdempotency&,
                         const PutIdempotency&) = default;
};
using Effect = std::variant<PutCounter, DeleteCounter, PutIdempotency>;

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_RECORDS_H_
