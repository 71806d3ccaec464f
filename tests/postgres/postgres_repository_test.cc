// PostgresRepository against a real PostgreSQL 15 server (label
// "postgres"; with_cluster.py makes the server). Each test uses a fresh
// database on it.
#include "counterd/storage/postgres_repository.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "blocking_session.h"
#include "counterd/core/mutex.h"
#include "counterd/storage/snapshot_document.h"
#include "schema.h"
#include "sql_text.h"

namespace counterd::storage {
namespace {

using namespace std::chrono_literals;
using postgres::BlockingSession;
using postgres::PgConnection;

std::string BaseUrl() {
  const char* url = std::getenv("COUNTERD_TEST_POSTGRES_URL");  // NOLINT
  return url != nullptr ? url : "";
}

// Runs |sql| on |url|; returns the first cell of the last result.
std::string Sql(const std::string& url, const std::string& sql) {
  auto connector = postgres::NewLibpqConnector();
  BlockingSession s(*connector, url);
  EXPECT_TRUE(s.Connect(10s, /*check_server=*/false).has_value());
  PgConnection::Reply r = s.Run({PgConnection::Query::Sql(sql)}, 30s);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  if (!r.status.ok() || r.results.empty()) return "";
  const postgres::PgResult& res = r.results.back();
  EXPECT_NE(res.kind, postgres::PgResult::Kind::kError) << res.message;
  if (res.row_count == 0) return "";
  return res.Cell(0, 0).value_or("NULL");
}

// A new, empty database on the test server; returns its URL.
std::string FreshDatabase(const std::string& name) {
  const std::string base = BaseUrl();
  Sql(base, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  Sql(base, "CREATE DATABASE " + name);
  const std::size_t slash = base.rfind('/');
  const std::size_t query = base.find('?', slash);
  return base.substr(0, slash + 1) + name +
         (query == std::string::npos ? "" : base.substr(query));
}

template <typename T>
class Waiter final : public Completion<T> {
 public:
  void Complete(T result) override { promise_.set_value(std::move(result)); }
  T Wait() { return future_.get(); }

 private:
  std::promise<T> promise_;
  std::future<T> future_ = promise_.get_future();
};

domain::Operation Op(domain::OpKind kind, const std::string& name,
                     std::int64_t operand = 1) {
  domain::Operation op;
  op.kind = kind;
  op.name = *domain::CounterName::Parse(name);
  op.operand = operand;
  return op;
}

domain::TransactionOutcome CommitSync(CounterRepository& repo,
                                      domain::Transaction tx) {
  Waiter<domain::TransactionOutcome> w;
  repo.Commit(std::move(tx), w);
  return w.Wait();
}
domain::TransactionOutcome Add(CounterRepository& repo, const std::string& name,
                               std::int64_t by = 1) {
  return CommitSync(
      repo, domain::SingleOperation(Op(domain::OpKind::kAdd, name, by)));
}
std::optional<domain::Counter> GetSync(CounterRepository& repo,
                                       const std::string& name) {
  Waiter<Result<std::optional<domain::Counter>>> w;
  repo.Get(*domain::CounterName::Parse(name), w);
  auto r = w.Wait();
  EXPECT_TRUE(r.has_value()) << r.error().ToString();
  return r.has_value() ? *r : std::nullopt;
}

PostgresOptions Options(const std::string& url) {
  PostgresOptions o;
  o.url = url;
  o.start_timeout = 30s;
  o.maintenance_interval = 100ms;
  return o;
}

std::unique_ptr<CounterRepository> OpenRepo(const std::string& url) {
  auto repo = OpenPostgresRepository(Options(url));
  EXPECT_TRUE(repo.has_value()) << repo.error().ToString();
  return repo.has_value() ? std::move(*repo) : nullptr;
}

template <typename Pred>
bool Eventually(Pred pred, std::chrono::seconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

class PostgresRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (BaseUrl().empty()) GTEST_SKIP() << "COUNTERD_TEST_POSTGRES_URL unset";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("t_") + info->name();
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    url_ = FreshDatabase(name);
  }
  std::string url_;
};

TEST_F(PostgresRepositoryTest, MigrationsRunOnceUnderTheLockFromManyReplicas) {
  const int kLatest = postgres::LatestSchemaVersion();
  std::vector<std::future<Result<PostgresMigration>>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::async(std::launch::async,
                              [&] { return MigratePostgres(url_, 30s); }));
  }
  int applied = 0;
  for (auto& f : runs) {
    auto r = f.get();
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r->to_version, kLatest);
    if (r->from_version == 0) ++applied;
  }
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_schema_migrations"),
            std::to_string(kLatest));
  auto again = MigratePostgres(url_, 30s);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->from_version, kLatest);
  EXPECT_EQ(again->to_version, kLatest);
  EXPECT_EQ(Sql(url_,
                "SELECT reloptions::text FROM pg_class WHERE relname = "
                "'counterd_counters'"),
            "{fillfactor=70}");
}

