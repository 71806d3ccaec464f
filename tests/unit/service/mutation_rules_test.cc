#include "counterd/service/mutation_rules.h"

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace counterd::service {
namespace {

using domain::Counter;
using domain::CounterName;
using domain::IdempotencyIntent;
using domain::IdempotencyKey;
using domain::Operation;
using domain::OpKind;
using domain::Transaction;
using domain::TransactionOutcome;

constexpr std::int64_t kNow = 1'763'683'200'000;
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

Operation Op(OpKind kind, std::string_view name, std::int64_t operand = 0) {
  Operation op;
  op.kind = kind;
  op.name = *CounterName::Parse(name);
  op.operand = operand;
  return op;
}

// A committed store of counters the working set is seeded from, as a
// backend would seed it.
class MutationRulesTest : public ::testing::Test {
 protected:
  TransactionOutcome Run(const Transaction& tx, std::int64_t now = kNow) {
    for (const std::string& name : ws_.MissingCounters(tx)) {
      const auto it = stored_.find(name);
      ws_.SeedCounter(
          name, it == stored_.end() ? std::nullopt : std::optional(it->second));
    }
    if (ws_.NeedsIdempotency(tx)) {
      ws_.SeedIdempotency(*tx.idempotency, std::nullopt);
    }
    return MutationRules::Apply(tx, ws_, now);
  }
  TransactionOutcome Run(const Operation& op, std::int64_t now = kNow) {
    return Run(domain::SingleOperation(op), now);
  }
  static Counter C(std::string name, std::int64_t value, std::uint64_t version,
                   std::int64_t expires = 0) {
    return Counter{std::move(name), value, version, expires};
  }

  std::map<std::string, Counter> stored_;
  WorkingSet ws_;
};

TEST_F(MutationRulesTest, IncrementCreatesAtVersionOne) {
  const TransactionOutcome out = Run(Op(OpKind::kAdd, "a", 5));
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].counter, C("a", 5, 1));
  EXPECT_TRUE(out.results[0].created);
  const auto writes = ws_.CounterWrites();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].row, C("a", 5, 1));
}

TEST_F(MutationRulesTest, LaterTransactionsSeeEarlierOnesInTheSameCommit) {
  stored_["a"] = C("a", 10, 4);
  EXPECT_EQ(Run(Op(OpKind::kAdd, "a", 1)).results[0].counter, C("a", 11, 5));
  EXPECT_EQ(Run(Op(OpKind::kSubtract, "a", 3)).results[0].counter,
            C("a", 8, 6));
  // One write per touched row, with its final state.
  const auto writes = ws_.CounterWrites();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].row, C("a", 8, 6));
}

