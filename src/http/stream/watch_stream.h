// WatchStream: one Server-Sent Events stream of counter changes, for
// GET /counters/{name}/watch (ids are the counter's version) or
// GET /watch?prefix=p (ids are the store's commit sequence). It decides what
// to send; the connection only carries the bytes (TakeOutput) whenever the
// stream wakes it.
//
// Counters are state, not logs: what waits to be sent is the latest state
// of each counter, so a slow client skips intermediate versions but always
// gets the latest one. A prefix stream holds at most |buffer| counters
// waiting; past that (or after a gap in the backend's changes) it is reset:
// "event: reset", then the current state of every counter under the prefix,
// then live changes again. Every event is a durable change: the hub only
// offers what the repository published after its commit.
//
// Stitching a read to the live changes: each read of current state (a
// counter's, a page of a prefix dump) is as of one commit (ListPage::seq),
// and the live changes are offered in commit order, possibly later than a
// read shows them (PostgreSQL's listener is a connection of its own). A
// read is used only once the hub has offered every commit it includes; the
// changes it already holds are then dropped, so the events after it are
// exactly the changes after it, and a watcher never goes back.
//
// Thread-safety: thread-safe. The hub offers changes on the committing
// thread, the service completes reads on any thread, the connection takes
// output on its own. Lock order: the stream never calls the hub or the
// service while holding its own lock.
#ifndef COUNTERD_HTTP_STREAM_WATCH_STREAM_H_
#define COUNTERD_HTTP_STREAM_WATCH_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "counterd/core/mutex.h"
#include "counterd/domain/counter.h"
#include "counterd/service/counter_service.h"
#include "stream/watch_hub.h"

namespace counterd::http {

struct WatchTarget {
  bool prefix = false;  // false: one counter named |name|
  std::string name;     // the counter, or the prefix
  // Ranges a token limited to prefixes may see under |name| (prefix
  // watches; see service::ListQuery::ranges).
  bool restricted = false;
  std::vector<std::string> ranges;
};

class WatchStream final
    : public Watcher,
      public std::enable_shared_from_this<WatchStream>,
      private service::Completion<Result<service::ListPage>> {
 public:
  // |wake| is called (from any thread, at most once until the next
  // TakeOutput) when there is output to take; it must not call back into
  // the stream. |service| and |hub| must outlive the stream.
  WatchStream(WatchTarget target, std::optional<std::uint64_t> last_event_id,
              std::size_t buffer, service::CounterService& service,
              WatchHub& hub, std::function<void()> wake);
  ~WatchStream();

  // Registers with the hub and reads the current state.
  void Start();
  // Stops everything: no more offers, output or wake-ups. Idempotent.
  void Close();

  // The bytes to send now, possibly empty. Clears the pending wake-up.
  std::string TakeOutput();
  // A comment line that keeps proxies and clients from timing out.
  static std::string Heartbeat();

  // Watcher (the hub, on the committing thread).
  void Offer(std::uint64_t seq, const storage::CounterChange& change) override;
  void OfferGap(std::uint64_t seq) override;
  void Wake() override;

 private:
  // Completion of the current-state reads (a counter's, a dump's pages).
  void Complete(Result<service::ListPage> result) override;

  struct Pending {
    std::uint64_t seq = 0;
    std::optional<domain::Counter> state;  // nullopt: deleted
  };

  void StartResync() EXCLUDES(mu_);
  void ReadName() EXCLUDES(mu_);
  // Reads the dump's next page: ranges_[dump_range_] after dump_after_.
  void ReadDumpPage() EXCLUDES(mu_);
  // Uses the read held (held_read_: a dump's page, or a counter's listing
  // of one) once the hub has caught up with it.
  void StitchPage() EXCLUDES(mu_);
  void StitchNameRead(const service::ListPage& page) REQUIRES(mu_);
  void DropChangesThePageHolds(const service::ListPage& page) REQUIRES(mu_);
  void AppendEvent(std::uint64_t id, const std::string& name,
                   const std::optional<domain::Counter>& state) REQUIRES(mu_);
  void WakeLocked() REQUIRES(mu_);

  const WatchTarget target_;
  // The prefixes a prefix dump reads, in order: the target's prefix, or
  // the ranges a restricted token may see.
  const std::vector<std::string> ranges_;
  const std::optional<std::uint64_t> last_event_id_;
  const std::size_t buffer_;
  service::CounterService& service_;
  WatchHub& hub_;
  const std::function<void()> wake_;

  Mutex mu_;
  bool closed_ GUARDED_BY(mu_) = false;
  bool wake_pending_ GUARDED_BY(mu_) = false;
  std::string output_ GUARDED_BY(mu_);  // formatted, not yet taken
  // Name watch: the latest state known and the one last sent; while a read
  // is on its way (or waits for the hub to catch up with it), the latest
  // announcement, decided against the read once it is stitched.
  bool have_state_ GUARDED_BY(mu_) = false;
  std::optional<domain::Counter> latest_ GUARDED_BY(mu_);
  bool sent_any_ GUARDED_BY(mu_) = false;
  std::optional<domain::Counter> sent_ GUARDED_BY(mu_);
  bool name_reading_ GUARDED_BY(mu_) = false;
  std::optional<Pending> pending_offer_ GUARDED_BY(mu_);
  // Prefix watch: changes waiting, latest per counter, in arrival order;
  // and a resynchronisation in progress (live changes wait meanwhile).
  std::map<std::string, Pending> waiting_ GUARDED_BY(mu_);
  std::vector<std::string> order_ GUARDED_BY(mu_);
  bool resyncing_ GUARDED_BY(mu_) = false;
  bool resync_again_ GUARDED_BY(mu_) = false;
  // Where the dump is (a range of ranges_, a name in it); and a read (a
  // dump's page, or a counter's) that waits for the hub to offer the
  // commits it includes.
  std::size_t dump_range_ GUARDED_BY(mu_) = 0;
  std::string dump_after_ GUARDED_BY(mu_);
  std::optional<service::ListPage> held_read_ GUARDED_BY(mu_);
  // Set under the hub's lock (Offer, OfferGap), done at the next
  // TakeOutput, which may call the hub and the service.
  bool resync_needed_ GUARDED_BY(mu_) = false;
  bool reread_needed_ GUARDED_BY(mu_) = false;
  std::uint64_t resync_seq_ GUARDED_BY(mu_) = 0;
  // Keeps the stream alive while the service works on a read.
  std::shared_ptr<WatchStream> reading_ GUARDED_BY(mu_);
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_STREAM_WATCH_STREAM_H_
