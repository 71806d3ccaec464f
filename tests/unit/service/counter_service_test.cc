// The counter rules over a real store on MemFileSystem, committed by hand.
#include "counterd/service/counter_service.h"

#include <climits>
#include <optional>

#include <gtest/gtest.h>

#include "support/mem_file_system.h"

namespace counterd::service {
namespace {

using domain::CounterName;
using domain::MutationOutcome;
using Kind = MutationRequest::Kind;

class CounterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    service_.reset();
    store_.reset();
    storage::StoreOptions options;
    options.data_dir = "/data";
    options.start_committer = false;
    options.idempotency_retention = std::chrono::hours(24);
    auto store = storage::CounterStore::Open(fs_, clock_, options);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    service_ = std::make_unique<CounterService>(*store_);
  }

  static MutationRequest Request(Kind kind, const char* name,
                                 std::int64_t operand = 0) {
    return MutationRequest{kind, *CounterName::Parse(name), operand, {}, {}};
  }

  MutationOutcome Run(MutationRequest request) {
    std::optional<MutationOutcome> out;
    service_->Mutate(std::move(request),
                     [&](MutationOutcome o) { out = std::move(o); });
    store_->CommitPendingBatch();
    EXPECT_TRUE(out.has_value());
    return out.value_or(
        MutationOutcome{Status::Internal("none"), {}, false, false});
  }

  static MutationRequest WithKey(MutationRequest r, const char* key,
                                 std::string fingerprint) {
    r.idempotency = IdempotencyIntent{*domain::IdempotencyKey::Parse(key),
                                      std::move(fingerprint), ""};
    return r;
  }

  counterd::testing::MemFileSystem fs_;
  ManualClock clock_{
      std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50))};
  std::unique_ptr<storage::CounterStore> store_;
  std::unique_ptr<CounterService> service_;
};

TEST_F(CounterServiceTest, IncrementCreatesAtZeroAndVersionsGrow) {
  auto o = Run(Request(Kind::kAdd, "a", 5));
  ASSERT_TRUE(o.status.ok());
  EXPECT_TRUE(o.created);
  EXPECT_EQ(*o.counter, (domain::Counter{"a", 5, 1}));
  o = Run(Request(Kind::kSubtract, "a", 7));
  EXPECT_EQ(*o.counter, (domain::Counter{"a", -2, 2}));
  EXPECT_FALSE(o.created);
  EXPECT_EQ(service_->Get(*CounterName::Parse("a"))->value, -2);
}

