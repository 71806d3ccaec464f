#include "counterd/service/mutation_rules.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <utility>

namespace counterd::service {
namespace {

using domain::Counter;
using domain::Operation;
using domain::OpKind;
using domain::OpResult;
using domain::TransactionOutcome;

constexpr std::int64_t kMillisPerSecond = 1000;

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

// RFC 9110 section 13.2.2: If-Match fails on a missing counter;
// If-None-Match: * fails on an existing one. |live| is the counter if it
// exists and has not expired.
Status CheckPrecondition(const domain::Precondition& pre,
                         const std::string& name,
                         const std::optional<Counter>& live) {
  if (pre.must_be_absent && live) {
    return Status::FailedPrecondition("counter " + Quoted(name) +
                                      " already exists (If-None-Match: *)");
  }
  if ((pre.must_exist || !pre.version_in.empty()) && !live) {
    return Status::FailedPrecondition("counter " + Quoted(name) +
                                      " does not exist (If-Match)");
  }
  if (!pre.version_in.empty() &&
      std::find(pre.version_in.begin(), pre.version_in.end(), live->version) ==
          pre.version_in.end()) {
    return Status::FailedPrecondition(
        "counter " + Quoted(name) + " is at version " +
        std::to_string(live->version) + ", not the one If-Match names");
  }
  return Status::Ok();
}

std::int64_t ExpiryFrom(std::int64_t now_ms, std::uint32_t ttl_seconds) {
  return now_ms + static_cast<std::int64_t>(ttl_seconds) * kMillisPerSecond;
}

const char* Verb(OpKind kind) {
  return kind == OpKind::kAdd ? "incrementing" : "decrementing";
}

// The result of adding or subtracting, or why it is refused: kOutOfRange
// when it leaves int64, kLimitExceeded when it leaves [min, max].
Result<std::int64_t> Delta(const Operation& op,
                           const std::optional<Counter>& live) {
  const std::string& name = op.name.str();
  const std::int64_t value = live ? live->value : 0;
  std::int64_t result = 0;
  const bool overflow =
      op.kind == OpKind::kAdd
          ? __builtin_add_overflow(value, op.operand, &result)
          : __builtin_sub_overflow(value, op.operand, &result);
  const std::string what = std::string(Verb(op.kind)) + " counter " +
                           Quoted(name) + " (value " + std::to_string(value) +
                           ") by " + std::to_string(op.operand);
  if (overflow) {
    return Status::OutOfRange(what +
                              " would leave the int64 range; nothing changed");
  }
  if (op.max && result > *op.max) {
    return Status::LimitExceeded(what + " would pass its maximum " +
                                 std::to_string(*op.max) + "; nothing changed");
  }
  if (op.min && result < *op.min) {
    return Status::LimitExceeded(what + " would go below its minimum " +
                                 std::to_string(*op.min) + "; nothing changed");
  }
  return result;
}

// The rows one transaction has changed so far, over the working set: what
// its later operations see, and what it writes if none is refused.
class Overlay {
 public:
  Overlay(const WorkingSet& ws, std::int64_t now_ms)
      : ws_(ws), now_ms_(now_ms) {}

  // The counter as the next operation sees it: nullopt if absent or
  // expired.
  std::optional<Counter> Live(const std::string& name) const {
    const auto it = changed_.find(name);
    const std::optional<Counter>& row =
        it != changed_.end() ? it->second : ws_.Row(name);
    if (!row || row->ExpiredAt(now_ms_)) return std::nullopt;
    return row;
  }
  void Set(const std::string& name, std::optional<Counter> row) {
    if (changed_.insert_or_assign(name, std::move(row)).second) {
      order_.push_back(name);
    }
  }
  void WriteTo(WorkingSet& ws) {
    for (const std::string& name : order_) {
      ws.SetRow(name, std::move(changed_.at(name)));
    }
  }

