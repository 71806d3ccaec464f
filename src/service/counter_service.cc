#include "counterd/service/counter_service.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace counterd::service {

// One listing: a repository List of limit + 1 counters turned into a page;
// for a restricted query, a walk over its ranges, one List per range, then
// a probe of the later ranges for whether a next page exists.
class CounterService::ListCall final
    : public Completion<Result<storage::CounterList>> {
 public:
  ListCall(storage::CounterRepository& repository, ListQuery query,
           std::size_t limit, Completion<Result<ListPage>>& done)
      : repository_(repository),
        query_(std::move(query)),
        limit_(limit),
        need_(limit),
        done_(done) {}

  void Start() {
    if (!query_.restricted) {
      return Ask(query_.prefix, limit_ + 1);  // one more: is there a next?
    }
    if (query_.ranges.empty()) return Finish(ListPage{});
    Ask(query_.ranges[0], need_ + 1);
  }

  void Complete(Result<storage::CounterList> result) override {
    if (!result) return Finish(result.error());
    page_.seq = reads_ == 0 ? result->seq : std::min(page_.seq, result->seq);
    ++reads_;
    if (!query_.restricted) {
      page_.counters = std::move(result->counters);
      if (page_.counters.size() > limit_) {
        page_.counters.resize(limit_);
        page_.next = page_.counters.back().name;
      }
      return Finish(std::move(page_));
    }
    if (probing_) {
      // A later range holds a counter after the page: there is a next.
      if (!result->counters.empty()) {
        page_.next = page_.counters.back().name;
        return Finish(std::move(page_));
      }
      return NextProbe();
    }
    std::vector<domain::Counter>& got = result->counters;
    const bool more_in_range = got.size() > need_;
    if (more_in_range) got.resize(need_);
    need_ -= got.size();
    for (domain::Counter& c : got) page_.counters.push_back(std::move(c));
    if (more_in_range) {
      page_.next = page_.counters.back().name;
      return Finish(std::move(page_));
    }
    if (need_ > 0) {
      if (++range_ == query_.ranges.size()) return Finish(std::move(page_));
      return Ask(query_.ranges[range_], need_ + 1);
    }
    // Full at the end of a range: a next page exists only if a later range
    // holds a counter.
    probing_ = true;
    NextProbe();
  }

 private:
  void Ask(const std::string& prefix, std::size_t limit) {
    repository_.List(storage::ListRequest{prefix, query_.after, limit}, *this);
  }
  void NextProbe() {
    if (++range_ >= query_.ranges.size()) return Finish(std::move(page_));
    Ask(query_.ranges[range_], 1);
  }
  void Finish(Result<ListPage> page) {
    // Owned by this call: the repository completes each List once, and
    // nothing is asked after Finish.
    const std::unique_ptr<ListCall> self(this);
    done_.Complete(std::move(page));
  }

  storage::CounterRepository& repository_;
  const ListQuery query_;
  const std::size_t limit_;
  std::size_t need_;
  std::size_t range_ = 0;
  std::size_t reads_ = 0;
  bool probing_ = false;
  ListPage page_;
  Completion<Result<ListPage>>& done_;
};

// Releases an in-flight idempotency key before passing the outcome on, so
// a retry that follows the answer finds the committed record, not a key
// in flight.
class CounterService::KeyedCommit final
    : public Completion<domain::TransactionOutcome> {
 public:
  KeyedCommit(CounterService& service, std::string key,
              Completion<domain::TransactionOutcome>& done)
      : service_(service), key_(std::move(key)), done_(done) {}

  void Complete(domain::TransactionOutcome outcome) override {
    const std::unique_ptr<KeyedCommit> self(this);
    service_.Release(key_);
    done_.Complete(std::move(outcome));
  }

 private:
  CounterService& service_;
  const std::string key_;
  Completion<domain::TransactionOutcome>& done_;
};

CounterService::CounterService(storage::CounterRepository& repository)
    : repository_(repository) {}

void CounterService::Get(
    const domain::CounterName& name,
    Completion<Result<std::optional<domain::Counter>>>& done) {
  repository_.Get(name, done);
}

void CounterService::List(const ListQuery& query,
                          Completion<Result<ListPage>>& done) {
  const std::size_t limit =
      std::clamp<std::size_t>(query.limit, 1, ListQuery::kMaxLimit);
  (new ListCall(repository_, query, limit, done))->Start();
}

void CounterService::Commit(domain::Transaction tx,
                            Completion<domain::TransactionOutcome>& done) {
  if (!tx.idempotency) return repository_.Commit(std::move(tx), done);
  // Scope and key, length-prefixed so no two pairs collide.
  std::string key = std::to_string(tx.idempotency->scope.size()) + ":" +
                    tx.idempotency->scope + tx.idempotency->key.str();
  {
    MutexLock lock(mu_);
    if (!in_flight_keys_.insert(key).second) {
      done.Complete(domain::Refusal(Status::Aborted(
          "a request with this Idempotency-Key is still in flight; retry "
          "later")));
      return;
    }
  }
  repository_.Commit(std::move(tx),
                     *new KeyedCommit(*this, std::move(key), done));
}

void CounterService::Release(const std::string& key) {
  MutexLock lock(mu_);
  in_flight_keys_.erase(key);
}

ServiceStats CounterService::Stats() const {
  ServiceStats stats;
  stats.repository = repository_.Stats();
  MutexLock lock(mu_);
  stats.idempotency_keys_in_flight = in_flight_keys_.size();
  return stats;
}

}  // namespace counterd::service
