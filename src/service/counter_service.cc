#include "counterd/service/counter_service.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace counterd::service {

// Turns a repository listing of limit + 1 counters into a page.
class CounterService::ListCall final
    : public Completion<Result<std::vector<domain::Counter>>> {
 public:
  ListCall(std::size_t limit, Completion<Result<ListPage>>& done)
      : limit_(limit), done_(done) {}

  void Complete(Result<std::vector<domain::Counter>> result) override {
    // Owned by this call from here: the repository completes exactly once.
    const std::unique_ptr<ListCall> self(this);
    if (!result) return done_.Complete(result.error());
    ListPage page;
    page.counters = std::move(*result);
    if (page.counters.size() > limit_) {
      page.counters.resize(limit_);
      page.next = page.counters.back().name;
    }
    done_.Complete(std::move(page));
  }

 private:
  const std::size_t limit_;
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
  // One more than asked: whether a next page exists.
  storage::ListRequest request{query.prefix, query.after, limit + 1};
  repository_.List(request, *new ListCall(limit, done));
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
