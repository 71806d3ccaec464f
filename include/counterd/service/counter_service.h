// CounterService: what the HTTP layer asks of counterd's counters, over
// whichever storage backend holds them. The rules that decide a
// transaction's outcome are MutationRules (mutation_rules.h), applied by
// the backend inside its commit; the service adds what is not a backend's
// business: list pagination, and refusing a second request with an
// Idempotency-Key while the first is still in flight in this process.
//
// Thread-safety: thread-safe. Calls complete as the repository does (see
// counter_repository.h): possibly before they return, on the caller's
// thread, or later on a backend thread.
#ifndef COUNTERD_SERVICE_COUNTER_SERVICE_H_
#define COUNTERD_SERVICE_COUNTER_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "counterd/core/mutex.h"
#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/counter_name.h"
#include "counterd/domain/transaction.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::service {

struct ListQuery {
  std::string prefix;  // only names starting with this
  std::string after;   // only names sorting after this ("" = from the start)
  std::size_t limit = 100;
  static constexpr std::size_t kMaxLimit = 1000;
  // For a caller limited to some name prefixes (an authentication token's):
  // the sorted, disjoint name ranges it may see within |prefix|. The page
  // walks them in order and is paginated as an unrestricted listing is
  // (|next| only when more visible counters follow). Restricted with no
  // range lists nothing.
  bool restricted = false;
  std::vector<std::string> ranges;
};

struct ListPage {
  std::vector<domain::Counter> counters;
  // The last name returned when more counters follow; pass it as |after|.
  std::optional<std::string> next;
  // The last commit the listing includes (storage::CounterList::seq); for
  // a restricted page read range by range, the earliest of its reads.
  std::uint64_t seq = 0;
};

struct ServiceStats {
  storage::RepositoryStats repository;
  std::uint64_t idempotency_keys_in_flight = 0;
};

template <typename T>
using Completion = storage::Completion<T>;

class CounterService {
 public:
  // |repository| must outlive this CounterService.
  explicit CounterService(storage::CounterRepository& repository);
  CounterService(const CounterService&) = delete;
  CounterService& operator=(const CounterService&) = delete;
  ~CounterService() = default;

  // The counter, or nullopt if it does not exist (or has expired);
  // kUnavailable when the backend cannot read.
  void Get(const domain::CounterName& name,
           Completion<Result<std::optional<domain::Counter>>>& done);
  // REQUIRES: 1 <= query.limit <= ListQuery::kMaxLimit.
  void List(const ListQuery& query, Completion<Result<ListPage>>& done);
  // Commits |tx| (see MutationRules for the outcomes). With an idempotency
  // key that another request of this process is still committing: kAborted
  // at once.
  void Commit(domain::Transaction tx,
              Completion<domain::TransactionOutcome>& done) EXCLUDES(mu_);

  // A consistent snapshot of the whole store (GET /admin/snapshot).
  void Snapshot(Completion<Result<storage::SnapshotImage>>& done) {
    repository_.TakeSnapshot(done);
  }

  // OK while writes are accepted.
  Status Health() const { return repository_.Health(); }
  ServiceStats Stats() const EXCLUDES(mu_);

 private:
  class ListCall;
  class KeyedCommit;
  void Release(const std::string& key) EXCLUDES(mu_);

  storage::CounterRepository& repository_;
  mutable Mutex mu_;
  std::set<std::string> in_flight_keys_ GUARDED_BY(mu_);
};

}  // namespace counterd::service

#endif  // COUNTERD_SERVICE_COUNTER_SERVICE_H_
