#include "support/fake_repository.h"

#include <utility>

#include "counterd/service/mutation_rules.h"

namespace counterd::testing {
namespace {

std::string RecordKey(std::string_view scope, std::string_view key) {
  return std::to_string(scope.size()) + ":" + std::string(scope) +
         std::string(key);
}

}  // namespace

std::int64_t FakeRepository::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock_.Now().time_since_epoch())
      .count();
}

void FakeRepository::Get(
    const domain::CounterName& name,
    storage::Completion<Result<std::optional<domain::Counter>>>& done) {
  if (!health.ok()) return done.Complete(health);
  std::optional<domain::Counter> found;
  {
    MutexLock lock(mu_);
    const auto it = counters_.find(name.str());
    if (it != counters_.end() && !it->second.ExpiredAt(NowMs())) {
      found = it->second;
    }
  }
  done.Complete(std::move(found));
}

void FakeRepository::List(
    const storage::ListRequest& request,
    storage::Completion<Result<storage::CounterList>>& done) {
  if (!health.ok()) return done.Complete(health);
  storage::CounterList list;
  std::vector<domain::Counter>& out = list.counters;
  {
    MutexLock lock(mu_);
    list.seq = seq_;
    auto it = counters_.lower_bound(request.prefix);
    if (!request.after.empty() && request.after >= request.prefix) {
      it = counters_.upper_bound(request.after);
    }
    for (; it != counters_.end() && out.size() < request.limit; ++it) {
      if (!std::string_view(it->first).starts_with(request.prefix)) break;
      if (!it->second.ExpiredAt(NowMs())) out.push_back(it->second);
    }
  }
  done.Complete(std::move(list));
}

void FakeRepository::Commit(
    domain::Transaction tx,
    storage::Completion<domain::TransactionOutcome>& done) {
  if (!health.ok()) return done.Complete(domain::Refusal(health));
  Held held{std::move(tx), &done};
  if (hold_commits) {
    MutexLock lock(mu_);
    held_.push_back(std::move(held));
    return;
  }
  CommitOne(std::move(held));
}

std::size_t FakeRepository::CommitPending() {
  std::deque<Held> held;
  {
    MutexLock lock(mu_);
    held.swap(held_);
  }
  const std::size_t n = held.size();
  for (Held& h : held) CommitOne(std::move(h));
  return n;
}

void FakeRepository::CommitOne(Held held) {
  domain::TransactionOutcome outcome;
  storage::ChangeBatch changes;
  {
    MutexLock lock(mu_);
    outcome = Decide(held.tx, changes);
  }
  held.done->Complete(std::move(outcome));
  if (changes.changes.empty()) return;
  if (hold_changes) {
    MutexLock lock(mu_);
    unpublished_.push_back(std::move(changes));
    return;
  }
  if (sink_ != nullptr) sink_->OnCommitted(changes);
}

std::size_t FakeRepository::PublishPending(std::size_t max) {
  std::deque<storage::ChangeBatch> batches;
  {
    MutexLock lock(mu_);
    while (!unpublished_.empty() && batches.size() < max) {
      batches.push_back(std::move(unpublished_.front()));
      unpublished_.pop_front();
    }
  }
  for (const storage::ChangeBatch& b : batches) {
    if (sink_ != nullptr) sink_->OnCommitted(b);
  }
  return batches.size();
}

domain::TransactionOutcome FakeRepository::Decide(
    const domain::Transaction& tx, storage::ChangeBatch& changes) {
  service::WorkingSet ws;
  for (const std::string& name : ws.MissingCounters(tx)) {
    const auto it = counters_.find(name);
    ws.SeedCounter(
        name, it == counters_.end() ? std::nullopt : std::optional(it->second));
  }
  if (ws.NeedsIdempotency(tx)) {
    const auto& intent = *tx.idempotency;
    const auto it = records_.find(RecordKey(intent.scope, intent.key.str()));
    ws.SeedIdempotency(intent, it == records_.end()
                                   ? std::nullopt
                                   : std::optional(it->second));
  }
  domain::TransactionOutcome outcome =
      service::MutationRules::Apply(tx, ws, NowMs());
  for (const auto& write : ws.CounterWrites()) {
    if (write.row) {
      counters_.insert_or_assign(write.name, *write.row);
    } else {
      counters_.erase(write.name);
    }
    changes.changes.push_back({write.name, write.row});
  }
  for (const auto& record : ws.IdempotencyWrites()) {
    records_.insert_or_assign(RecordKey(record.scope, record.key), record);
  }
  if (outcome.status.ok() && !outcome.replayed && !tx.ReadOnly()) {
    ++mutations_;
  }
  if (!ws.empty()) {
    changes.seq = ++seq_;
    batch_sizes_.Observe(1);
    commit_seconds_.Observe(0);
  }
  return outcome;
}

Status FakeRepository::Health() const { return health; }

std::uint64_t FakeRepository::mutations() const {
  MutexLock lock(mu_);
  return mutations_;
}

storage::RepositoryStats FakeRepository::Stats() const {
  MutexLock lock(mu_);
  storage::RepositoryStats s;
  s.backend = "fake";
  s.counters = counters_.size();
  s.idempotency_keys = records_.size();
  s.mutations = mutations_;
  s.commits = seq_;
  s.fsyncs = seq_;
  s.last_seq = seq_;
  s.failed = !health.ok();
  s.batch_sizes = batch_sizes_.Read();
  s.commit_seconds = commit_seconds_.Read();
  return s;
}

}  // namespace counterd::testing
