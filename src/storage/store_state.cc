#include "store_state.h"

#include <utility>

namespace counterd::storage {
namespace {

std::int64_t ToMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             t.time_since_epoch())
      .count();
}

}  // namespace

bool StoreState::IsExpired(const IdempotencyRecord& r,
                           std::chrono::system_clock::time_point now) const {
  return r.created_at_ms + retention_.count() <= ToMillis(now);
}

void StoreState::Apply(const Effect& effect) {
  if (const auto* put = std::get_if<PutCounter>(&effect)) {
    const domain::Counter& c = put->counter;
    if (const auto* found = index_.Find(c.name)) {
      (*found)->second = Entry{c.value, c.version};
      return;
    }
    index_.Insert(counters_.emplace(c.name, Entry{c.value, c.version}).first);
  } else if (const auto* del = std::get_if<DeleteCounter>(&effect)) {
    if (const auto* found = index_.Find(del->name)) {
      const CounterMap::iterator it = *found;
      index_.Erase(del->name);  // while the key it compares against exists
      counters_.erase(it);
    }
  } else {
    const IdempotencyRecord& r = std::get<PutIdempotency>(effect).record;
    idempotency_order_.emplace_back(r.created_at_ms, r.key);
    idempotency_.insert_or_assign(r.key, r);
  }
}

void StoreState::LoadSnapshot(SnapshotData&& snapshot) {
  index_.Clear();
  counters_.clear();
  index_.Reserve(snapshot.counters.size());
  // The snapshot is sorted, so each insert goes at the end in O(1).
  for (domain::Counter& c : snapshot.counters) {
    const auto it = counters_.emplace_hint(counters_.end(), std::move(c.name),
                                           Entry{c.value, c.version});
    index_.Insert(it);
  }
  idempotency_.clear();
  idempotency_order_.clear();
  for (IdempotencyRecord& r : snapshot.idempotency) {
    Apply(PutIdempotency{std::move(r)});
  }
}

SnapshotData StoreState::ToSnapshot(
    std::uint64_t last_seq, std::chrono::system_clock::time_point now) const {
  SnapshotData snapshot;
  snapshot.last_seq = last_seq;
  snapshot.counters.reserve(counters_.size());
  for (const auto& [name, entry] : counters_) {
    snapshot.counters.push_back({name, entry.value, entry.version});
  }
  for (const auto& [created, key] : idempotency_order_) {
    const auto it = idempotency_.find(key);
    // Skip order entries superseded by a later record under the same key.
    if (it == idempotency_.end() || it->second.created_at_ms != created ||
        IsExpired(it->second, now)) {
      continue;
    }
    snapshot.idempotency.push_back(it->second);
  }
  return snapshot;
}

std::optional<domain::Counter> StoreState::FindCounter(
    std::string_view name) const {
  const auto* found = index_.Find(name);
  if (found == nullptr) return std::nullopt;
  const auto& [key, entry] = **found;
  return domain::Counter{key, entry.value, entry.version};
}

std::vector<domain::Counter> StoreState::List(std::string_view prefix,
                                              std::string_view after,
                                              std::size_t limit) const {
  auto it = counters_.lower_bound(prefix);
  if (!after.empty() && after >= prefix) it = counters_.upper_bound(after);
  std::vector<domain::Counter> out;
  for (; it != counters_.end() && out.size() < limit; ++it) {
    if (!std::string_view(it->first).starts_with(prefix)) break;
    out.push_back({it->first, it->second.value, it->second.version});
  }
  return out;
}

const IdempotencyRecord* StoreState::FindIdempotency(
    std::string_view key, std::chrono::system_clock::time_point now) const {
  const auto it = idempotency_.find(std::string(key));
  if (it == idempotency_.end() || IsExpired(it->second, now)) return nullptr;
  return &it->second;
}

void StoreState::PruneExpired(std::chrono::system_clock::time_point now) {
  const std::int64_t cutoff = ToMillis(now) - retention_.count();
  while (!idempotency_order_.empty() &&
         idempotency_order_.front().first <= cutoff) {
    const auto& [created, key] = idempotency_order_.front();
    const auto it = idempotency_.find(key);
    if (it != idempotency_.end() && it->second.created_at_ms == created) {
      idempotency_.erase(it);
    }
    idempotency_order_.pop_front();
  }
}

std::optional<domain::Counter> BatchView::FindCounter(
    std::string_view name) const {
  if (const auto it = counters_.find(name); it != counters_.end()) {
    return it->second;
  }
  return base_.FindCounter(name);
}

const IdempotencyRecord* BatchView::FindIdempotency(
    std::string_view key) const {
  if (const auto it = idempotency_.find(key); it != idempotency_.end()) {
    return &it->second;
  }
  return base_.FindIdempotency(key, now_);
}

void BatchView::Apply(const Effect& effect) {
  if (const auto* put = std::get_if<PutCounter>(&effect)) {
    counters_.insert_or_assign(put->counter.name, put->counter);
  } else if (const auto* del = std::get_if<DeleteCounter>(&effect)) {
    counters_.insert_or_assign(del->name, std::nullopt);
  } else {
    const IdempotencyRecord& r = std::get<PutIdempotency>(effect).record;
    idempotency_.insert_or_assign(r.key, r);
  }
}

}  // namespace counterd::storage
