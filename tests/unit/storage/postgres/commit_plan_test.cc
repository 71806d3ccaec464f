// The SQL layer's planning: lock order, each row written once, insert vs
// update vs delete, what is published, and parsing what the first round
// trip answers.
#include "commit_plan.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "record_codec.h"
#include "schema.h"
#include "sql_text.h"
#include "unit/storage/postgres/fake_pq.h"

namespace counterd::storage::postgres {
namespace {

domain::Transaction Tx(domain::OpKind kind, const char* name,
                       std::int64_t operand = 1) {
  domain::Operation op;
  op.kind = kind;
  op.name = *domain::CounterName::Parse(name);
  op.operand = operand;
  return domain::SingleOperation(op);
}
domain::Transaction Keyed(domain::Transaction tx, const char* scope,
                          const char* key) {
  tx.idempotency =
      domain::IdempotencyIntent{scope, *domain::IdempotencyKey::Parse(key)};
  return tx;
}

std::vector<const domain::Transaction*> Ptrs(
    const std::vector<domain::Transaction>& txs) {
  std::vector<const domain::Transaction*> out;
  for (const auto& tx : txs) out.push_back(&tx);
  return out;
}

TEST(CommitPlanTest, LocksEveryNameOnceInSortedOrder) {
  const std::vector<domain::Transaction> txs = {
      Tx(domain::OpKind::kAdd, "zeta"), Tx(domain::OpKind::kAdd, "alpha"),
      Tx(domain::OpKind::kAdd, "zeta"), Tx(domain::OpKind::kGet, "Mid")};
  const LockPlan plan = PlanLocks(Ptrs(txs));
  EXPECT_EQ(plan.names, (std::vector<std::string>{"Mid", "alpha", "zeta"}));
  EXPECT_TRUE(plan.keys.empty());
}

TEST(CommitPlanTest, KeysAreUniquePerScope) {
  const std::vector<domain::Transaction> txs = {
      Keyed(Tx(domain::OpKind::kAdd, "a"), "", "k1"),
      Keyed(Tx(domain::OpKind::kAdd, "a"), "", "k1"),
      Keyed(Tx(domain::OpKind::kAdd, "a"), "tenant", "k1")};
  const LockPlan plan = PlanLocks(Ptrs(txs));
  EXPECT_EQ(plan.scopes, (std::vector<std::string>{"", "tenant"}));
  EXPECT_EQ(plan.keys, (std::vector<std::string>{"k1", "k1"}));
}

TEST(CommitPlanTest, LockQueriesReadTheClockLastAndRollBackFirst) {
  LockPlan plan;
  plan.names = {"a", "b"};
  plan.scopes = {""};
  plan.keys = {"k"};
  const LockQueries q =
      MakeLockQueries(plan, std::chrono::milliseconds(5000), true);
  ASSERT_EQ(q.queries.size(), 6u);
  EXPECT_EQ(q.queries[0].text, "ROLLBACK");
  EXPECT_EQ(q.queries[1].text, "BEGIN");
  EXPECT_EQ(q.queries[q.lock_index].text, stmt::kLock);
  EXPECT_EQ(q.queries[q.lock_index].params[0].value, R"({"a","b"})");
  EXPECT_EQ(q.queries[3].text, stmt::kIdemExpire);
  EXPECT_EQ(q.queries[3].params[2].value, "5000");
  EXPECT_EQ(q.queries[*q.records_index].text, stmt::kIdemGet);
  EXPECT_EQ(q.now_index, 5u);
  EXPECT_EQ(q.queries[q.now_index].text, stmt::kNow);
  const LockQueries plain = MakeLockQueries(
      LockPlan{{"a"}, {}, {}}, std::chrono::milliseconds(1), false);
  EXPECT_EQ(plain.queries.size(), 3u);
  EXPECT_FALSE(plain.records_index.has_value());
}

// The first round trip's answers for |rows| and |records| at |now_ms|.
std::vector<PgResult> LockReply(
    const LockQueries& q, const std::vector<domain::Counter>& rows,
    const std::vector<domain::IdempotencyRecord>& records,
    std::int64_t now_ms) {
  std::vector<PgResult> results(q.queries.size(), CommandOk());
  PgResult lock;
  lock.kind = PgResult::Kind::kTuples;
  lock.column_count = 4;
  for (const auto& c : rows) {
    lock.cells.push_back(c.name);
    lock.cells.push_back(std::to_string(c.value));
    lock.cells.push_back(std::to_string(c.version));
    lock.cells.push_back(std::to_string(c.expires_at_ms));
    ++lock.row_count;
  }
  results[q.lock_index] = lock;
  if (q.records_index) {
    PgResult rec;
    rec.kind = PgResult::Kind::kTuples;
    rec.column_count = 5;
    for (const auto& r : records) {
      auto hex = [](const std::string& bytes) {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out = "\\x";
        for (char ch : bytes) {
          const auto c = static_cast<unsigned char>(ch);
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        }
        return out;
      };
      rec.cells.push_back(r.scope);
      rec.cells.push_back(r.key);
      rec.cells.push_back(hex(EncodeFingerprint(r.request)));
      rec.cells.push_back(hex(EncodeOutcome(r.outcome)));
      rec.cells.push_back(std::to_string(r.created_at_ms));
      ++rec.row_count;
    }
    results[*q.records_index] = rec;
  }
  results[q.now_index] = TuplesResult({std::to_string(now_ms)});
  return results;
}

// Runs |txs| through the plan and the rules, as the repository does.
struct Decided {
  std::vector<domain::TransactionOutcome> outcomes;
  WritePlan writes;
};
Decided Decide(const std::vector<domain::Transaction>& txs,
               const std::vector<domain::Counter>& rows,
               const std::vector<domain::IdempotencyRecord>& records = {},
               std::int64_t now_ms = 1000) {
  const LockPlan plan = PlanLocks(Ptrs(txs));
  const LockQueries q =
      MakeLockQueries(plan, std::chrono::milliseconds(1), false);
  auto state = ParseLockReply(q, LockReply(q, rows, records, now_ms));
  EXPECT_TRUE(state.has_value());
  service::WorkingSet ws;
  Seed(plan, *state, ws);
  std::set<std::string, std::less<>> existing;
  for (const auto& r : state->rows) existing.insert(r.name);
  Decided d;
  for (const auto& tx : txs) {
    d.outcomes.push_back(service::MutationRules::Apply(tx, ws, state->now_ms));
  }
  d.writes = PlanWrites(ws, existing);
  return d;
}

TEST(CommitPlanTest, ManyIncrementsOfAHotCounterAreOneRowUpdate) {
  std::vector<domain::Transaction> txs(500, Tx(domain::OpKind::kAdd, "hot"));
  const Decided d = Decide(txs, {domain::Counter{"hot", 10, 4, 0}});
  ASSERT_EQ(d.outcomes.size(), 500u);
  EXPECT_EQ(d.outcomes.back().results[0].counter->value, 510);
  EXPECT_EQ(d.outcomes.back().results[0].counter->version, 504u);
  ASSERT_EQ(d.writes.updates.size(), 1u);
  EXPECT_EQ(d.writes.updates[0], (domain::Counter{"hot", 510, 504, 0}));
  EXPECT_TRUE(d.writes.inserts.empty());
  const WriteQueries q = MakeWriteQueries(d.writes);
  ASSERT_EQ(q.queries.size(), 3u);  // UPDATE, publish, COMMIT
  EXPECT_EQ(q.queries[0].text, stmt::kUpdate);
  EXPECT_EQ(q.queries[0].params[0].value, R"({"hot"})");
  EXPECT_EQ(q.queries[0].params[1].value, "{510}");
  EXPECT_EQ(q.queries[0].params[2].value, "{504}");
  EXPECT_EQ(q.queries[*q.publish_index].text, stmt::kPublish);
  // An update adds no row to the stored count.
  EXPECT_EQ(q.queries[*q.publish_index].params.at(4).value, "0");
  EXPECT_EQ(q.queries[q.commit_index].text, "COMMIT");
}

TEST(CommitPlanTest, NewRowsAreInsertedInNameOrderNotUpserted) {
  const std::vector<domain::Transaction> txs = {
      Tx(domain::OpKind::kAdd, "b", 2), Tx(domain::OpKind::kAdd, "a", 3),
      Tx(domain::OpKind::kAdd, "c", 1)};
  const Decided d = Decide(txs, {domain::Counter{"c", 1, 1, 0}});
  ASSERT_EQ(d.writes.inserts.size(), 2u);
  EXPECT_EQ(d.writes.inserts[0].name, "a");
  EXPECT_EQ(d.writes.inserts[1].name, "b");
  EXPECT_EQ(d.writes.inserts[0].version, 1u);
  ASSERT_EQ(d.writes.updates.size(), 1u);
  EXPECT_EQ(d.writes.updates[0].name, "c");
  const WriteQueries q = MakeWriteQueries(d.writes);
  EXPECT_EQ(q.queries[0].text, stmt::kUpdate);
  EXPECT_EQ(q.queries[1].text, stmt::kInsert);
  EXPECT_EQ(q.queries[1].params[0].value, R"({"a","b"})");
  // Two rows created: the stored count grows by two.
  EXPECT_EQ(q.queries[*q.publish_index].params.at(4).value, "2");
}

TEST(CommitPlanTest, DeletesAndCreateThenDeleteInOneBatch) {
  const std::vector<domain::Transaction> txs = {
      Tx(domain::OpKind::kDelete, "old"), Tx(domain::OpKind::kAdd, "tmp"),
      Tx(domain::OpKind::kDelete, "tmp")};
  const Decided d = Decide(txs, {domain::Counter{"old", 1, 1, 0}});
  EXPECT_EQ(d.writes.deletes, std::vector<std::string>{"old"});
  EXPECT_TRUE(d.writes.inserts.empty());  // tmp never reaches the table
  ASSERT_EQ(d.writes.changes.size(), 1u);
  EXPECT_EQ(d.writes.changes[0].name, "old");
  EXPECT_FALSE(d.writes.changes[0].state.has_value());
  const WriteQueries q = MakeWriteQueries(d.writes);
  EXPECT_EQ(q.queries[0].text, stmt::kDelete);
  // A deletion is published as version 0, and shrinks the stored count.
  EXPECT_EQ(q.queries[*q.publish_index].params[2].value, "{0}");
  EXPECT_EQ(q.queries[*q.publish_index].params.at(4).value, "-1");
}

TEST(CommitPlanTest, AnExpiredRowIsReplacedByUpdateAtVersionOne) {
  const Decided d = Decide({Tx(domain::OpKind::kAdd, "w", 5)},
                           {domain::Counter{"w", 99, 7, 500}}, {}, 1000);
  ASSERT_EQ(d.writes.updates.size(), 1u);
  EXPECT_EQ(d.writes.updates[0], (domain::Counter{"w", 5, 1, 0}));
  EXPECT_TRUE(d.outcomes[0].results[0].created);
}

TEST(CommitPlanTest, RefusalsWriteNothingButTheirIdempotencyRecord) {
  domain::Transaction bounded = Tx(domain::OpKind::kAdd, "q", 5);
  bounded.ops[0].max = 3;
  const Decided plain = Decide({bounded}, {});
  EXPECT_EQ(plain.outcomes[0].status.code(), StatusCode::kLimitExceeded);
  EXPECT_TRUE(plain.writes.empty());
  const WriteQueries none = MakeWriteQueries(plain.writes);
  ASSERT_EQ(none.queries.size(), 1u);
  EXPECT_EQ(none.queries[0].text, "COMMIT");

  const Decided keyed = Decide({Keyed(bounded, "", "k")}, {});
  EXPECT_TRUE(keyed.writes.changes.empty());
  ASSERT_EQ(keyed.writes.records.size(), 1u);
  const WriteQueries q = MakeWriteQueries(keyed.writes);
  ASSERT_EQ(q.queries.size(), 2u);
  EXPECT_EQ(q.queries[0].text, stmt::kIdemPut);
  EXPECT_FALSE(q.publish_index.has_value());
}

TEST(CommitPlanTest, AStoredRecordReplaysWithoutWriting) {
  const domain::Transaction tx =
      Keyed(Tx(domain::OpKind::kAdd, "a", 1), "", "k");
  domain::TransactionOutcome first;
  first.results.push_back({domain::Counter{"a", 1, 1, 0}, true});
  const domain::IdempotencyRecord record{"", "k", tx.MakeFingerprint(), 900,
                                         first};
  const Decided d = Decide({tx}, {domain::Counter{"a", 1, 1, 0}}, {record});
  EXPECT_TRUE(d.outcomes[0].replayed);
  EXPECT_EQ(d.outcomes[0].results, first.results);
  EXPECT_TRUE(d.writes.empty());
}

TEST(CommitPlanTest, MalformedAnswersAreRefused) {
  const LockPlan plan{{"a"}, {}, {}};
  const LockQueries q =
      MakeLockQueries(plan, std::chrono::milliseconds(1), false);
  auto results = LockReply(q, {domain::Counter{"a", 1, 1, 0}}, {}, 5);
  results[q.lock_index].cells[2] = "0";  // version 0 is never stored
  EXPECT_EQ(ParseLockReply(q, results).error().code(), StatusCode::kDataLoss);
  results = LockReply(q, {}, {}, 5);
  results[q.now_index] = CommandOk();
  EXPECT_EQ(ParseLockReply(q, results).error().code(), StatusCode::kInternal);
}

// A listing's answer: the commit sequence number on every row, and one row
// with a NULL name when nothing matched.
TEST(CommitPlanTest, AListingCarriesItsCommitSequenceNumber) {
  PgResult res;
  res.kind = PgResult::Kind::kTuples;
  res.column_count = 5;
  for (const char* name : {"a", "b"}) {
    for (std::optional<std::string> cell :
         {std::optional<std::string>("7"), std::optional<std::string>(name),
          std::optional<std::string>("3"), std::optional<std::string>("2"),
          std::optional<std::string>("0")}) {
      res.cells.push_back(std::move(cell));
    }
    ++res.row_count;
  }
  Result<CounterList> two = ParseCounterList(res);
  ASSERT_TRUE(two.has_value()) << two.error().ToString();
  EXPECT_EQ(two->seq, 7u);
  EXPECT_EQ(two->counters,
            (std::vector<domain::Counter>{{"a", 3, 2, 0}, {"b", 3, 2, 0}}));

  PgResult empty;
  empty.kind = PgResult::Kind::kTuples;
  empty.column_count = 5;
  empty.cells = {"9", std::nullopt, std::nullopt, std::nullopt, std::nullopt};
  empty.row_count = 1;
  Result<CounterList> none = ParseCounterList(empty);
  ASSERT_TRUE(none.has_value()) << none.error().ToString();
  EXPECT_EQ(none->seq, 9u);
  EXPECT_TRUE(none->counters.empty());

  empty.row_count = 0;
  empty.cells.clear();
  EXPECT_EQ(ParseCounterList(empty).error().code(), StatusCode::kInternal);
  res.cells[3] = "0";  // version 0 is never stored
  EXPECT_EQ(ParseCounterList(res).error().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace counterd::storage::postgres