TEST_F(PostgresRepositoryTest, NewerSchemaIsRefused) {
  ASSERT_TRUE(MigratePostgres(url_, 30s).has_value());
  Sql(url_, "INSERT INTO counterd_schema_migrations VALUES (999, 'future')");
  auto r = MigratePostgres(url_, 30s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kFailedPrecondition);
  auto repo = OpenPostgresRepository(Options(url_));
  ASSERT_FALSE(repo.has_value());
  EXPECT_EQ(repo.error().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PostgresRepositoryTest, CommitsAreDurableRowsAndReadsSeeThem) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  EXPECT_TRUE(repo->Health().ok());
  auto first = Add(*repo, "orders", 5);
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_TRUE(first.results[0].created);
  EXPECT_EQ(*first.results[0].counter, (domain::Counter{"orders", 5, 1, 0}));
  auto second = Add(*repo, "orders", -2);
  EXPECT_EQ(*second.results[0].counter, (domain::Counter{"orders", 3, 2, 0}));
  EXPECT_EQ(GetSync(*repo, "orders"), (domain::Counter{"orders", 3, 2, 0}));
  EXPECT_EQ(GetSync(*repo, "missing"), std::nullopt);
  EXPECT_EQ(Sql(url_,
                "SELECT value || '/' || version FROM counterd_counters "
                "WHERE name = 'orders'"),
            "3/2");
  // A refusal changes nothing.
  domain::Operation bounded = Op(domain::OpKind::kAdd, "orders", 10);
  bounded.max = 5;
  auto refused = CommitSync(*repo, domain::SingleOperation(bounded));
  EXPECT_EQ(refused.status.code(), StatusCode::kLimitExceeded);
  EXPECT_EQ(refused.current, (domain::Counter{"orders", 3, 2, 0}));
  EXPECT_EQ(GetSync(*repo, "orders")->version, 2u);
  // Delete.
  auto del = CommitSync(
      *repo, domain::SingleOperation(Op(domain::OpKind::kDelete, "orders")));
  EXPECT_TRUE(del.status.ok());
  EXPECT_EQ(GetSync(*repo, "orders"), std::nullopt);
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_counters"), "0");
  const RepositoryStats stats = repo->Stats();
  EXPECT_EQ(stats.backend, "postgres");
  EXPECT_EQ(stats.mutations, 3u);
  EXPECT_TRUE(stats.up);
  EXPECT_TRUE(repo->Close().ok());
  EXPECT_EQ(repo->Health().code(), StatusCode::kUnavailable);
}

TEST_F(PostgresRepositoryTest, BatchIsAllOrNothing) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  ASSERT_TRUE(Add(*repo, "a", 1).status.ok());
  domain::Transaction tx;
  tx.batch = true;
  tx.ops = {Op(domain::OpKind::kAdd, "a", 1), Op(domain::OpKind::kAdd, "b", 1),
            Op(domain::OpKind::kDelete, "nope")};
  auto out = CommitSync(*repo, tx);
  EXPECT_EQ(out.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(out.failed_op, 2u);
  EXPECT_EQ(GetSync(*repo, "a")->value, 1);
  EXPECT_EQ(GetSync(*repo, "b"), std::nullopt);
}

TEST_F(PostgresRepositoryTest, ListPagesInNameOrderWithPrefix) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  for (const char* n : {"user:2", "user:10", "user:1", "other", "userA"}) {
    ASSERT_TRUE(Add(*repo, n).status.ok());
  }
  Waiter<Result<CounterList>> w;
  repo->List(ListRequest{"user:", "user:1", 10}, w);
  auto r = w.Wait();
  ASSERT_TRUE(r.has_value());
  std::vector<std::string> names;
  for (const auto& c : r->counters) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"user:10", "user:2"}));
  // The five commits, read with the rows (a watch stitches a listing to
  // the change feed by this number), whether or not anything matched.
  EXPECT_EQ(r->seq, 5u);
  Waiter<Result<CounterList>> all;
  repo->List(ListRequest{"", "", 2}, all);
  auto a = all.Wait();
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  ASSERT_EQ(a->counters.size(), 2u);
  EXPECT_EQ(a->counters[0].name, "other");
  EXPECT_EQ(a->seq, 5u);
  Waiter<Result<CounterList>> none;
  repo->List(ListRequest{"nobody:", "", 10}, none);
  auto n = none.Wait();
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_TRUE(n->counters.empty());
  EXPECT_EQ(n->seq, 5u);
}

