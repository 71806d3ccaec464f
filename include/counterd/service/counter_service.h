// CounterService: the rules of counterd's counters over the storage engine:
// versions, preconditions, int64 overflow, idempotent retries. The HTTP layer
// talks only to this class.
//
// Thread-safety: thread-safe. Reads return committed state only and never
// wait for I/O. Mutate hands the mutation to the store and calls back once
// the outcome is durable (or refused), on the thread that committed it:
// the store's committer, or the caller's own when the store commits inline
// (storage::StoreOptions::inline_commit_max_fsync).
#ifndef COUNTERD_SERVICE_COUNTER_SERVICE_H_
#define COUNTERD_SERVICE_COUNTER_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/counter_name.h"
#include "counterd/domain/idempotency_key.h"
#include "counterd/storage/counter_store.h"

namespace counterd::service {

struct ListQuery {
  std::string prefix;  // only names starting with this
  std::string after;   // only names sorting after this ("" = from the start)
  std::size_t limit = 100;
  static constexpr std::size_t kMaxLimit = 1000;
};

struct ListPage {
  std::vector<domain::Counter> counters;
  // The last name returned when more counters follow; pass it as |after|.
  std::optional<std::string> next;
};

// The Idempotency-Key of a request and what identifies the request itself.
struct IdempotencyIntent {
  domain::IdempotencyKey key;
  // Equal for the same request (method, path, semantic body); a reuse of the
  // key with another fingerprint is refused with kAlreadyExists.
  std::string fingerprint;
  // Whose key it is: the caller's token name ("" with authentication off).
  // Keys of different scopes never meet: the same key from another token is
  // another key, so one caller can never replay another's answer.
  std::string scope;

  // The key as the store keeps it: |key| alone when |scope| is empty (as
  // before authentication existed), else scope + '\x1f' + key. Neither a
  // token name nor a key can contain 0x1f, so the two never collide.
  std::string StoredKey() const;
};

struct MutationRequest {
  // kAdd adds |operand|, kSubtract subtracts it (so decrement by INT64_MIN
  // is computed exactly rather than by negating the delta).
  enum class Kind { kSet, kAdd, kSubtract, kDelete };
  Kind kind;
  domain::CounterName name;
  std::int64_t operand = 0;  // kSet: the new value; kAdd/kSubtract: delta
  domain::Precondition precondition;
  std::optional<IdempotencyIntent> idempotency;
};

class CounterService {
 public:
  using Callback = std::function<void(domain::MutationOutcome)>;

  // |store| must outlive this CounterService.
  explicit CounterService(storage::CounterStore& store);
  CounterService(const CounterService&) = delete;
  CounterService& operator=(const CounterService&) = delete;

  // kNotFound if the counter does not exist.
  Result<domain::Counter> Get(const domain::CounterName& name) const;
  // The default counter; value 0, version 0 if never written.
  domain::Counter GetDefault() const;
  // REQUIRES: 1 <= query.limit <= ListQuery::kMaxLimit.
  ListPage List(const ListQuery& query) const;

  // Outcomes (status codes):
  //  kSet: OK (created=true when new); kFailedPrecondition when the version
  //        does not match or must_be_absent and it exists.
  //  kAdd/kSubtract: OK with the new state (creates at 0 first); kOutOfRange
  //  when the
  //        result leaves int64; kFailedPrecondition as above.
  //  kDelete: OK; kNotFound; kFailedPrecondition.
  //  With idempotency: a repeat of a finished request returns its stored
  //  outcome with replayed=true; kAborted while the first is in flight;
  //  kAlreadyExists when the key was used for a different request.
  //  Any: kUnavailable / kResourceExhausted when the store cannot write.
  void Mutate(MutationRequest request, Callback done);

  // OK while writes are accepted.
  Status Health() const { return store_.Health(); }
  storage::StoreStats Stats() const { return store_.Stats(); }
  const storage::CounterStore& store() const { return store_; }

 private:
  storage::CounterStore& store_;
  mutable std::mutex in_flight_mu_;
  std::set<std::string> in_flight_keys_;  // GUARDED_BY(in_flight_mu_)
};

}  // namespace counterd::service

#endif  // COUNTERD_SERVICE_COUNTER_SERVICE_H_
