// MutationRules: the rules that decide what a transaction does — versions,
// preconditions, int64 overflow, bounds, expiry, idempotent replay — as
// one pure function every storage backend calls on the state it holds
// locked for its commit. The file backend calls it on its in-memory state
// inside a group commit; the PostgreSQL backend on rows it has selected FOR
// UPDATE. So both give the same answer to the same request.
//
// This is service code compiled as a leaf library (counterd::rules, over
// core and domain only) so that storage backends can link it without
// reaching up into the rest of the service layer.
//
// Thread-compatible: a WorkingSet belongs to one commit; Apply is pure.
#ifndef COUNTERD_SERVICE_MUTATION_RULES_H_
#define COUNTERD_SERVICE_MUTATION_RULES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"

namespace counterd::service {

// The state transactions are decided against: the stored row of every
// counter they name and the record of every idempotency key they carry, as
// the backend has them (seeded before Apply), changed in place as each
// transaction is applied, so that the next one in the same commit sees its
// effects. Rows are kept as stored: an expired row stays until a write
// replaces it (the rules treat it as absent).
class WorkingSet {
 public:
  WorkingSet() = default;
  WorkingSet(const WorkingSet&) = delete;
  WorkingSet& operator=(const WorkingSet&) = delete;
  WorkingSet(WorkingSet&&) = default;
  WorkingSet& operator=(WorkingSet&&) = default;
  ~WorkingSet() = default;

  // -- seeding (the backend) -----------------------------------------------
  // Names and keys |tx| needs that are not seeded yet, for a backend that
  // loads them in one go (PostgreSQL: SELECT ... FOR UPDATE in name order).
  std::vector<std::string> MissingCounters(const domain::Transaction& tx) const;
  bool NeedsIdempotency(const domain::Transaction& tx) const;

  // |row| is the stored state (possibly expired), nullopt if none. Seeding a
  // name twice keeps the first.
  void SeedCounter(std::string_view name, std::optional<domain::Counter> row);
  // |record| must be unexpired under the backend's retention.
  void SeedIdempotency(const domain::IdempotencyIntent& intent,
                       const std::optional<domain::IdempotencyRecord>& record);

  // -- what to write (the backend, after Apply) ----------------------------
  struct CounterWrite {
    std::string name;
    std::optional<domain::Counter> row;  // nullopt: delete the row
  };
  // Every counter whose row changed, once, with its final row, in the order
  // of first change; and every idempotency record created, in order.
  std::vector<CounterWrite> CounterWrites() const;
  const std::vector<domain::IdempotencyRecord>& IdempotencyWrites() const {
    return idempotency_writes_;
  }
  bool empty() const {
    return dirty_order_.empty() && idempotency_writes_.empty();
  }

  // -- used by MutationRules ------------------------------------------------
  // REQUIRES: |name| seeded.
  const std::optional<domain::Counter>& Row(std::string_view name) const;
  void SetRow(std::string_view name, std::optional<domain::Counter> row);
  // nullptr if no record. REQUIRES: seeded.
  const domain::IdempotencyRecord* Record(
      const domain::IdempotencyIntent& intent) const;
  void AddRecord(domain::IdempotencyRecord record);

 private:
  struct Slot {
    std::optional<domain::Counter> row;
    bool dirty = false;
  };
  static std::string RecordKey(std::string_view scope, std::string_view key);

  std::map<std::string, Slot, std::less<>> rows_;
  std::vector<std::string> dirty_order_;
  std::map<std::string, std::optional<domain::IdempotencyRecord>, std::less<>>
      records_;
  std::vector<domain::IdempotencyRecord> idempotency_writes_;
};

class MutationRules {
 public:
  // Decides |tx| against |ws| at wall-clock |now_ms| and, unless it is
  // refused, applies its effects to |ws|. All or nothing: a refused
  // transaction changes no row. With an idempotency key:
  //  - a record with the same fingerprint: its outcome, replayed = true;
  //  - a record with another fingerprint: kAlreadyExists;
  //  - no record: the outcome is decided and, whatever it is (refusals
  //    included), stored as the key's record in the same commit.
  // REQUIRES: every name of |tx| and its key seeded; tx.ops non-empty.
  static domain::TransactionOutcome Apply(const domain::Transaction& tx,
                                          WorkingSet& ws, std::int64_t now_ms);
};

}  // namespace counterd::service

#endif  // COUNTERD_SERVICE_MUTATION_RULES_H_
