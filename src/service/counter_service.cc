#include "counterd/service/counter_service.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

namespace counterd::service {
namespace {

using domain::Counter;
using domain::MutationOutcome;
using storage::Effect;
using storage::Plan;
using storage::StateView;

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

// RFC 9110 section 13.2.2: If-Match fails on a missing counter;
// If-None-Match: * fails on an existing one.
Status CheckPrecondition(const domain::Precondition& pre,
                         const std::string& name,
                         const std::optional<Counter>& current) {
  if (pre.must_be_absent && current) {
    return Status::FailedPrecondition("counter " + Quoted(name) +
                                      " already exists (If-None-Match: *)");
  }
  if ((pre.must_exist || !pre.version_in.empty()) && !current) {
    return Status::FailedPrecondition("counter " + Quoted(name) +
                                      " does not exist (If-Match)");
  }
  if (!pre.version_in.empty() &&
      std::find(pre.version_in.begin(), pre.version_in.end(),
                current->version) == pre.version_in.end()) {
    return Status::FailedPrecondition(
        "counter " + Quoted(name) + " is at version " +
        std::to_string(current->version) + ", not the one If-Match names");
  }
  return Status::Ok();
}

// The new value, or kOutOfRange if it leaves int64 (nothing changes then).
Result<std::int64_t> Apply(MutationRequest::Kind kind, const std::string& name,
                           std::int64_t value, std::int64_t operand) {
  std::int64_t result = 0;
  const bool overflow = kind == MutationRequest::Kind::kAdd
                            ? __builtin_add_overflow(value, operand, &result)
                            : __builtin_sub_overflow(value, operand, &result);
  if (overflow) {
    return Status::OutOfRange(
        std::string(kind == MutationRequest::Kind::kAdd ? "incrementing"
                                                        : "decrementing") +
        " counter " + Quoted(name) + " (value " + std::to_string(value) +
        ") by " + std::to_string(operand) +
        " would leave the int64 range; nothing changed");
  }
  return result;
}

MutationOutcome Decide(const MutationRequest& request, const StateView& view,
                       std::vector<Effect>& effects) {
  const std::string& name = request.name.str();
  const std::optional<Counter> current = view.FindCounter(name);
  MutationOutcome outcome;
  outcome.status = CheckPrecondition(request.precondition, name, current);
  if (!outcome.status.ok()) return outcome;

  const std::uint64_t next_version = current ? current->version + 1 : 1;
  switch (request.kind) {
    case MutationRequest::Kind::kSet:
      outcome.counter = Counter{name, request.operand, next_version};
      break;
    case MutationRequest::Kind::kAdd:
    case MutationRequest::Kind::kSubtract: {
      auto value = Apply(request.kind, name, current ? current->value : 0,
                         request.operand);
      if (!value) {
        outcome.status = value.error();
        return outcome;
      }
      outcome.counter = Counter{name, *value, next_version};
      break;
    }
    case MutationRequest::Kind::kDelete:
      if (!current) {
        outcome.status =
            Status::NotFound("counter " + Quoted(name) + " does not exist");
        return outcome;
      }
      effects.emplace_back(storage::DeleteCounter{name});
      return outcome;
  }
  outcome.created = !current;
  effects.emplace_back(storage::PutCounter{*outcome.counter});
  return outcome;
}

MutationOutcome Replay(const storage::IdempotencyRecord& record,
                       const std::string& fingerprint) {
  MutationOutcome outcome;
  if (record.fingerprint != fingerprint) {
    outcome.status = Status::AlreadyExists(
        "this Idempotency-Key was already used for a different request (" +
        record.fingerprint + ")");
    return outcome;
  }
  outcome = record.outcome;
  outcome.replayed = true;
  return outcome;
}

// Runs on the thread holding the store's committer role, in order, against
// committed state plus the batch's earlier effects.
Plan PlanMutation(const MutationRequest& request, const StateView& view) {
  Plan plan;
  if (request.idempotency) {
    const IdempotencyIntent& intent = *request.idempotency;
    if (const auto* record = view.FindIdempotency(intent.StoredKey())) {
      plan.outcome = Replay(*record, intent.fingerprint);
      return plan;
    }
  }
  plan.outcome = Decide(request, view, plan.effects);
  if (request.idempotency) {
    // The outcome is journaled with the change it describes, in the same
    // record, so a retry after a crash sees both or neither.
    storage::IdempotencyRecord record;
    record.key = request.idempotency->StoredKey();
    record.fingerprint = request.idempotency->fingerprint;
    record.created_at_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            view.Now().time_since_epoch())
            .count();
    record.outcome = plan.outcome;
    plan.effects.emplace_back(storage::PutIdempotency{std::move(record)});
  }
  return plan;
}

}  // namespace

std::string IdempotencyIntent::StoredKey() const {
  if (scope.empty()) return key.str();
  std::string stored;
  stored.reserve(scope.size() + 1 + key.str().size());
  stored.append(scope).push_back('\x1f');
  stored.append(key.str());
  return stored;
}

CounterService::CounterService(storage::CounterStore& store) : store_(store) {}

Result<Counter> CounterService::Get(const domain::CounterName& name) const {
  if (auto counter = store_.Get(name.str())) return std::move(*counter);
  return Status::NotFound("counter " + Quoted(name.str()) + " does not exist");
}

Counter CounterService::GetDefault() const {
  const domain::CounterName name = domain::CounterName::Default();
  if (auto counter = store_.Get(name.str())) return std::move(*counter);
  return Counter{name.str(), 0, 0};
}

ListPage CounterService::List(const ListQuery& query) const {
  const std::size_t limit =
      std::clamp<std::size_t>(query.limit, 1, ListQuery::kMaxLimit);
  ListPage page;
  page.counters = store_.List(query.prefix, query.after, limit + 1);
  if (page.counters.size() > limit) {
    page.counters.pop_back();
    page.next = page.counters.back().name;
  }
  return page;
}

void CounterService::Mutate(MutationRequest request, Callback done) {
  std::optional<std::string> key;
  if (request.idempotency) {
    const IdempotencyIntent& intent = *request.idempotency;
    // A finished request is answered from the committed table at once.
    const std::string stored_key = intent.StoredKey();
    if (auto record = store_.FindIdempotency(stored_key)) {
      done(Replay(*record, intent.fingerprint));
      return;
    }
    std::lock_guard lock(in_flight_mu_);
    if (!in_flight_keys_.insert(stored_key).second) {
      MutationOutcome outcome;
      outcome.status = Status::Aborted(
          "a request with this Idempotency-Key is still in flight; retry "
          "later");
      done(std::move(outcome));
      return;
    }
    key = stored_key;
  }
  store_.Submit(
      [request = std::move(request)](const StateView& view) {
        return PlanMutation(request, view);
      },
      [this, key = std::move(key),
       done = std::move(done)](MutationOutcome outcome) {
        if (key) {
          // Released before answering: a retry that follows the answer
          // finds the committed record, not an in-flight key.
          std::lock_guard lock(in_flight_mu_);
          in_flight_keys_.erase(*key);
        }
        done(std::move(outcome));
      });
}

}  // namespace counterd::service
