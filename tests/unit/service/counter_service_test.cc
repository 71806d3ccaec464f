// The service over a real file repository on MemFileSystem, committed by
// hand: what the rules decide end to end (the rules themselves are tested
// in mutation_rules_test.cc), pagination, idempotency across restarts, keys
// in flight and retention.
#include "counterd/service/counter_service.h"

#include <algorithm>
#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/storage/file_repository.h"
#include "support/completions.h"
#include "support/mem_file_system.h"

namespace counterd::service {
namespace {

using counterd::testing::Captured;
using domain::Counter;
using domain::CounterName;
using domain::OpKind;
using domain::Transaction;
using domain::TransactionOutcome;

Transaction Tx(OpKind kind, const char* name, std::int64_t operand = 0) {
  domain::Operation op;
  op.kind = kind;
  op.name = *CounterName::Parse(name);
  op.operand = operand;
  return domain::SingleOperation(std::move(op));
}

Transaction WithKey(Transaction tx, const char* key, std::string scope = "") {
  tx.idempotency = domain::IdempotencyIntent{
      std::move(scope), *domain::IdempotencyKey::Parse(key)};
  return tx;
}

class CounterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    service_.reset();
    repository_.reset();
    storage::FileRepositoryOptions options;
    options.data_dir = "/data";
    options.start_committer = false;
    options.idempotency_retention = std::chrono::hours(24);
    auto repository = storage::FileRepository::Open(fs_, clock_, options);
    ASSERT_TRUE(repository) << repository.error().ToString();
    repository_ = std::move(*repository);
    service_ = std::make_unique<CounterService>(*repository_);
  }

  TransactionOutcome Run(Transaction tx) {
    Captured<TransactionOutcome> out;
    service_->Commit(std::move(tx), out);
    repository_->CommitPendingBatch();
    EXPECT_TRUE(out.done());
    return out.done() ? out.Take()
                      : domain::Refusal(Status::Internal("no outcome"));
  }

  std::optional<Counter> Get(const char* name) {
    Captured<Result<std::optional<Counter>>> out;
    service_->Get(*CounterName::Parse(name), out);
    EXPECT_TRUE(out.done());
    EXPECT_TRUE(out.value().has_value());
    return *out.value();
  }

  ListPage List(const ListQuery& query) {
    Captured<Result<ListPage>> out;
    service_->List(query, out);
    EXPECT_TRUE(out.done());
    return std::move(*out.value());
  }

  counterd::testing::MemFileSystem fs_;
  ManualClock clock_{
      std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50))};
  std::unique_ptr<storage::FileRepository> repository_;
  std::unique_ptr<CounterService> service_;
};

TEST_F(CounterServiceTest, IncrementCreatesAtZeroAndVersionsGrow) {
  auto o = Run(Tx(OpKind::kAdd, "a", 5));
  ASSERT_TRUE(o.status.ok());
  EXPECT_TRUE(o.results[0].created);
  EXPECT_EQ(o.results[0].counter, (Counter{"a", 5, 1}));
  o = Run(Tx(OpKind::kSubtract, "a", 7));
  EXPECT_EQ(o.results[0].counter, (Counter{"a", -2, 2}));
  EXPECT_FALSE(o.results[0].created);
  EXPECT_EQ(Get("a")->value, -2);
}

