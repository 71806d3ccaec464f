// FakeCounterStore: an in-memory storage::CounterStore for HTTP tests. Submit
// runs the planner against a map at once (or, with hold_commits, when
// CommitPendingBatch is called, to test requests in flight). Health can be
// set to simulate a store that failed closed. Not thread-safe: tests drive
// it from one thread.
#ifndef COUNTERD_TESTS_UNIT_HTTP_FAKE_COUNTER_STORE_H_
#define COUNTERD_TESTS_UNIT_HTTP_FAKE_COUNTER_STORE_H_

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "counterd/core/histogram.h"
#include "counterd/storage/counter_store.h"

namespace counterd::testing {

class FakeCounterStore final : public storage::CounterStore {
 public:
  FakeCounterStore();

  // While true, submissions wait for CommitPendingBatch().
  bool hold_commits = false;
  // What Health() returns; a non-OK health also refuses Submit.
  Status health;
  std::chrono::system_clock::time_point now{std::chrono::hours(24 * 365)};

  std::optional<domain::Counter> Get(std::string_view name) const override;
  std::vector<domain::Counter> List(std::string_view prefix,
                                    std::string_view after,
                                    std::size_t limit) const override;
  std::optional<storage::IdempotencyRecord> FindIdempotency(
      std::string_view key) const override;
  void Submit(storage::Planner planner, storage::Completion done) override;
  std::size_t CommitPendingBatch() override;
  Status CompactNow() override { return Status::Ok(); }
  Status Close() override;
  Status Health() const override { return health; }
  storage::StoreStats Stats() const override;
  const storage::RecoveryInfo& Recovery() const override { return recovery_; }
  const Histogram& BatchSizes() const override { return batch_sizes_; }
  const Histogram& FsyncSeconds() const override { return fsync_seconds_; }

  std::size_t mutations() const { return mutations_; }
  std::size_t pending() const { return pending_.size(); }

 private:
  class View;
  void Commit(storage::Planner& planner, storage::Completion& done);

  std::map<std::string, domain::Counter, std::less<>> counters_;
  std::map<std::string, storage::IdempotencyRecord, std::less<>> keys_;
  std::deque<std::pair<storage::Planner, storage::Completion>> pending_;
  std::size_t mutations_ = 0;
  storage::RecoveryInfo recovery_;
  Histogram batch_sizes_;
  Histogram fsync_seconds_;
};

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_UNIT_HTTP_FAKE_COUNTER_STORE_H_
