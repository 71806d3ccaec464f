// FakeRepository: an in-memory CounterRepository for tests of the layers
// above storage. It decides with the real MutationRules, so it agrees with
// every backend on outcomes; what it fakes is durability and timing:
// commits complete at once, or wait for CommitPending() (hold_commits);
// committed changes go to the sink at once, or wait for PublishPending()
// (hold_changes: a backend whose change feed lags its reads, like
// PostgreSQL's listener); and a test can make the store refuse (health).
// Thread-safe (server tests call it from I/O threads); completions run
// outside its lock.
#ifndef COUNTERD_TESTS_SUPPORT_FAKE_REPOSITORY_H_
#define COUNTERD_TESTS_SUPPORT_FAKE_REPOSITORY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "counterd/core/clock.h"
#include "counterd/core/histogram.h"
#include "counterd/core/mutex.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::testing {

class FakeRepository final : public storage::CounterRepository {
 public:
  // |clock| must outlive the repository.
  explicit FakeRepository(const Clock& clock) : clock_(clock) {}

  void Get(const domain::CounterName& name,
           storage::Completion<Result<std::optional<domain::Counter>>>& done)
      override;
  void List(const storage::ListRequest& request,
            storage::Completion<Result<storage::CounterList>>& done) override;
  void Commit(domain::Transaction tx,
              storage::Completion<domain::TransactionOutcome>& done) override;
  void SetChangeSink(storage::ChangeSink* sink) override { sink_ = sink; }
  Status Health() const override;
  storage::RepositoryStats Stats() const override;
  Status Close() override { return Status::Ok(); }

  // Commits everything held; returns how many transactions.
  std::size_t CommitPending();
  // Publishes the committed batches held back, oldest first, at most |max|
  // of them; returns how many.
  std::size_t PublishPending(std::size_t max = SIZE_MAX);

  // Knobs. Set them while no request is in flight.
  bool hold_commits = false;  // commits wait for CommitPending()
  bool hold_changes = false;  // published changes wait for PublishPending()
  Status health;              // not OK: every call is refused with it
  std::uint64_t mutations() const EXCLUDES(mu_);

 private:
  struct Held {
    domain::Transaction tx;
    storage::Completion<domain::TransactionOutcome>* done;
  };
  void CommitOne(Held held) EXCLUDES(mu_);
  domain::TransactionOutcome Decide(const domain::Transaction& tx,
                                    storage::ChangeBatch& changes)
      REQUIRES(mu_);
  std::int64_t NowMs() const;

  const Clock& clock_;
  mutable Mutex mu_;
  std::map<std::string, domain::Counter, std::less<>> counters_ GUARDED_BY(mu_);
  std::map<std::string, domain::IdempotencyRecord> records_ GUARDED_BY(mu_);
  std::deque<Held> held_ GUARDED_BY(mu_);
  std::deque<storage::ChangeBatch> unpublished_ GUARDED_BY(mu_);
  storage::ChangeSink* sink_ = nullptr;
  std::uint64_t seq_ GUARDED_BY(mu_) = 0;
  std::uint64_t mutations_ GUARDED_BY(mu_) = 0;
  Histogram batch_sizes_{Histogram::BatchSizeBounds()};
  Histogram commit_seconds_{Histogram::LatencySecondsBounds()};
};

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_SUPPORT_FAKE_REPOSITORY_H_
