#include "stream/watch_stream.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "api/json_codec.h"

namespace counterd::http {
namespace {

constexpr std::size_t kPageSize = service::ListQuery::kMaxLimit;

// Counter names and prefixes are made of [A-Za-z0-9._:-] only, so they go
// into JSON as they are.
std::string NameJson(std::string_view key, const std::string& value) {
  std::string out = "{\"";
  out += key;
  out += "\":\"";
  out += value;
  out += "\"}";
  return out;
}

// Whether |page| holds a counter named |name| (pages are in name order).
bool Shows(const service::ListPage& page, const std::string& name) {
  return std::ranges::binary_search(page.counters, name, std::less<>(),
                                    &domain::Counter::name);
}

// Whether a read as of commit |read_seq| already holds a change announced
// under |change_seq|: a change it holds is in it (or, a removal, absent
// from it). Except a removal of a counter the read shows alive: the file
// backend publishes an expiry under the sequence number of the commit
// before it (an expiry writes no record), so that one is news.
bool ReadHolds(std::uint64_t read_seq, bool read_shows_alive,
               std::uint64_t change_seq, bool change_is_removal) {
  return change_seq <= read_seq && !(change_is_removal && read_shows_alive);
}

}  // namespace

WatchStream::WatchStream(WatchTarget target,
                         std::optional<std::uint64_t> last_event_id,
                         std::size_t buffer, service::CounterService& service,
                         WatchHub& hub, std::function<void()> wake)
    : target_(std::move(target)),
      ranges_(target_.restricted ? target_.ranges
                                 : std::vector<std::string>{target_.name}),
      last_event_id_(last_event_id),
      buffer_(buffer),
      service_(service),
      hub_(hub),
      wake_(std::move(wake)) {}

WatchStream::~WatchStream() { hub_.Remove(this); }

void WatchStream::Start() {
  if (!target_.prefix) {
    // Registered before the read: a change committed meanwhile is either in
    // what the read returns or offered afterwards.
    hub_.AddName(target_.name, this);
    ReadName();
    return;
  }
  std::uint64_t seq = 0;
  const bool exact = hub_.AddPrefix(target_.name, this, last_event_id_, seq);
  if (last_event_id_ && exact) return;  // resumed: the hub offered the rest
  bool reset = false;
  {
    MutexLock lock(mu_);
    if (last_event_id_) {
      // Too old to resume exactly: say so, then the current state.
      output_ += "id: " + std::to_string(seq) +
                 "\nevent: reset\ndata: " + NameJson("prefix", target_.name) +
                 "\n\n";
      reset = true;
    }
    resyncing_ = true;
    resync_seq_ = seq;
    dump_range_ = 0;
    dump_after_.clear();
  }
  if (reset) hub_.CountReset();
  ReadDumpPage();
}

void WatchStream::Close() {
  {
    MutexLock lock(mu_);
    if (closed_) return;
    closed_ = true;
    output_.clear();
  }
  hub_.Remove(this);
}

std::string WatchStream::Heartbeat() { return ": heartbeat\n\n"; }

std::string WatchStream::TakeOutput() {
  bool resync = false;
  bool reread = false;
  std::optional<std::uint64_t> page_seq;
  {
    MutexLock lock(mu_);
    if (closed_) return {};
    resync = std::exchange(resync_needed_, false);
    reread = std::exchange(reread_needed_, false);
    if (held_read_) page_seq = held_read_->seq;
  }
  // Outside the lock: these call the service (and may complete at once)
  // or the hub.
  if (resync) StartResync();
  if (reread) ReadName();
  if (page_seq && hub_.last_seq() >= *page_seq) StitchPage();
  MutexLock lock(mu_);
  wake_pending_ = false;
  if (closed_) return {};
  if (!target_.prefix) {
    if (have_state_ && (!sent_any_ || latest_ != sent_)) {
      const std::uint64_t id = latest_ ? latest_->version : 0;
      // Resuming with Last-Event-ID: nothing until the version differs.
      const bool already_seen =
          !sent_any_ && last_event_id_ && *last_event_id_ == id;
      if (!already_seen) AppendEvent(id, target_.name, latest_);
      sent_any_ = true;
      sent_ = latest_;
    }
  } else if (!resyncing_) {
    for (const std::string& name : order_) {
      const Pending& p = waiting_.at(name);
      AppendEvent(p.seq, name, p.state);
    }
    order_.clear();
    waiting_.clear();
  }
  return std::exchange(output_, {});
}

void WatchStream::AppendEvent(std::uint64_t id, const std::string& name,
                              const std::optional<domain::Counter>& state) {
  output_ += "id: ";
  output_ += std::to_string(id);
  if (state) {
    output_ += "\nevent: counter\ndata: ";
    output_ += EncodeCounter(*state);
  } else {
    output_ += "\nevent: deleted\ndata: ";
    output_ += NameJson("name", name);
  }
  output_ += "\n\n";
  hub_.CountEvent();
}

void WatchStream::Offer(std::uint64_t seq,
                        const storage::CounterChange& change) {
  {
    MutexLock lock(mu_);
    if (closed_) return;
    if (!target_.prefix) {
      // While a read is on its way, the latest announcement waits for it
      // (StitchNameRead); after, every announcement is newer than what the
      // stream knows, since they come in commit order.
      if (name_reading_) {
        pending_offer_ = Pending{seq, change.state};
      } else {
        latest_ = change.state;
        have_state_ = true;
      }
      return;
    }
    if (target_.restricted) {
      bool visible = false;
      for (const std::string& range : target_.ranges) {
        visible = visible || change.name.starts_with(range);
      }
      if (!visible) return;
    }
    auto it = waiting_.find(change.name);
    if (it == waiting_.end()) {
      if (waiting_.size() >= buffer_) {
        // The client reads slower than counters change: rather than grow,
        // start over from current state (when the connection next takes
        // output: the hub's lock is held here).
        waiting_.clear();
        order_.clear();
        (resyncing_ ? resync_again_ : resync_needed_) = true;
        return;
      }
      order_.push_back(change.name);
      it = waiting_.emplace(change.name, Pending{}).first;
    }
    it->second = Pending{seq, change.state};
  }
}

void WatchStream::OfferGap(std::uint64_t /*seq*/) {
  // Called with the hub's lock held: the work waits for TakeOutput.
  MutexLock lock(mu_);
  if (closed_) return;
  if (!target_.prefix) {
    // The state may have moved without a word: read it again.
    reread_needed_ = true;
  } else {
    waiting_.clear();
    order_.clear();
    (resyncing_ ? resync_again_ : resync_needed_) = true;
  }
  WakeLocked();
}

void WatchStream::ReadName() {
  // A listing of one: the counter sorts first among the names it is a
  // prefix of, and a listing says which commit it was read at.
  service::ListQuery query;
  query.prefix = target_.name;
  query.limit = 1;
  {
    MutexLock lock(mu_);
    if (closed_ || reading_) return;
    reading_ = shared_from_this();
    name_reading_ = true;
  }
  service::Completion<Result<service::ListPage>>& done = *this;
  service_.List(query, done);
}

void WatchStream::Wake() {
  MutexLock lock(mu_);
  WakeLocked();
}

void WatchStream::WakeLocked() {
  if (closed_ || wake_pending_) return;
  wake_pending_ = true;
  wake_();
}

void WatchStream::StartResync() {
  const std::uint64_t seq = hub_.last_seq();
  {
    MutexLock lock(mu_);
    if (closed_) return;
    output_ += "id: " + std::to_string(seq) +
               "\nevent: reset\ndata: " + NameJson("prefix", target_.name) +
               "\n\n";
    resyncing_ = true;
    resync_seq_ = seq;
    dump_range_ = 0;
    dump_after_.clear();
    WakeLocked();
  }
  hub_.CountReset();
  ReadDumpPage();
}

void WatchStream::ReadDumpPage() {
  service::ListQuery query;
  query.limit = kPageSize;
  {
    MutexLock lock(mu_);
    if (closed_) return;
    if (dump_range_ == ranges_.size()) {
      // A restricted token that sees nothing here: an empty dump.
      resyncing_ = false;
      resync_again_ = false;
      WakeLocked();
      return;
    }
    // One range at a time, so that each page is one read as of one commit
    // (the ranges are within what the token may see).
    query.prefix = ranges_[dump_range_];
    query.after = dump_after_;
    reading_ = shared_from_this();
  }
  service::Completion<Result<service::ListPage>>& done = *this;
  service_.List(query, done);
}

void WatchStream::Complete(Result<service::ListPage> result) {
  std::shared_ptr<WatchStream> keep;  // until this returns
  std::uint64_t seq = 0;
  {
    MutexLock lock(mu_);
    keep = std::move(reading_);
    if (closed_) return;
    if (!result) {
      if (target_.prefix) {
        output_ +=
            ": cannot list the counters: " + result.error().message() + "\n\n";
        resyncing_ = false;
      } else {
        output_ +=
            ": cannot read the counter: " + result.error().message() + "\n\n";
        name_reading_ = false;  // announcements count from here on
        if (pending_offer_) {
          latest_ = std::move(pending_offer_->state);
          have_state_ = true;
          pending_offer_.reset();
        }
      }
      WakeLocked();
      return;
    }
    seq = result->seq;
    held_read_ = std::move(*result);
  }
  // Sent once the hub has offered every commit the page includes: now, or
  // at the TakeOutput after the hub wakes the stream.
  if (hub_.WakeWhenDelivered(this, seq)) StitchPage();
}

void WatchStream::StitchPage() {
  bool read_more = false;
  bool again = false;
  {
    MutexLock lock(mu_);
    if (closed_ || !held_read_) return;  // closed, or stitched already
    const service::ListPage page = *std::exchange(held_read_, std::nullopt);
    if (!target_.prefix) {
      StitchNameRead(page);
      WakeLocked();
      return;
    }
    DropChangesThePageHolds(page);
    for (const domain::Counter& c : page.counters) {
      AppendEvent(resync_seq_, c.name, c);
    }
    if (page.next) {
      dump_after_ = *page.next;
      read_more = true;
    } else if (++dump_range_ < ranges_.size()) {
      dump_after_.clear();
      read_more = true;
    } else {
      resyncing_ = false;
      again = std::exchange(resync_again_, false);
    }
    WakeLocked();
  }
  if (read_more) return ReadDumpPage();
  if (again) StartResync();
}

void WatchStream::StitchNameRead(const service::ListPage& page) {
  std::optional<domain::Counter> read;
  if (!page.counters.empty() && page.counters.front().name == target_.name) {
    read = page.counters.front();
  }
  // Every commit up to page.seq has been offered: the latest announcement
  // wins unless the read already holds it.
  if (pending_offer_ &&
      !ReadHolds(page.seq, read.has_value(), pending_offer_->seq,
                 !pending_offer_->state.has_value())) {
    latest_ = std::move(pending_offer_->state);
  } else {
    latest_ = std::move(read);
  }
  pending_offer_.reset();
  name_reading_ = false;
  have_state_ = true;
}

void WatchStream::DropChangesThePageHolds(const service::ListPage& page) {
  // The names the page answers for: after dump_after_ in the current
  // range, up to its last name when more follow. Every commit up to
  // page.seq has been offered, and waiting_ holds each name's latest.
  const std::string& range = ranges_[dump_range_];
  std::vector<std::string> kept;
  kept.reserve(order_.size());
  for (std::string& name : order_) {
    const auto it = waiting_.find(name);
    const Pending& change = it->second;
    const bool covered = name.starts_with(range) && name > dump_after_ &&
                         (!page.next || name <= *page.next);
    if (covered && ReadHolds(page.seq, Shows(page, name), change.seq,
                             !change.state.has_value())) {
      waiting_.erase(it);
    } else {
      kept.push_back(std::move(name));
    }
  }
  order_ = std::move(kept);
}

}  // namespace counterd::http
