#include "store_state.h"

#include <utility>

namespace counterd::storage {

std::string StoreState::RecordKey(std::string_view scope,
                                  std::string_view key) {
  // Length-prefixed, so no (scope, key) pair can collide with another.
  std::string out = std::to_string(scope.size());
  out += ':';
  out += scope;
  out += key;
  return out;
}

void StoreState::PutCounterEntry(const domain::Counter& c) {
  if (!cursors_.empty()) SaveForCursors(c.name);
  const Entry entry{c.value, c.version, c.expires_at_ms};
  std::int64_t old_expiry = 0;
  if (Entry* found = counters_.Find(c.name)) {
    old_expiry = found->expires_at_ms;
    *found = entry;
  } else {
    counters_.Insert(c.name, entry);
  }
  if (old_expiry != 0) --expiring_;
  if (c.expires_at_ms != 0) {
    ++expiring_;
    // An unchanged expiry is already queued (increments within a window).
    if (c.expires_at_ms != old_expiry)
      expiries_.emplace(c.expires_at_ms, c.name);
  }
  // Stale entries pile up when expiries keep moving (PUT with ttl): rebuild
  // before the queue outgrows the counters it describes.
  if (expiries_.size() > 2 * expiring_ + 1024) {
    ExpiryQueue fresh;
    for (auto it = counters_.begin(); it != counters_.end(); ++it) {
      const std::int64_t at = it.value().expires_at_ms;
      if (at != 0) fresh.emplace(at, it.name());
    }
    expiries_ = std::move(fresh);
  }
}

void StoreState::EraseCounter(std::string_view name) {
  if (const Entry* found = counters_.Find(name)) {
    if (!cursors_.empty()) SaveForCursors(name);
    if (found->expires_at_ms != 0) --expiring_;
    counters_.Erase(name);
  }
}

void StoreState::Apply(const Effect& effect) {
  if (const auto* put = std::get_if<PutCounter>(&effect)) {
    PutCounterEntry(put->counter);
  } else if (const auto* del = std::get_if<DeleteCounter>(&effect)) {
    EraseCounter(del->name);
  } else {
    const domain::IdempotencyRecord& r =
        std::get<PutIdempotency>(effect).record;
    std::string key = RecordKey(r.scope, r.key);
    if (!cursors_.empty()) {
      if (const auto it = idempotency_.find(key); it != idempotency_.end()) {
        SaveRecordForCursors(key, it->second);
      }
    }
    idempotency_order_.emplace_back(r.created_at_ms, key);
    idempotency_.insert_or_assign(std::move(key), r);
  }
}

void StoreState::BeginLoad() {
  counters_.Clear();
  expiries_ = ExpiryQueue();
  expiring_ = 0;
  idempotency_.clear();
  idempotency_order_.clear();
}

void StoreState::LoadCounter(const domain::Counter& c) {
  if (c.expires_at_ms != 0) {
    ++expiring_;
    expiries_.emplace(c.expires_at_ms, c.name);
  }
  // A snapshot is sorted, so each counter goes at the end, filling the
  // leaves one after another.
  counters_.Append(c.name, Entry{c.value, c.version, c.expires_at_ms});
}

void StoreState::LoadIdempotency(domain::IdempotencyRecord&& r) {
  Apply(PutIdempotency{std::move(r)});
}

SnapshotData StoreState::ToSnapshot(std::uint64_t last_seq,
                                    std::int64_t now_ms) const {
  SnapshotData snapshot;
  snapshot.last_seq = last_seq;
  snapshot.counters.reserve(counters_.size());
  for (auto it = counters_.begin(); it != counters_.end(); ++it) {
    const Entry& e = it.value();
    if (!e.LiveAt(now_ms)) continue;
    snapshot.counters.push_back(
        {it.name(), e.value, e.version, e.expires_at_ms});
  }
  for (const auto& [created, key] : idempotency_order_) {
    const auto it = idempotency_.find(key);
    // Skip order entries superseded by a later record under the same key.
    if (it == idempotency_.end() || it->second.created_at_ms != created ||
        !IsRetained(it->second, now_ms)) {
      continue;
    }
    snapshot.idempotency.push_back(it->second);
  }
  return snapshot;
}

std::optional<domain::Counter> StoreState::FindCounter(
    std::string_view name) const {
  const Entry* e = counters_.Find(name);
  if (e == nullptr) return std::nullopt;
  return domain::Counter{std::string(name), e->value, e->version,
                         e->expires_at_ms};
}

std::vector<domain::Counter> StoreState::List(std::string_view prefix,
                                              std::string_view after,
                                              std::size_t limit,
                                              std::int64_t now_ms) const {
  auto it = counters_.LowerBound(prefix);
  if (!after.empty() && after >= prefix) it = counters_.UpperBound(after);
  std::vector<domain::Counter> out;
  for (; it != counters_.end() && out.size() < limit; ++it) {
    if (!std::string_view(it.name()).starts_with(prefix)) break;
    const Entry& e = it.value();
    if (!e.LiveAt(now_ms)) continue;
    out.push_back({it.name(), e.value, e.version, e.expires_at_ms});
  }
  return out;
}

const domain::IdempotencyRecord* StoreState::FindIdempotency(
    std::string_view scope, std::string_view key, std::int64_t now_ms) const {
  const auto it = idempotency_.find(RecordKey(scope, key));
  if (it == idempotency_.end() || !IsRetained(it->second, now_ms)) {
    return nullptr;
  }
  return &it->second;
}

void StoreState::PruneIdempotency(std::int64_t now_ms) {
  // An open cursor reads idempotency_order_ by position; records past their
  // retention go once the last cursor closes (lookups skip them meanwhile).
  if (!cursors_.empty()) return;
  while (!idempotency_order_.empty() &&
         idempotency_order_.front().first <= now_ms - retention_ms_) {
    const auto& [created, key] = idempotency_order_.front();
    const auto it = idempotency_.find(key);
    if (it != idempotency_.end() && it->second.created_at_ms == created) {
      idempotency_.erase(it);
    }
    idempotency_order_.pop_front();
  }
}

std::vector<std::string> StoreState::SweepExpired(std::int64_t now_ms,
                                                  std::size_t max) {
  std::vector<std::string> removed;
  while (!expiries_.empty() && removed.size() < max &&
         expiries_.top().first <= now_ms) {
    const auto [at, name] = expiries_.top();
    expiries_.pop();
    const Entry* found = counters_.Find(name);
    // Stale: the counter went, or its expiry moved since this was queued.
    if (found == nullptr || found->expires_at_ms != at) continue;
    EraseCounter(name);
    removed.push_back(name);
  }
  return removed;
}

std::optional<std::int64_t> StoreState::NextExpiry() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.top().first;
}

}  // namespace counterd::storage