TEST_F(PostgresRepositoryTest,
       ConcurrentIncrementsThroughThreeReplicasSumExactly) {
  std::vector<std::unique_ptr<CounterRepository>> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(OpenRepo(url_));
    ASSERT_NE(replicas.back(), nullptr);
  }
  constexpr int kThreads = 24;
  constexpr int kEach = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      CounterRepository& repo = *replicas[static_cast<std::size_t>(t % 3)];
      for (int i = 0; i < kEach; ++i) {
        // A hot counter, and fresh names every replica creates at once.
        if (!Add(repo, "hot").status.ok()) ++failures;
        if (!Add(repo, "new:" + std::to_string(i)).status.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(GetSync(*replicas[0], "hot")->value, kThreads * kEach);
  EXPECT_EQ(GetSync(*replicas[1], "hot")->version,
            static_cast<std::uint64_t>(kThreads * kEach));
  for (int i = 0; i < kEach; ++i) {
    EXPECT_EQ(GetSync(*replicas[2], "new:" + std::to_string(i))->value,
              kThreads);
  }
  std::uint64_t commits = 0, mutations = 0;
  for (auto& r : replicas) {
    commits += r->Stats().commits;
    mutations += r->Stats().mutations;
  }
  EXPECT_EQ(mutations, static_cast<std::uint64_t>(2 * kThreads * kEach));
  std::printf(
      "3 replicas: %llu mutations in %llu commits, %llu retries\n",
      static_cast<unsigned long long>(mutations),
      static_cast<unsigned long long>(commits),
      static_cast<unsigned long long>(PostgresStatsOf(*replicas[0]).retries +
                                      PostgresStatsOf(*replicas[1]).retries +
                                      PostgresStatsOf(*replicas[2]).retries));
}

domain::Transaction Keyed(domain::Transaction tx, const std::string& key) {
  tx.idempotency =
      domain::IdempotencyIntent{"", *domain::IdempotencyKey::Parse(key)};
  return tx;
}

TEST_F(PostgresRepositoryTest, IdempotencyKeysHoldAcrossReplicas) {
  auto a = OpenRepo(url_);
  auto b = OpenRepo(url_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const auto tx =
      Keyed(domain::SingleOperation(Op(domain::OpKind::kAdd, "k", 7)), "key-1");
  auto first = CommitSync(*a, tx);
  ASSERT_TRUE(first.status.ok());
  auto replay = CommitSync(*b, tx);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.results, first.results);
  EXPECT_EQ(GetSync(*a, "k")->value, 7);
  auto other = CommitSync(
      *b, Keyed(domain::SingleOperation(Op(domain::OpKind::kAdd, "k", 8)),
                "key-1"));
  EXPECT_EQ(other.status.code(), StatusCode::kAlreadyExists);
  // The same key sent to both replicas at once is applied once.
  for (int round = 0; round < 20; ++round) {
    const auto same =
        Keyed(domain::SingleOperation(Op(domain::OpKind::kAdd, "race", 1)),
              "race-" + std::to_string(round));
    auto fa =
        std::async(std::launch::async, [&] { return CommitSync(*a, same); });
    auto fb =
        std::async(std::launch::async, [&] { return CommitSync(*b, same); });
    auto ra = fa.get();
    auto rb = fb.get();
    ASSERT_TRUE(ra.status.ok()) << ra.status.ToString();
    ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
    EXPECT_EQ(ra.results, rb.results);
    EXPECT_NE(ra.replayed, rb.replayed);
  }
  EXPECT_EQ(GetSync(*a, "race")->value, 20);
  // key-1 once (its reuse was refused without a record) and one per race.
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_idempotency"), "21");
}

class RecordingSink final : public ChangeSink {
 public:
  void OnCommitted(const ChangeBatch& batch) override {
    MutexLock lock(mu_);
    batches_.push_back(batch);
  }
  std::vector<ChangeBatch> batches() {
    MutexLock lock(mu_);
    return batches_;
  }

 private:
  Mutex mu_;
  std::vector<ChangeBatch> batches_ GUARDED_BY(mu_);
};

TEST_F(PostgresRepositoryTest, ChangesReachWatchersOfOtherReplicas) {
  RecordingSink sink;  // outlives the replica that publishes to it
  auto a = OpenRepo(url_);
  auto b = OpenRepo(url_);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  b->SetChangeSink(&sink);
  ASSERT_TRUE(Add(*a, "w", 4).status.ok());
  ASSERT_TRUE(
      CommitSync(*a, domain::SingleOperation(Op(domain::OpKind::kDelete, "w")))
          .status.ok());
  ASSERT_TRUE(Eventually([&] { return sink.batches().size() >= 2; }));
  const auto batches = sink.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].seq, batches[0].seq + 1);
  ASSERT_EQ(batches[0].changes.size(), 1u);
  EXPECT_EQ(batches[0].changes[0].state, (domain::Counter{"w", 4, 1, 0}));
  EXPECT_EQ(batches[1].changes[0].name, "w");
  EXPECT_EQ(batches[1].changes[0].state, std::nullopt);
  EXPECT_EQ(b->Stats().last_seq, batches[1].seq);
}

