// The facts a journal record replays: the effects of one group commit on
// the counters and the idempotency records. Each states the new fact in
// full (never a delta), so replaying a record twice is harmless. Value
// types; thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_EFFECTS_H_
#define COUNTERD_STORAGE_FILE_EFFECTS_H_

#include <string>
#include <variant>

#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"

namespace counterd::storage {

struct PutCounter {
  domain::Counter counter;
  friend bool operator==(const PutCounter&, const PutCounter&) = default;
};
struct DeleteCounter {
  std::string name;
  friend bool operator==(const DeleteCounter&, const DeleteCounter&) = default;
};
struct PutIdempotency {
  domain::IdempotencyRecord record;
  friend bool operator==(const PutIdempotency&,
                         const PutIdempotency&) = default;
};
using Effect = std::variant<PutCounter, DeleteCounter, PutIdempotency>;

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_EFFECTS_H_