TEST_F(MutationRulesTest, OverflowRefusesAndChangesNothing) {
  stored_["a"] = C("a", kMax, 2);
  const TransactionOutcome out = Run(Op(OpKind::kAdd, "a", 1));
  EXPECT_EQ(out.status.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(out.failed_op, 0u);
  EXPECT_TRUE(ws_.empty());
  // Decrement by INT64_MIN from 0 overflows; from -1 it is exact.
  EXPECT_EQ(Run(Op(OpKind::kSubtract, "z", kMin)).status.code(),
            StatusCode::kOutOfRange);
  stored_["m"] = C("m", -1, 1);
  EXPECT_EQ(Run(Op(OpKind::kSubtract, "m", kMin)).results[0].counter,
            C("m", kMax, 2));
}

TEST_F(MutationRulesTest, BoundsRefuseWithoutConsumingAndReportCurrent) {
  stored_["q"] = C("q", 99, 7, kNow + 5000);
  Operation op = Op(OpKind::kAdd, "q", 1);
  op.max = 100;
  const TransactionOutcome first = Run(op);
  ASSERT_TRUE(first.status.ok());
  EXPECT_EQ(first.results[0].counter, C("q", 100, 8, kNow + 5000));
  const TransactionOutcome second = Run(op);
  EXPECT_EQ(second.status.code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(second.current, C("q", 100, 8, kNow + 5000));
  EXPECT_EQ(ws_.CounterWrites()[0].row, C("q", 100, 8, kNow + 5000));

  Operation down = Op(OpKind::kSubtract, "q", 101);
  down.min = 0;
  EXPECT_EQ(Run(down).status.code(), StatusCode::kLimitExceeded);
  // The bound applies to the result even when the counter starts outside.
  stored_["hi"] = C("hi", 150, 1);
  Operation toward = Op(OpKind::kSubtract, "hi", 1);
  toward.max = 100;
  EXPECT_EQ(Run(toward).status.code(), StatusCode::kLimitExceeded);
}

TEST_F(MutationRulesTest, TtlAppliesOnlyWhenTheOperationCreates) {
  Operation op = Op(OpKind::kAdd, "w", 1);
  op.ttl_seconds = 60;
  EXPECT_EQ(Run(op).results[0].counter, C("w", 1, 1, kNow + 60'000));
  // Later in the window: the expiry stays where the first one put it.
  EXPECT_EQ(Run(op, kNow + 30'000).results[0].counter,
            C("w", 2, 2, kNow + 60'000));
  // From the expiry instant on, the counter is gone: a new window.
  const TransactionOutcome fresh = Run(op, kNow + 60'000);
  EXPECT_EQ(fresh.results[0].counter, C("w", 1, 1, kNow + 120'000));
  EXPECT_TRUE(fresh.results[0].created);
}

TEST_F(MutationRulesTest, ExpiredCountersAreAbsentForEveryOperation) {
  stored_["e"] = C("e", 5, 3, kNow);  // expires exactly now
  EXPECT_EQ(Run(Op(OpKind::kDelete, "e")).status.code(), StatusCode::kNotFound);
  Operation get = Op(OpKind::kGet, "e");
  EXPECT_EQ(Run(get).results[0].counter, std::nullopt);
  Operation match = Op(OpKind::kAdd, "e", 1);
  match.precondition.version_in = {3};
  EXPECT_EQ(Run(match).status.code(), StatusCode::kFailedPrecondition);
  Operation create = Op(OpKind::kSet, "e", 9);
  create.precondition.must_be_absent = true;
  EXPECT_EQ(Run(create).results[0].counter, C("e", 9, 1));
}

TEST_F(MutationRulesTest, SetWithoutTtlClearsTheExpiry) {
  stored_["s"] = C("s", 1, 1, kNow + 1000);
  EXPECT_EQ(Run(Op(OpKind::kSet, "s", 2)).results[0].counter, C("s", 2, 2));
  Operation with_ttl = Op(OpKind::kSet, "s", 3);
  with_ttl.ttl_seconds = 10;
  EXPECT_EQ(Run(with_ttl).results[0].counter, C("s", 3, 3, kNow + 10'000));
  EXPECT_FALSE(Run(with_ttl).results[0].created);
}

TEST_F(MutationRulesTest, PreconditionsFollowRfc9110) {
  stored_["p"] = C("p", 1, 3);
  Operation op = Op(OpKind::kSet, "p", 2);
  op.precondition.version_in = {2, 4};
  EXPECT_EQ(Run(op).status.code(), StatusCode::kFailedPrecondition);
  op.precondition.version_in = {2, 3};
  EXPECT_EQ(Run(op).results[0].counter, C("p", 2, 4));
  Operation absent = Op(OpKind::kSet, "p", 0);
  absent.precondition.must_be_absent = true;
  EXPECT_EQ(Run(absent).status.code(), StatusCode::kFailedPrecondition);
  Operation exists = Op(OpKind::kDelete, "nope");
  exists.precondition.must_exist = true;
  EXPECT_EQ(Run(exists).status.code(), StatusCode::kFailedPrecondition);
}

TEST_F(MutationRulesTest, BatchIsAllOrNothingAndNamesTheFailingOperation) {
  stored_["b"] = C("b", 1, 1);
  Transaction tx;
  tx.batch = true;
  tx.ops = {Op(OpKind::kAdd, "a", 1), Op(OpKind::kAdd, "a", 1),
            Op(OpKind::kDelete, "missing"), Op(OpKind::kAdd, "b", 1)};
  const TransactionOutcome out = Run(tx);
  EXPECT_EQ(out.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(out.failed_op, 2u);
  EXPECT_TRUE(out.results.empty());
  EXPECT_TRUE(ws_.empty());

  tx.ops[2] = Op(OpKind::kGet, "a");
  const TransactionOutcome ok = Run(tx);
  ASSERT_TRUE(ok.status.ok());
  ASSERT_EQ(ok.results.size(), 4u);
  EXPECT_EQ(ok.results[1].counter, C("a", 2, 2));
  EXPECT_EQ(ok.results[2].counter, C("a", 2, 2));
  EXPECT_EQ(ok.results[3].counter, C("b", 2, 2));
}

TEST_F(MutationRulesTest, DeleteThenRecreateInOneBatch) {
  stored_["d"] = C("d", 7, 9);
  Transaction tx;
  tx.ops = {Op(OpKind::kDelete, "d"), Op(OpKind::kAdd, "d", 1)};
  const TransactionOutcome out = Run(tx);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.results[0].counter, std::nullopt);
  EXPECT_EQ(out.results[1].counter, C("d", 1, 1));
  EXPECT_TRUE(out.results[1].created);
}

TEST_F(MutationRulesTest, IdempotencyReplaysAndRefusesReuse) {
  Transaction tx = domain::SingleOperation(Op(OpKind::kAdd, "i", 1));
  tx.idempotency = IdempotencyIntent{"billing", *IdempotencyKey::Parse("k")};
  const TransactionOutcome first = Run(tx);
  ASSERT_TRUE(first.status.ok());
  ASSERT_EQ(ws_.IdempotencyWrites().size(), 1u);
  EXPECT_EQ(ws_.IdempotencyWrites()[0].created_at_ms, kNow);

  const TransactionOutcome again = Run(tx);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.results, first.results);
  EXPECT_EQ(ws_.CounterWrites()[0].row, C("i", 1, 1));  // applied once

  Transaction other = tx;
  other.ops[0].operand = 2;
  EXPECT_EQ(Run(other).status.code(), StatusCode::kAlreadyExists);

  // Another scope's same key is another key.
  Transaction theirs = tx;
  theirs.idempotency->scope = "ops";
  const TransactionOutcome separate = Run(theirs);
  EXPECT_FALSE(separate.replayed);
  EXPECT_EQ(separate.results[0].counter, C("i", 2, 2));
}

TEST_F(MutationRulesTest, RefusalsWithAKeyAreStoredAndReplayed) {
  stored_["r"] = C("r", 100, 1);
  Operation op = Op(OpKind::kAdd, "r", 1);
  op.max = 100;
  Transaction tx = domain::SingleOperation(op);
  tx.idempotency = IdempotencyIntent{"", *IdempotencyKey::Parse("k2")};
  const TransactionOutcome first = Run(tx);
  EXPECT_EQ(first.status.code(), StatusCode::kLimitExceeded);
  ASSERT_EQ(ws_.IdempotencyWrites().size(), 1u);
  const TransactionOutcome replay = Run(tx);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.status, first.status);
  EXPECT_EQ(replay.current, first.current);
}

}  // namespace
}  // namespace counterd::service
