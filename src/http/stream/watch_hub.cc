#include "stream/watch_hub.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace counterd::http {

void WatchHub::OnCommitted(const storage::ChangeBatch& batch) {
  MutexLock lock(mu_);
  if (batch.gap) {
    // What happened before this batch is unknown: no resume may reach back
    // past it, and every stream starts over from current state.
    covered_from_ = std::max(covered_from_, batch.seq - 1);
    for (const auto& [name, watcher] : by_name_) watcher->OfferGap(batch.seq);
    for (const auto& [prefix, watcher] : by_prefix_) {
      watcher->OfferGap(batch.seq);
    }
  }
  last_seq_ = std::max(last_seq_, batch.seq);
  // The watchers this batch reached, each woken once at the end. Sorted
  // and deduplicated once rather than searched per offer: a hot counter
  // with a thousand watchers would otherwise cost a million comparisons
  // per commit, on the committing thread.
  std::vector<Watcher*> reached;
  for (const storage::CounterChange& change : batch.changes) {
    for (auto [it, end] = by_name_.equal_range(change.name); it != end; ++it) {
      it->second->Offer(batch.seq, change);
      reached.push_back(it->second);
    }
    for (const auto& [prefix, watcher] : by_prefix_) {
      if (std::string_view(change.name).starts_with(prefix)) {
        watcher->Offer(batch.seq, change);
        reached.push_back(watcher);
      }
    }
    recent_.push_back(Retained{batch.seq, change});
  }
  std::sort(reached.begin(), reached.end(), std::less<>());  // total order
  reached.erase(std::unique(reached.begin(), reached.end()), reached.end());
  for (Watcher* w : reached) w->Wake();
  const auto delivered = delivery_waits_.upper_bound(last_seq_);
  for (auto it = delivery_waits_.begin(); it != delivered; ++it) {
    it->second->Wake();
  }
  delivery_waits_.erase(delivery_waits_.begin(), delivered);
  while (recent_.size() > window_) {
    covered_from_ = std::max(covered_from_, recent_.front().seq);
    recent_.pop_front();
  }
}

void WatchHub::AddName(std::string name, Watcher* watcher) {
  MutexLock lock(mu_);
  by_name_.emplace(std::move(name), watcher);
}

bool WatchHub::AddPrefix(std::string prefix, Watcher* watcher,
                         std::optional<std::uint64_t> resume_after,
                         std::uint64_t& seq) {
  MutexLock lock(mu_);
  seq = last_seq_;
  bool exact = true;
  if (resume_after) {
    exact = *resume_after >= covered_from_ && *resume_after <= last_seq_;
    if (exact) {
      bool any = false;
      for (const Retained& r : recent_) {
        if (r.seq > *resume_after &&
            std::string_view(r.change.name).starts_with(prefix)) {
          watcher->Offer(r.seq, r.change);
          any = true;
        }
      }
      if (any) watcher->Wake();
    }
  }
  by_prefix_.emplace_back(std::move(prefix), watcher);
  return exact;
}

bool WatchHub::WakeWhenDelivered(Watcher* watcher, std::uint64_t seq) {
  MutexLock lock(mu_);
  if (seq <= last_seq_) return true;
  delivery_waits_.emplace(seq, watcher);
  return false;
}

void WatchHub::Remove(Watcher* watcher) {
  MutexLock lock(mu_);
  std::erase_if(delivery_waits_, [watcher](const auto& entry) {
    return entry.second == watcher;
  });
  for (auto it = by_name_.begin(); it != by_name_.end();) {
    it = it->second == watcher ? by_name_.erase(it) : std::next(it);
  }
  std::erase_if(by_prefix_, [watcher](const auto& entry) {
    return entry.second == watcher;
  });
}

std::uint64_t WatchHub::last_seq() const {
  MutexLock lock(mu_);
  return last_seq_;
}

WatchHubStats WatchHub::Stats() const {
  WatchHubStats stats;
  {
    MutexLock lock(mu_);
    stats.watchers = by_name_.size() + by_prefix_.size();
  }
  stats.events = events_.load(std::memory_order_relaxed);
  stats.resets = resets_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace counterd::http