// |url| with one more libpq URI parameter.
std::string WithParam(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// A replica whose listener was away while commits were purged from the
// change log (as retention would) cannot replay them: the next batch it
// delivers says so (ChangeBatch::gap), whether the log still holds later
// commits or none at all.
TEST_F(PostgresRepositoryTest, CommitsMissedForGoodAreReportedAsAGap) {
  RecordingSink sink;  // outlives the replica that publishes to it
  auto a = OpenRepo(url_);
  ASSERT_NE(a, nullptr);
  PostgresOptions options =
      Options(WithParam(url_, "application_name=replica_b"));
  options.reconnect_min = 3s;  // away long enough for the steps below
  options.reconnect_max = 3s;
  auto opened = OpenPostgresRepository(options);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  CounterRepository& b = **opened;
  b.SetChangeSink(&sink);
  ASSERT_TRUE(Add(*a, "g").status.ok());
  ASSERT_TRUE(Eventually([&] { return sink.batches().size() == 1; }));
  EXPECT_FALSE(sink.batches()[0].gap);

  // Kills B's connections until none is left. One kill is not enough: a
  // connection B was still setting up (reconnecting from the time before)
  // shows up only after it, and then B would never be away (CI saw this).
  // Each killed connection waits reconnect_min before its next try.
  const auto take_b_away = [&] {
    ASSERT_TRUE(Eventually([&] {
      Sql(url_,
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
          "WHERE application_name = 'replica_b'");
      return Sql(url_,
                 "SELECT count(*) FROM pg_stat_activity WHERE "
                 "application_name = 'replica_b'") == "0";
    }));
  };
  take_b_away();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Add(*a, "g").status.ok());
  Sql(url_, "DELETE FROM counterd_changes WHERE seq <= 3");
  ASSERT_TRUE(Eventually([&] { return sink.batches().size() == 2; }));
  ChangeBatch late = sink.batches()[1];
  EXPECT_EQ(late.seq, 4u);
  EXPECT_TRUE(late.gap);
  ASSERT_EQ(late.changes.size(), 1u);
  EXPECT_EQ(late.changes[0].state, (domain::Counter{"g", 4, 4, 0}));

  take_b_away();
  ASSERT_TRUE(Add(*a, "g").status.ok());
  Sql(url_, "DELETE FROM counterd_changes");
  ASSERT_TRUE(Eventually([&] { return sink.batches().size() == 3; }));
  late = sink.batches()[2];
  EXPECT_EQ(late.seq, 5u);
  EXPECT_TRUE(late.gap);
  EXPECT_TRUE(late.changes.empty());
  EXPECT_EQ(b.Stats().last_seq, 5u);
  // Back in step: the next commit is no gap.
  ASSERT_TRUE(Add(*a, "g").status.ok());
  ASSERT_TRUE(Eventually([&] { return sink.batches().size() == 4; }));
  EXPECT_FALSE(sink.batches()[3].gap);
  EXPECT_EQ(sink.batches()[3].seq, 6u);
}

// Tuples of |table| that |statement| (a listener or reader statement, run
// with |params| under the given plan_cache_mode) reads, as the server
// counts them for the transaction.
std::int64_t TuplesRead(const std::string& url, const std::string& table,
                        std::string_view statement,
                        std::vector<postgres::PgParam> params,
                        const std::string& plan_cache_mode) {
  std::string sql;
  for (const auto& list :
       {postgres::ListenerStatements(), postgres::ReaderStatements()}) {
    for (const postgres::Statement& s : list) {
      if (s.name == statement) sql = std::string(s.sql);
    }
  }
  EXPECT_FALSE(sql.empty()) << statement;
  auto connector = postgres::NewLibpqConnector();
  BlockingSession s(*connector, url);
  EXPECT_TRUE(s.Connect(10s, /*check_server=*/false).has_value());
  using Query = PgConnection::Query;
  PgConnection::Reply r = s.Run(
      {Query::Sql("SET plan_cache_mode = " + plan_cache_mode),
       Query::Prepare(std::string(statement), sql), Query::Sql("BEGIN"),
       Query::Prepared(std::string(statement), std::move(params)),
       Query::Sql("SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, "
                  "0) FROM pg_stat_xact_user_tables WHERE relname = '" +
                  table + "'"),
       Query::Sql("ROLLBACK")},
      30s);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  if (!r.status.ok() || r.results.size() != 6) return -1;
  for (const postgres::PgResult& res : r.results) {
    EXPECT_NE(res.kind, postgres::PgResult::Kind::kError) << res.message;
  }
  return postgres::ParseInt64(r.results[4].Cell(0, 0).value_or(""))
      .value_or(-1);
}