TEST_F(CounterServiceTest, RefusalsChangeNothing) {
  ASSERT_TRUE(Run(Tx(OpKind::kSet, "hi", INT64_MAX)).status.ok());
  EXPECT_EQ(Run(Tx(OpKind::kAdd, "hi", 1)).status.code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(Get("hi"), (Counter{"hi", INT64_MAX, 1}));
  EXPECT_EQ(Run(Tx(OpKind::kDelete, "missing")).status.code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Get("missing"), std::nullopt);
}

TEST_F(CounterServiceTest, ListPagesWalkEveryCounterOnce) {
  for (int i = 0; i < 25; ++i) {
    Run(Tx(OpKind::kSet, ("c" + std::to_string(100 + i)).c_str(), i));
  }
  std::vector<std::string> seen;
  ListQuery q;
  q.limit = 7;
  while (true) {
    ListPage page = List(q);
    for (const auto& c : page.counters) seen.push_back(c.name);
    if (!page.next) break;
    q.after = *page.next;
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
}

TEST_F(CounterServiceTest, ExpiredCountersAreNeitherReadNorListed) {
  Transaction tx = Tx(OpKind::kAdd, "w", 1);
  tx.ops[0].ttl_seconds = 60;
  ASSERT_TRUE(Run(tx).status.ok());
  ASSERT_TRUE(Run(Tx(OpKind::kAdd, "z", 1)).status.ok());
  EXPECT_EQ(Get("w")->value, 1);
  clock_.Advance(std::chrono::seconds(60));
  EXPECT_EQ(Get("w"), std::nullopt);
  const ListPage page = List(ListQuery{});
  ASSERT_EQ(page.counters.size(), 1u);
  EXPECT_EQ(page.counters[0].name, "z");
  // A new window starts at version 1.
  EXPECT_EQ(Run(tx).results[0].counter->version, 1u);
}

TEST_F(CounterServiceTest, IdempotentRetryReplaysAndSurvivesRestart) {
  const Transaction tx = WithKey(Tx(OpKind::kAdd, "a", 2), "key-1");
  auto first = Run(tx);
  ASSERT_TRUE(first.status.ok());
  EXPECT_FALSE(first.replayed);
  auto again = Run(tx);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.results, first.results);
  EXPECT_EQ(Get("a")->value, 2);

  Reopen();
  auto after_restart = Run(tx);
  EXPECT_TRUE(after_restart.replayed);
  EXPECT_EQ(after_restart.results, first.results);
  EXPECT_EQ(Get("a")->value, 2);

  auto other = Run(WithKey(Tx(OpKind::kAdd, "a", 3), "key-1"));
  EXPECT_EQ(other.status.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Get("a")->value, 2);
}

TEST_F(CounterServiceTest, KeysOfTwoScopesNeverMeet) {
  auto billing = Run(WithKey(Tx(OpKind::kAdd, "a", 1), "k", "billing"));
  auto ops = Run(WithKey(Tx(OpKind::kAdd, "a", 1), "k", "ops"));
  EXPECT_FALSE(ops.replayed);
  EXPECT_EQ(ops.results[0].counter->value, 2);
  EXPECT_TRUE(Run(WithKey(Tx(OpKind::kAdd, "a", 1), "k", "billing")).replayed);
  EXPECT_EQ(billing.results[0].counter->value, 1);
}

TEST_F(CounterServiceTest, RefusalsAreReplayedToo) {
  ASSERT_TRUE(Run(Tx(OpKind::kSet, "a", INT64_MAX)).status.ok());
  const Transaction tx = WithKey(Tx(OpKind::kAdd, "a", 1), "k");
  EXPECT_EQ(Run(tx).status.code(), StatusCode::kOutOfRange);
  auto again = Run(tx);
  EXPECT_EQ(again.status.code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(again.replayed);
}

TEST_F(CounterServiceTest, SameKeyInFlightIsAborted) {
  const Transaction tx = WithKey(Tx(OpKind::kAdd, "a", 1), "k");
  Captured<TransactionOutcome> first, second, third;
  service_->Commit(tx, first);
  service_->Commit(tx, second);
  service_->Commit(tx, third);
  // Two refused at once, before any commit.
  ASSERT_TRUE(second.done());
  ASSERT_TRUE(third.done());
  EXPECT_EQ(second.value().status.code(), StatusCode::kAborted);
  EXPECT_EQ(third.value().status.code(), StatusCode::kAborted);
  EXPECT_FALSE(first.done());
  EXPECT_EQ(service_->Stats().idempotency_keys_in_flight, 1u);
  repository_->CommitPendingBatch();
  ASSERT_TRUE(first.done());
  EXPECT_TRUE(first.value().status.ok());
  EXPECT_EQ(service_->Stats().idempotency_keys_in_flight, 0u);
  EXPECT_EQ(Get("a")->value, 1);
  EXPECT_TRUE(Run(tx).replayed);  // no longer in flight
}

TEST_F(CounterServiceTest, KeysPastRetentionRunAgain) {
  const Transaction tx = WithKey(Tx(OpKind::kAdd, "a", 1), "k");
  Run(tx);
  clock_.Advance(std::chrono::hours(25));
  auto o = Run(tx);
  EXPECT_FALSE(o.replayed);
  EXPECT_EQ(o.results[0].counter->value, 2);
}

TEST_F(CounterServiceTest, StatsComeFromTheRepository) {
  Run(Tx(OpKind::kAdd, "a", 1));
  Run(Tx(OpKind::kAdd, "b", 1));
  const ServiceStats stats = service_->Stats();
  EXPECT_EQ(stats.repository.backend, "file");
  EXPECT_EQ(stats.repository.counters, 2u);
  EXPECT_EQ(stats.repository.mutations, 2u);
  EXPECT_EQ(stats.repository.commits, 2u);
}

}  // namespace
}  // namespace counterd::service
