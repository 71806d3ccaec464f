// WatchHub: fans committed changes out to watch streams. The repository
// calls it (as its ChangeSink) on the committing thread, only with changes
// that are durable, in commit order; it hands each change to the streams
// watching that counter or a prefix of it, and keeps a window of recent
// changes so that a prefix stream reconnecting with Last-Event-ID can
// resume exactly.
//
// Thread-safety: thread-safe. OnCommitted never blocks on a stream: a
// stream takes what it is offered under its own short lock and wakes its
// connection later.
#ifndef COUNTERD_HTTP_STREAM_WATCH_HUB_H_
#define COUNTERD_HTTP_STREAM_WATCH_HUB_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/mutex.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::http {

// What a watch stream looks like to the hub.
class Watcher {
 public:
  // A durable change of a counter the watcher watches, from the commit with
  // sequence number |seq|. Must not block.
  virtual void Offer(std::uint64_t seq,
                     const storage::CounterChange& change) = 0;
  // Changes may have been missed before |seq| (the backend lost track).
  virtual void OfferGap(std::uint64_t seq) = 0;
  // Called once after the Offers of one commit that reached this watcher.
  virtual void Wake() = 0;

 protected:
  ~Watcher() = default;
};

struct WatchHubStats {
  std::uint64_t watchers = 0;
  std::uint64_t events = 0;  // changes offered to watchers
  std::uint64_t resets = 0;  // prefix streams that had to resynchronise
};

class WatchHub final : public storage::ChangeSink {
 public:
  // |window|: how many recent changes are kept for resuming prefix streams.
  // |last_seq|: the repository's sequence number when the hub starts:
  // resuming after an older one is not exact (those changes were made
  // before this process saw them).
  WatchHub(std::size_t window, std::uint64_t last_seq)
      : window_(window), covered_from_(last_seq), last_seq_(last_seq) {}
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // storage::ChangeSink
  void OnCommitted(const storage::ChangeBatch& batch) override EXCLUDES(mu_);

  // Watches one counter. |watcher| must stay valid until Remove.
  void AddName(std::string name, Watcher* watcher) EXCLUDES(mu_);
  // Watches every counter whose name starts with |prefix|. With
  // |resume_after| (a Last-Event-ID), offers the retained changes after it
  // first, atomically with the registration, and returns true; returns
  // false, registering all the same, when they are no longer all retained
  // (the stream must resynchronise from current state). Returns the
  // sequence number registration happened at in |seq|.
  bool AddPrefix(std::string prefix, Watcher* watcher,
                 std::optional<std::uint64_t> resume_after, std::uint64_t& seq)
      EXCLUDES(mu_);
  // Returns true when every commit up to |seq| has been offered (the feed
  // has caught up with a read that included them); otherwise returns false
  // and wakes |watcher| once they have been. |watcher| must stay valid
  // until Remove.
  bool WakeWhenDelivered(Watcher* watcher, std::uint64_t seq) EXCLUDES(mu_);
  // Stops offering to |watcher| and forgets its wake-ups; after it returns
  // no Offer or Wake is in progress.
  void Remove(Watcher* watcher) EXCLUDES(mu_);

  // The sequence number of the last commit seen.
  std::uint64_t last_seq() const EXCLUDES(mu_);

  void CountEvent() { events_.fetch_add(1, std::memory_order_relaxed); }
  void CountReset() { resets_.fetch_add(1, std::memory_order_relaxed); }
  WatchHubStats Stats() const EXCLUDES(mu_);

 private:
  struct Retained {
    std::uint64_t seq = 0;
    storage::CounterChange change;
  };

  const std::size_t window_;
  mutable Mutex mu_;
  std::multimap<std::string, Watcher*, std::less<>> by_name_ GUARDED_BY(mu_);
  std::vector<std::pair<std::string, Watcher*>> by_prefix_ GUARDED_BY(mu_);
  std::deque<Retained> recent_ GUARDED_BY(mu_);
  // WakeWhenDelivered's watchers, by the sequence number they wait for.
  std::multimap<std::uint64_t, Watcher*> delivery_waits_ GUARDED_BY(mu_);
  // Every change with a seq above this is in recent_: resuming after a seq
  // s is exact iff covered_from_ <= s <= last_seq_.
  std::uint64_t covered_from_ GUARDED_BY(mu_);
  std::uint64_t last_seq_ GUARDED_BY(mu_);
  std::atomic<std::uint64_t> events_{0};
  std::atomic<std::uint64_t> resets_{0};
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_STREAM_WATCH_HUB_H_