 private:
  const WorkingSet& ws_;
  const std::int64_t now_ms_;
  std::map<std::string, std::optional<Counter>, std::less<>> changed_;
  std::vector<std::string> order_;
};

// Applies one operation to |overlay|, or says why it is refused.
Result<OpResult> ApplyOperation(const Operation& op, Overlay& overlay,
                                std::int64_t now_ms) {
  const std::string& name = op.name.str();
  const std::optional<Counter> live = overlay.Live(name);
  COUNTERD_RETURN_IF_ERROR(CheckPrecondition(op.precondition, name, live));
  const std::uint64_t next_version = live ? live->version + 1 : 1;

  OpResult result;
  switch (op.kind) {
    case OpKind::kGet:
      result.counter = live;
      return result;
    case OpKind::kSet:
      result.counter =
          Counter{name, op.operand, next_version,
                  op.ttl_seconds ? ExpiryFrom(now_ms, *op.ttl_seconds) : 0};
      break;
    case OpKind::kAdd:
    case OpKind::kSubtract: {
      Result<std::int64_t> value = Delta(op, live);
      if (!value) return value.error();
      // A window's expiry is set by the operation that creates the counter
      // and kept by every later one, so a live counter ignores ttl_seconds.
      std::int64_t expires_at_ms = 0;
      if (live) {
        expires_at_ms = live->expires_at_ms;
      } else if (op.ttl_seconds) {
        expires_at_ms = ExpiryFrom(now_ms, *op.ttl_seconds);
      }
      result.counter = Counter{name, *value, next_version, expires_at_ms};
      break;
    }
    case OpKind::kDelete:
      if (!live) {
        return Status::NotFound("counter " + Quoted(name) + " does not exist");
      }
      overlay.Set(name, std::nullopt);
      return result;
  }
  result.created = !live;
  overlay.Set(name, result.counter);
  return result;
}

TransactionOutcome Decide(const domain::Transaction& tx, WorkingSet& ws,
                          std::int64_t now_ms) {
  TransactionOutcome outcome;
  Overlay overlay(ws, now_ms);
  outcome.results.reserve(tx.ops.size());
  for (std::size_t i = 0; i < tx.ops.size(); ++i) {
    Result<OpResult> result = ApplyOperation(tx.ops[i], overlay, now_ms);
    if (!result) {
      // All or nothing: the overlay is dropped, no row changes.
      TransactionOutcome refused = domain::Refusal(result.error());
      refused.failed_op = static_cast<std::uint32_t>(i);
      refused.current = overlay.Live(tx.ops[i].name.str());
      return refused;
    }
    outcome.results.push_back(std::move(*result));
  }
  overlay.WriteTo(ws);
  return outcome;
}

}  // namespace

// -- WorkingSet ---------------------------------------------------------------

std::string WorkingSet::RecordKey(std::string_view scope,
                                  std::string_view key) {
  // Length-prefixed, so no scope/key pair can collide with another.
  std::string out = std::to_string(scope.size());
  out += ':';
  out += scope;
  out += key;
  return out;
}

std::vector<std::string> WorkingSet::MissingCounters(
    const domain::Transaction& tx) const {
  std::vector<std::string> missing;
  for (const Operation& op : tx.ops) {
    const std::string& name = op.name.str();
    if (!rows_.contains(name) &&
        std::find(missing.begin(), missing.end(), name) == missing.end()) {
      missing.push_back(name);
    }
  }
  return missing;
}

bool WorkingSet::NeedsIdempotency(const domain::Transaction& tx) const {
  return tx.idempotency &&
         !records_.contains(
             RecordKey(tx.idempotency->scope, tx.idempotency->key.str()));
}

void WorkingSet::SeedCounter(std::string_view name,
                             std::optional<domain::Counter> row) {
  rows_.try_emplace(std::string(name), Slot{std::move(row), false});
}

void WorkingSet::SeedIdempotency(
    const domain::IdempotencyIntent& intent,
    const std::optional<domain::IdempotencyRecord>& record) {
  records_.try_emplace(RecordKey(intent.scope, intent.key.str()), record);
}

std::vector<WorkingSet::CounterWrite> WorkingSet::CounterWrites() const {
  std::vector<CounterWrite> writes;
  writes.reserve(dirty_order_.size());
  for (const std::string& name : dirty_order_) {
    writes.push_back({name, rows_.find(name)->second.row});
  }
  return writes;
}

const std::optional<domain::Counter>& WorkingSet::Row(
    std::string_view name) const {
  const auto it = rows_.find(name);
  assert(it != rows_.end() && "WorkingSet::Row of an unseeded name");
  return it->second.row;
}

void WorkingSet::SetRow(std::string_view name,
                        std::optional<domain::Counter> row) {
  auto it = rows_.find(name);
  assert(it != rows_.end() && "WorkingSet::SetRow of an unseeded name");
  it->second.row = std::move(row);
  if (!it->second.dirty) {
    it->second.dirty = true;
    dirty_order_.emplace_back(name);
  }
}

const domain::IdempotencyRecord* WorkingSet::Record(
    const domain::IdempotencyIntent& intent) const {
  const auto it = records_.find(RecordKey(intent.scope, intent.key.str()));
  assert(it != records_.end() && "WorkingSet::Record of an unseeded key");
  return it->second ? &*it->second : nullptr;
}

void WorkingSet::AddRecord(domain::IdempotencyRecord record) {
  records_.insert_or_assign(RecordKey(record.scope, record.key), record);
  idempotency_writes_.push_back(std::move(record));
}

// -- MutationRules
// --------------------------------------------------------------

TransactionOutcome MutationRules::Apply(const domain::Transaction& tx,
                                        WorkingSet& ws, std::int64_t now_ms) {
  assert(!tx.ops.empty());
  if (!tx.idempotency) return Decide(tx, ws, now_ms);

  const domain::IdempotencyIntent& intent = *tx.idempotency;
  domain::Fingerprint fingerprint = tx.MakeFingerprint();
  if (const domain::IdempotencyRecord* record = ws.Record(intent)) {
    if (record->request.Matches(fingerprint)) {
      TransactionOutcome replay = record->outcome;
      replay.replayed = true;
      return replay;
    }
    return domain::Refusal(Status::AlreadyExists(
        "this Idempotency-Key was already used for a different request"));
  }
  TransactionOutcome outcome = Decide(tx, ws, now_ms);
  // The outcome is stored with the change it describes, in the same commit,
  // so a retry after a crash sees both or neither.
  ws.AddRecord(domain::IdempotencyRecord{
      intent.scope, intent.key.str(), std::move(fingerprint), now_ms, outcome});
  return outcome;
}

}  // namespace counterd::service
