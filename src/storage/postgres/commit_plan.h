// CommitPlan: what one group commit sends to PostgreSQL, as pure functions
// of the batch and of what MutationRules decided — so the SQL layer's
// planning is unit-tested without a server:
//  - PlanLocks: the rows and idempotency keys a batch needs, names sorted
//    (every replica locks in the same order, so batches do not deadlock);
//  - PlanWrites: each touched row once, as an UPDATE of a row that existed,
//    an INSERT of one that did not (sorted; a concurrent creator makes it
//    fail with unique_violation and the batch is retried, so no creation
//    race loses an update) or a DELETE, plus the idempotency records and
//    the changes to publish;
//  - the queries for both round trips.
#ifndef COUNTERD_STORAGE_POSTGRES_COMMIT_PLAN_H_
#define COUNTERD_STORAGE_POSTGRES_COMMIT_PLAN_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"
#include "counterd/service/mutation_rules.h"
#include "counterd/storage/counter_repository.h"
#include "pg_connection.h"

namespace counterd::storage::postgres {

struct LockPlan {
  std::vector<std::string> names;  // sorted, unique
  // Idempotency keys, unique, in first-seen order (scopes[i], keys[i]).
  std::vector<std::string> scopes;
  std::vector<std::string> keys;
};
LockPlan PlanLocks(std::span<const domain::Transaction* const> batch);

// The first round trip: BEGIN, lock the rows, read the idempotency records
// (after deleting the expired ones of these keys) and the database clock.
// With |rollback_first| it starts with a ROLLBACK of a failed attempt.
struct LockQueries {
  std::vector<PgConnection::Query> queries;
  std::size_t lock_index = 0;  // index of each answer in the reply
  std::optional<std::size_t> records_index;
  std::size_t now_index = 0;
};
LockQueries MakeLockQueries(const LockPlan& plan,
                            std::chrono::milliseconds retention,
                            bool rollback_first);

// The state the first round trip found, to seed a WorkingSet with.
struct LockedState {
  std::vector<domain::Counter> rows;  // the rows that exist (maybe expired)
  std::vector<domain::IdempotencyRecord> records;
  std::int64_t now_ms = 0;
};
// kDataLoss for a malformed row or record, kInternal for an unexpected
// answer shape.
Result<LockedState> ParseLockReply(const LockQueries& queries,
                                   const std::vector<PgResult>& results);
// Seeds |ws| with every name and key of |plan| (absent ones as nullopt).
void Seed(const LockPlan& plan, const LockedState& state,
          service::WorkingSet& ws);

struct WritePlan {
  std::vector<domain::Counter> updates;  // rows that existed
  std::vector<domain::Counter> inserts;  // new rows, sorted by name
  std::vector<std::string> deletes;
  std::vector<domain::IdempotencyRecord> records;
  // What the commit changed, for watchers (published under the commit's
  // sequence number): nullopt state = deleted.
  std::vector<CounterChange> changes;

  bool empty() const { return changes.empty() && records.empty(); }
};
// |existing|: the names whose rows the first round trip found.
WritePlan PlanWrites(const service::WorkingSet& ws,
                     const std::set<std::string, std::less<>>& existing);

// The second round trip: the writes, the publication (when counters
// changed) and COMMIT.
struct WriteQueries {
  std::vector<PgConnection::Query> queries;
  std::optional<std::size_t> publish_index;
  std::size_t commit_index = 0;
};
WriteQueries MakeWriteQueries(const WritePlan& plan);

// Parses rows of (name, value, version, expires_at_ms).
Result<std::vector<domain::Counter>> ParseCounters(const PgResult& result);
// Parses a listing: rows of (seq, name, value, version, expires_at_ms),
// at least one; an empty listing is one row whose name is NULL.
Result<CounterList> ParseCounterList(const PgResult& result);

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_COMMIT_PLAN_H_