// A busy database keeps ten minutes of commits in the change log and a
// day of idempotency records. Each notification makes every replica read
// what follows its last commit, and each maintenance pass purges what is
// past retention: all of it must read a bounded number of rows, not the
// whole table, whichever plan the server picks for the prepared statement.
TEST_F(PostgresRepositoryTest, ChangeLogReadsAndPurgesAreBoundedOnALongLog) {
  auto repo = OpenRepo(url_);  // creates the schema
  ASSERT_NE(repo, nullptr);
  repo.reset();
  constexpr int kRows = 20000;
  const std::string rows = std::to_string(kRows);
  Sql(url_,
      "INSERT INTO counterd_changes SELECT i, counterd_now_ms(), ARRAY['x'], "
      "ARRAY[i::bigint], ARRAY[i::bigint], ARRAY[0::bigint] FROM "
      "generate_series(1, " +
          rows + ") i");
  Sql(url_,
      "INSERT INTO counterd_idempotency SELECT '', 'k' || i, '', '', "
      "counterd_now_ms() FROM generate_series(1, " +
          rows + ") i");
  // 10 counters that expired long ago, half the rest expiring tomorrow,
  // the other half never.
  Sql(url_,
      "INSERT INTO counterd_counters SELECT 'c' || i, i, 1, CASE WHEN i <= "
      "10 THEN 1 WHEN i % 2 = 0 THEN counterd_now_ms() + 86400000 ELSE 0 END "
      "FROM generate_series(1, " +
          rows + ") i");
  Sql(url_,
      "UPDATE counterd_commit_seq SET seq = " + rows + ", counters = " + rows);
  Sql(url_,
      "ANALYZE counterd_changes, counterd_idempotency, counterd_counters");
  using postgres::PgParam;
  for (const std::string mode : {"force_custom_plan", "force_generic_plan"}) {
    SCOPED_TRACE(mode);
    // A replica 10 commits behind: 10 rows, plus the index's look at the
    // end of the range.
    EXPECT_LE(
        TuplesRead(url_, "counterd_changes", postgres::stmt::kChangesSince,
                   {PgParam::Text(std::to_string(kRows - 10))}, mode),
        11);
    // Nothing is old enough to purge: a pass reads at most its batch.
    EXPECT_LE(
        TuplesRead(url_, "counterd_changes", postgres::stmt::kPurgeChanges,
                   {PgParam::Text("600000"), PgParam::Text("100")}, mode),
        101);
    EXPECT_LE(TuplesRead(url_, "counterd_idempotency",
                         postgres::stmt::kPurgeIdempotency,
                         {PgParam::Text("600000"), PgParam::Text("100")}, mode),
              101);
    // The 10 expired counters (each found, then deleted).
    EXPECT_LE(
        TuplesRead(url_, "counterd_counters", postgres::stmt::kPurgeExpired,
                   {PgParam::Text("100")}, mode),
        21);
  }
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_changes"), rows);
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_idempotency"), rows);
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_counters"), rows);
}

// The purge takes the oldest commits past retention and nothing younger.
// The first pass runs as soon as the replica is connected, and a pass that
// purged a full batch is followed by the next at once: with an interval of
// an hour, only that purges all 150 in batches of 100.
TEST_F(PostgresRepositoryTest, ChangeLogKeepsWhatIsYoungerThanRetention) {
  auto created = OpenRepo(url_);  // creates the schema
  ASSERT_NE(created, nullptr);
  created.reset();
  // Commits 1-150 long past retention, 151-200 just made.
  Sql(url_,
      "INSERT INTO counterd_changes SELECT i, CASE WHEN i <= 150 THEN 0 ELSE "
      "counterd_now_ms() END, ARRAY['x'], ARRAY[i::bigint], ARRAY[i::bigint], "
      "ARRAY[0::bigint] FROM generate_series(1, 200) i");
  Sql(url_, "UPDATE counterd_commit_seq SET seq = 200");
  PostgresOptions options = Options(url_);
  options.purge_batch = 100;
  options.maintenance_interval = std::chrono::hours(1);
  auto opened = OpenPostgresRepository(options);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  ASSERT_TRUE(Eventually([&] {
    return Sql(url_, "SELECT count(*) FROM counterd_changes") == "50";
  }));
  EXPECT_EQ(Sql(url_, "SELECT min(seq) FROM counterd_changes"), "151");
}