TEST_F(CounterServiceTest, OverflowAtBothEndsChangesNothing) {
  ASSERT_TRUE(Run(Request(Kind::kSet, "hi", INT64_MAX)).status.ok());
  ASSERT_TRUE(Run(Request(Kind::kSet, "lo", INT64_MIN)).status.ok());
  EXPECT_EQ(Run(Request(Kind::kAdd, "hi", 1)).status.code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(Run(Request(Kind::kSubtract, "lo", 1)).status.code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(Run(Request(Kind::kAdd, "lo", -1)).status.code(),
            StatusCode::kOutOfRange);
  // Subtracting INT64_MIN is exact, not a negation that overflows.
  ASSERT_TRUE(Run(Request(Kind::kSet, "m", -1)).status.ok());
  auto o = Run(Request(Kind::kSubtract, "m", INT64_MIN));
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.counter->value, INT64_MAX);
  EXPECT_EQ(Run(Request(Kind::kSubtract, "zero", INT64_MIN)).status.code(),
            StatusCode::kOutOfRange);
  EXPECT_FALSE(service_->Get(*CounterName::Parse("zero")).has_value());
  EXPECT_EQ(service_->Get(*CounterName::Parse("hi"))->value, INT64_MAX);
  EXPECT_EQ(service_->Get(*CounterName::Parse("hi"))->version, 1u);
  EXPECT_EQ(service_->Get(*CounterName::Parse("lo"))->value, INT64_MIN);
}

TEST_F(CounterServiceTest, SetReportsCreatedThenReplaced) {
  EXPECT_TRUE(Run(Request(Kind::kSet, "a", 3)).created);
  auto o = Run(Request(Kind::kSet, "a", 4));
  EXPECT_FALSE(o.created);
  EXPECT_EQ(*o.counter, (domain::Counter{"a", 4, 2}));
}

TEST_F(CounterServiceTest, Preconditions) {
  ASSERT_TRUE(Run(Request(Kind::kSet, "a", 1)).status.ok());  // version 1
  auto r = Request(Kind::kSet, "a", 9);
  r.precondition.version_in = {2};
  EXPECT_EQ(Run(r).status.code(), StatusCode::kFailedPrecondition);
  r.precondition.version_in = {0, 1};
  EXPECT_TRUE(Run(r).status.ok());

  auto absent = Request(Kind::kSet, "a", 5);
  absent.precondition.must_be_absent = true;
  EXPECT_EQ(Run(absent).status.code(), StatusCode::kFailedPrecondition);
  absent.name = *CounterName::Parse("new");
  EXPECT_TRUE(Run(absent).status.ok());

  auto must_exist = Request(Kind::kAdd, "missing", 1);
  must_exist.precondition.must_exist = true;
  EXPECT_EQ(Run(must_exist).status.code(), StatusCode::kFailedPrecondition);
  auto if_match_missing = Request(Kind::kDelete, "missing");
  if_match_missing.precondition.version_in = {1};
  EXPECT_EQ(Run(if_match_missing).status.code(),
            StatusCode::kFailedPrecondition);
  EXPECT_FALSE(service_->Get(*CounterName::Parse("missing")).has_value());
}

TEST_F(CounterServiceTest, DeleteThenNotFound) {
  ASSERT_TRUE(Run(Request(Kind::kSet, "a", 1)).status.ok());
  EXPECT_TRUE(Run(Request(Kind::kDelete, "a")).status.ok());
  EXPECT_EQ(Run(Request(Kind::kDelete, "a")).status.code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service_->Get(*CounterName::Parse("a")).error().code(),
            StatusCode::kNotFound);
}

TEST_F(CounterServiceTest, DefaultCounterReadsZeroUntilWritten) {
  EXPECT_EQ(service_->GetDefault(), (domain::Counter{"default", 0, 0}));
  Run(Request(Kind::kAdd, "default", 1));
  EXPECT_EQ(service_->GetDefault().value, 1);
}

TEST_F(CounterServiceTest, ListPagesWalkEveryCounterOnce) {
  for (int i = 0; i < 25; ++i) {
    Run(Request(Kind::kSet, ("c" + std::to_string(100 + i)).c_str(), i));
  }
  std::vector<std::string> seen;
  ListQuery q;
  q.limit = 7;
  while (true) {
    ListPage page = service_->List(q);
    for (const auto& c : page.counters) seen.push_back(c.name);
    if (!page.next) break;
    q.after = *page.next;
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
}

TEST_F(CounterServiceTest, IdempotentRetryReplaysAndSurvivesRestart) {
  const auto req = WithKey(Request(Kind::kAdd, "a", 2), "key-1", "POST a by=2");
  auto first = Run(req);
  ASSERT_TRUE(first.status.ok());
  EXPECT_FALSE(first.replayed);
  auto again = Run(req);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.counter, first.counter);
  EXPECT_EQ(service_->Get(*CounterName::Parse("a"))->value, 2);

  Reopen();
  auto after_restart = Run(req);
  EXPECT_TRUE(after_restart.replayed);
  EXPECT_EQ(after_restart.counter, first.counter);
  EXPECT_EQ(service_->Get(*CounterName::Parse("a"))->value, 2);

  auto other =
      Run(WithKey(Request(Kind::kAdd, "a", 3), "key-1", "POST a by=3"));
  EXPECT_EQ(other.status.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(service_->Get(*CounterName::Parse("a"))->value, 2);
}

// Idempotency-Keys are scoped by token name: the same key sent by another
// token is another key (it runs, and never replays the first caller's
// answer), and each scope keeps its own record across a restart.
TEST_F(CounterServiceTest, SameKeyInAnotherScopeIsAnotherKey) {
  auto as = [](MutationRequest r, const char* scope) {
    r.idempotency->scope = scope;
    return r;
  };
  const auto req = WithKey(Request(Kind::kAdd, "a", 2), "key-1", "POST a by=2");
  auto billing = Run(as(req, "billing"));
  ASSERT_TRUE(billing.status.ok());
  EXPECT_FALSE(billing.replayed);
  EXPECT_EQ(billing.counter->value, 2);

  auto ops = Run(as(req, "ops"));
  ASSERT_TRUE(ops.status.ok());
  EXPECT_FALSE(ops.replayed) << "another token replayed billing's answer";
  EXPECT_EQ(ops.counter->value, 4);

  // Unscoped (authentication off) is a scope of its own as well.
  auto unscoped = Run(req);
  EXPECT_FALSE(unscoped.replayed);
  EXPECT_EQ(unscoped.counter->value, 6);

  // A different request under ops' key is refused for ops only.
  auto reused = Run(
      as(WithKey(Request(Kind::kAdd, "a", 9), "key-1", "POST a by=9"), "ops"));
  EXPECT_EQ(reused.status.code(), StatusCode::kAlreadyExists);

  Reopen();
  auto billing_again = Run(as(req, "billing"));
  EXPECT_TRUE(billing_again.replayed);
  EXPECT_EQ(billing_again.counter->value, 2);
  auto ops_again = Run(as(req, "ops"));
  EXPECT_TRUE(ops_again.replayed);
  EXPECT_EQ(ops_again.counter->value, 4);
  EXPECT_EQ(service_->Get(*CounterName::Parse("a"))->value, 6);
}

TEST_F(CounterServiceTest, StoredKeyKeepsUnscopedKeysAsTheyWere) {
  IdempotencyIntent intent{*domain::IdempotencyKey::Parse("k-1"), "f", ""};
  EXPECT_EQ(intent.StoredKey(), "k-1");
  intent.scope = "billing";
  EXPECT_EQ(intent.StoredKey(), std::string("billing\x1f"
                                            "k-1"));
}

TEST_F(CounterServiceTest, RefusalsAreReplayedToo) {
  ASSERT_TRUE(Run(Request(Kind::kSet, "a", INT64_MAX)).status.ok());
  const auto req = WithKey(Request(Kind::kAdd, "a", 1), "k", "f");
  EXPECT_EQ(Run(req).status.code(), StatusCode::kOutOfRange);
  auto again = Run(req);
  EXPECT_EQ(again.status.code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(again.replayed);
}

TEST_F(CounterServiceTest, SameKeyInFlightIsAborted) {
  const auto req = WithKey(Request(Kind::kAdd, "a", 1), "k", "f");
  std::vector<MutationOutcome> outcomes;
  for (int i = 0; i < 3; ++i) {
    service_->Mutate(req, [&](MutationOutcome o) { outcomes.push_back(o); });
  }
  // Two refused at once, before any commit.
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].status.code(), StatusCode::kAborted);
  EXPECT_EQ(outcomes[1].status.code(), StatusCode::kAborted);
  store_->CommitPendingBatch();
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[2].status.ok());
  EXPECT_EQ(service_->Get(*CounterName::Parse("a"))->value, 1);
  EXPECT_TRUE(Run(req).replayed);  // no longer in flight
}

TEST_F(CounterServiceTest, ExpiredKeysRunAgain) {
  const auto req = WithKey(Request(Kind::kAdd, "a", 1), "k", "f");
  Run(req);
  clock_.Advance(std::chrono::hours(25));
  auto o = Run(req);
  EXPECT_FALSE(o.replayed);
  EXPECT_EQ(o.counter->value, 2);
}

}  // namespace
}  // namespace counterd::service
