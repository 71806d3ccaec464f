#include "fake_counter_store.h"

#include <variant>

namespace counterd::testing {

class FakeCounterStore::View final : public storage::StateView {
 public:
  explicit View(const FakeCounterStore& store) : store_(store) {}
  std::optional<domain::Counter> FindCounter(
      std::string_view name) const override {
    return store_.Get(name);
  }
  const storage::IdempotencyRecord* FindIdempotency(
      std::string_view key) const override {
    const auto it = store_.keys_.find(key);
    return it == store_.keys_.end() ? nullptr : &it->second;
  }
  std::chrono::system_clock::time_point Now() const override {
    return store_.now;
  }

 private:
  const FakeCounterStore& store_;
};

FakeCounterStore::FakeCounterStore()
    : batch_sizes_(Histogram::BatchSizeBounds()),
      fsync_seconds_(Histogram::LatencySecondsBounds()) {}

std::optional<domain::Counter> FakeCounterStore::Get(
    std::string_view name) const {
  const auto it = counters_.find(name);
  if (it == counters_.end()) return std::nullopt;
  return it->second;
}

std::vector<domain::Counter> FakeCounterStore::List(std::string_view prefix,
                                                    std::string_view after,
                                                    std::size_t limit) const {
  std::vector<domain::Counter> out;
  for (auto it = counters_.upper_bound(after);
       it != counters_.end() && out.size() < limit; ++it) {
    if (it->first.starts_with(prefix)) out.push_back(it->second);
  }
  return out;
}

std::optional<storage::IdempotencyRecord> FakeCounterStore::FindIdempotency(
    std::string_view key) const {
  const auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void FakeCounterStore::Submit(storage::Planner planner,
                              storage::Completion done) {
  if (!health.ok()) {
    done(domain::MutationOutcome{health, std::nullopt, false, false});
    return;
  }
  if (hold_commits) {
    pending_.emplace_back(std::move(planner), std::move(done));
    return;
  }
  Commit(planner, done);
}

std::size_t FakeCounterStore::CommitPendingBatch() {
  std::size_t n = 0;
  while (!pending_.empty()) {
    auto [planner, done] = std::move(pending_.front());
    pending_.pop_front();
    Commit(planner, done);
    ++n;
  }
  return n;
}

void FakeCounterStore::Commit(storage::Planner& planner,
                              storage::Completion& done) {
  storage::Plan plan = planner(View(*this));
  for (storage::Effect& effect : plan.effects) {
    if (auto* put = std::get_if<storage::PutCounter>(&effect)) {
      counters_[put->counter.name] = put->counter;
    } else if (auto* del = std::get_if<storage::DeleteCounter>(&effect)) {
      counters_.erase(del->name);
    } else if (auto* key = std::get_if<storage::PutIdempotency>(&effect)) {
      keys_[key->record.key] = key->record;
    }
  }
  if (!plan.effects.empty()) {
    ++mutations_;
    batch_sizes_.Observe(1);
    fsync_seconds_.Observe(0.001);
  }
  done(std::move(plan.outcome));
}

Status FakeCounterStore::Close() {
  CommitPendingBatch();
  return Status::Ok();
}

storage::StoreStats FakeCounterStore::Stats() const {
  storage::StoreStats stats;
  stats.counters = counters_.size();
  stats.idempotency_keys = keys_.size();
  stats.mutations = mutations_;
  stats.commits = mutations_;
  stats.fsyncs = mutations_;
  stats.journal_bytes = 100 * mutations_;
  stats.failed = !health.ok();
  return stats;
}

}  // namespace counterd::testing