TEST_F(PostgresRepositoryTest, ExpiredCountersVanishAndArePurged) {
  // Declared before the repository, so it outlives the repository's
  // threads, which may still publish a purge (TSan: use after free).
  RecordingSink sink;
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  repo->SetChangeSink(&sink);
  domain::Operation set = Op(domain::OpKind::kSet, "window", 9);
  set.ttl_seconds = 1;
  auto out = CommitSync(*repo, domain::SingleOperation(set));
  ASSERT_TRUE(out.status.ok());
  EXPECT_GT(out.results[0].counter->expires_at_ms, 0);
  EXPECT_EQ(GetSync(*repo, "window")->value, 9);
  // Expiry follows the database's clock: wait until it has passed.
  ASSERT_TRUE(
      Eventually([&] { return !GetSync(*repo, "window").has_value(); }));
  ASSERT_TRUE(Eventually([&] { return repo->Stats().expired == 1; }));
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_counters"), "0");
  ASSERT_TRUE(Eventually([&] {
    auto b = sink.batches();
    return !b.empty() && b.back().changes.size() == 1 &&
           !b.back().changes[0].state.has_value();
  }));
  // A new window starts at version 1.
  auto again = Add(*repo, "window");
  EXPECT_EQ(again.results[0].counter->version, 1u);
  EXPECT_TRUE(again.results[0].created);
}

domain::TransactionOutcome Delete(CounterRepository& repo,
                                  const std::string& name) {
  return CommitSync(repo,
                    domain::SingleOperation(Op(domain::OpKind::kDelete, name)));
}

// counterd_counters (and the start-up line's counters=) must agree with the
// file backend's exact count: a gauge read right after an acknowledged
// creation or deletion shows it, and a restart starts from the stored count.
TEST_F(PostgresRepositoryTest, CounterGaugeIsExactAfterEveryCommit) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  EXPECT_EQ(repo->Stats().counters, 0u);
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(Add(*repo, n).status.ok());
  EXPECT_EQ(repo->Stats().counters, 3u);
  ASSERT_TRUE(Add(*repo, "a").status.ok());  // an update: no new row
  EXPECT_EQ(repo->Stats().counters, 3u);
  ASSERT_TRUE(Delete(*repo, "b").status.ok());
  EXPECT_EQ(repo->Stats().counters, 2u);
  domain::Transaction tx;  // one commit creating one and deleting one
  tx.batch = true;
  tx.ops = {Op(domain::OpKind::kAdd, "d", 1), Op(domain::OpKind::kDelete, "a")};
  ASSERT_TRUE(CommitSync(*repo, tx).status.ok());
  EXPECT_EQ(repo->Stats().counters, 2u);
  // An expired counter counts until it is purged, as on the file backend.
  domain::Operation set = Op(domain::OpKind::kSet, "e", 1);
  set.ttl_seconds = 1;
  ASSERT_TRUE(CommitSync(*repo, domain::SingleOperation(set)).status.ok());
  EXPECT_EQ(repo->Stats().counters, 3u);
  ASSERT_TRUE(Eventually([&] { return repo->Stats().expired == 1; }));
  ASSERT_TRUE(Eventually([&] { return repo->Stats().counters == 2; }));
  // Another replica's commits reach this one's gauge (maintenance reads
  // the stored count); its own gauge is exact at once.
  auto other = OpenRepo(url_);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Stats().counters, 2u);
  ASSERT_TRUE(Add(*other, "f").status.ok());
  EXPECT_EQ(other->Stats().counters, 3u);
  ASSERT_TRUE(Eventually([&] { return repo->Stats().counters == 3; }));
  EXPECT_EQ(Sql(url_, "SELECT count(*) FROM counterd_counters"), "3");
  ASSERT_TRUE(other->Close().ok());
  ASSERT_TRUE(repo->Close().ok());
  // A restart reads the stored count before serving.
  auto again = OpenRepo(url_);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->Stats().counters, 3u);
}

// A database made by schema 1 (no stored count) gets the count of the rows
// it already has from migration 2.
TEST_F(PostgresRepositoryTest, MigrationTwoCountsTheExistingRows) {
  {
    auto repo = OpenRepo(url_);
    ASSERT_NE(repo, nullptr);
    for (const char* n : {"x", "y"}) ASSERT_TRUE(Add(*repo, n).status.ok());
    ASSERT_TRUE(repo->Close().ok());
  }
  Sql(url_, "ALTER TABLE counterd_commit_seq DROP COLUMN counters");
  Sql(url_, "DELETE FROM counterd_schema_migrations WHERE version >= 2");
  auto migrated = MigratePostgres(url_, 30s);
  ASSERT_TRUE(migrated.has_value()) << migrated.error().ToString();
  EXPECT_EQ(migrated->from_version, 1);
  EXPECT_EQ(Sql(url_, "SELECT counters FROM counterd_commit_seq"), "2");
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  EXPECT_EQ(repo->Stats().counters, 2u);
}

TEST_F(PostgresRepositoryTest, RefusesAServerWithFsyncOff) {
  Sql(url_, "ALTER SYSTEM SET fsync = off");
  Sql(url_, "SELECT pg_reload_conf()");
  ASSERT_TRUE(Eventually([&] { return Sql(url_, "SHOW fsync") == "off"; }));
  auto repo = OpenPostgresRepository(Options(url_));
  Sql(url_, "ALTER SYSTEM RESET fsync");
  Sql(url_, "SELECT pg_reload_conf()");
  ASSERT_TRUE(Eventually([&] { return Sql(url_, "SHOW fsync") == "on"; }));
  ASSERT_FALSE(repo.has_value());
  EXPECT_EQ(repo.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(repo.error().message().find("fsync = off"), std::string::npos);
}

TEST_F(PostgresRepositoryTest, ReconnectsByItselfAfterItsConnectionsAreKilled) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  ASSERT_TRUE(Add(*repo, "c").status.ok());
  Sql(url_,
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
      "datname = current_database() AND pid <> pg_backend_pid()");
  ASSERT_TRUE(
      Eventually([&] { return PostgresStatsOf(*repo).reconnects >= 3; }));
  // Healthy means writes and reads are served again: the writer and a
  // reader are back (CI once saw the read refused with "no connection to
  // read on" right after Health() said ok, when it looked at the writer
  // alone). A connection whose loss is not noticed yet may still refuse
  // one request, so the read is retried like the write.
  ASSERT_TRUE(Eventually([&] { return repo->Health().ok(); }));
  ASSERT_TRUE(Eventually([&] { return Add(*repo, "c").status.ok(); }));
  std::optional<std::int64_t> value;
  ASSERT_TRUE(Eventually([&] {
    Waiter<Result<std::optional<domain::Counter>>> w;
    repo->Get(*domain::CounterName::Parse("c"), w);
    auto r = w.Wait();
    if (r.has_value() && r->has_value()) value = (*r)->value;
    return value.has_value();
  }));
  EXPECT_GE(*value, 2);
}

TEST_F(PostgresRepositoryTest, AServerThatStopsAnsweringIsDroppedAndRejoined) {
  PostgresOptions options = Options(url_);
  options.request_timeout = 500ms;
  auto opened = OpenPostgresRepository(options);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  auto& repo = **opened;
  ASSERT_TRUE(Add(repo, "s").status.ok());
  // Another session holds the table: the repository's requests get no
  // answer (as from a server behind a dead network path).
  auto connector = postgres::NewLibpqConnector();
  BlockingSession locker(*connector, url_);
  ASSERT_TRUE(locker.Connect(10s).has_value());
  ASSERT_TRUE(
      locker
          .Run({PgConnection::Query::Sql("BEGIN"),
                PgConnection::Query::Sql(
                    "LOCK TABLE counterd_counters IN ACCESS EXCLUSIVE MODE")},
               10s)
          .status.ok());
  // Stuck waiting for its row locks, before COMMIT: refused, not applied.
  auto stuck = Add(repo, "s");
  EXPECT_EQ(stuck.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(stuck.status.message().find("no answer"), std::string::npos)
      << stuck.status.message();
  Waiter<Result<std::optional<domain::Counter>>> read;
  repo.Get(*domain::CounterName::Parse("s"), read);
  auto r = read.Wait();
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("no answer"), std::string::npos)
      << r.error().message();
  ASSERT_TRUE(
      locker.Run({PgConnection::Query::Sql("ROLLBACK")}, 10s).status.ok());
  ASSERT_TRUE(Eventually([&] { return repo.Health().ok(); }));
  ASSERT_TRUE(Add(repo, "s").status.ok());
  std::optional<domain::Counter> s;
  ASSERT_TRUE(Eventually([&] {
    Waiter<Result<std::optional<domain::Counter>>> w;
    repo.Get(*domain::CounterName::Parse("s"), w);
    auto got = w.Wait();
    if (got.has_value()) s = *got;
    return got.has_value();
  }));
  EXPECT_EQ(s->value, 2);
  EXPECT_EQ(PostgresStatsOf(repo).unknown_outcomes, 0u);
}

// -- snapshots: a transaction's cursors, a page at a time -------------------

// |n| counters p0000.. in batches of 100 (one commit each).
void Populate(CounterRepository& repo, int n) {
  for (int first = 0; first < n; first += 100) {
    domain::Transaction tx;
    tx.batch = true;
    for (int i = first; i < std::min(n, first + 100); ++i) {
      char name[16];
      (void)std::snprintf(name, sizeof name, "p%04d", i);
      tx.ops.push_back(Op(domain::OpKind::kAdd, name, i + 1));
    }
    ASSERT_TRUE(CommitSync(repo, tx).status.ok());
  }
}

// A snapshot, once the replica's snapshot connection is up: OpenRepo
// returns when the writer and a reader are, and until the snapshot
// connection is too a snapshot answers kUnavailable ("no connection").
SnapshotImage TakeImage(CounterRepository& repo) {
  std::optional<Result<SnapshotImage>> image;
  EXPECT_TRUE(Eventually([&] {
    Waiter<Result<SnapshotImage>> w;
    repo.TakeSnapshot(w);
    image = w.Wait();
    return image->has_value() ||
           image->error().message().find("no connection") == std::string::npos;
  }));
  EXPECT_TRUE(image && image->has_value())
      << (image ? image->error().ToString() : "no answer");
  return image && image->has_value() ? std::move(**image) : SnapshotImage{};
}

Result<std::string> NextPiece(SnapshotReader& reader, std::size_t size_hint) {
  std::promise<Result<std::string>> promise;
  auto piece = promise.get_future();
  reader.Next(size_hint, [&promise](Result<std::string> got) {
    promise.set_value(std::move(got));
  });
  return piece.get();
}

// The rest of |reader|'s document in pieces of about 4 KiB, running
// |between| after each piece.
Result<std::string> ReadRest(SnapshotReader& reader,
                             const std::function<void()>& between) {
  std::string out;
  for (;;) {
    Result<std::string> piece = NextPiece(reader, 4096);
    if (!piece) return piece.error();
    if (piece->empty()) return out;
    out += *piece;
    between();
  }
}

TEST_F(PostgresRepositoryTest, ASnapshotIsOfOneCommitHoweverLongItsPagesTake) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  Populate(*repo, 1200);  // three pages of counters
  ASSERT_TRUE(CommitSync(*repo,
                         [] {
                           domain::Transaction tx = domain::SingleOperation(
                               Op(domain::OpKind::kAdd, "keyed", 1));
                           tx.idempotency = domain::IdempotencyIntent{
                               "s", *domain::IdempotencyKey::Parse("k-1")};
                           return tx;
                         }())
                  .status.ok());
  SnapshotImage still = TakeImage(*repo);
  ASSERT_NE(still.document, nullptr);
  Result<std::string> expected = ReadRest(*still.document, [] {});
  ASSERT_TRUE(expected) << expected.error().ToString();
  still.document.reset();

  SnapshotImage image = TakeImage(*repo);
  ASSERT_NE(image.document, nullptr);
  EXPECT_EQ(image.seq, still.seq);
  // One snapshot at a time per replica: the connection is taken.
  Waiter<Result<SnapshotImage>> second;
  repo->TakeSnapshot(second);
  EXPECT_EQ(second.Wait().status().code(), StatusCode::kUnavailable);
  // Commits between the pages change, create and delete counters on every
  // page, before and after the cursor: the document stays that of its seq.
  int round = 0;
  Result<std::string> read = ReadRest(*image.document, [&] {
    char name[16];
    (void)std::snprintf(name, sizeof name, "p%04d", (round * 97) % 1200);
    ASSERT_TRUE(Add(*repo, name, 1000).status.ok());
    ASSERT_TRUE(Add(*repo, "q" + std::to_string(round), 1).status.ok());
    ASSERT_TRUE(Add(*repo, "a" + std::to_string(round), 1).status.ok());
    ++round;
  });
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_GT(round, 10);
  EXPECT_EQ(*read, *expected);
  EXPECT_NE(expected->find("\"k-1\""), std::string::npos);
  image.document.reset();

  // Read and dropped: the next snapshot takes the connection, and is of a
  // later commit.
  SnapshotImage after = TakeImage(*repo);
  ASSERT_NE(after.document, nullptr);
  EXPECT_EQ(after.seq, image.seq + static_cast<std::uint64_t>(3 * round));
}

TEST_F(PostgresRepositoryTest,
       ASnapshotWhoseConnectionIsLostFailsAndTheNextWorks) {
  auto repo = OpenRepo(url_);
  ASSERT_NE(repo, nullptr);
  Populate(*repo, 1200);
  SnapshotImage image = TakeImage(*repo);
  ASSERT_NE(image.document, nullptr);
  Result<std::string> first = NextPiece(*image.document, 4096);
  ASSERT_TRUE(first) << first.error().ToString();
  Sql(url_,
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
      "datname = current_database() AND pid <> pg_backend_pid()");
  // The first page is at hand; the second cannot come from a cursor that
  // went with its session: the document fails instead of ending short.
  Result<std::string> rest = ReadRest(*image.document, [] {});
  ASSERT_FALSE(rest);
  EXPECT_EQ(rest.error().code(), StatusCode::kUnavailable)
      << rest.error().ToString();
  image.document.reset();

  std::optional<Result<std::string>> whole;
  ASSERT_TRUE(Eventually([&] {
    Waiter<Result<SnapshotImage>> w;
    repo->TakeSnapshot(w);
    Result<SnapshotImage> again = w.Wait();
    if (!again) return false;
    whole = ReadRest(*again->document, [] {});
    return true;
  }));
  ASSERT_TRUE(*whole) << whole->error().ToString();
  EXPECT_NE((*whole)->find("\"p1199\""), std::string::npos);
}

}  // namespace
}  // namespace counterd::storage
