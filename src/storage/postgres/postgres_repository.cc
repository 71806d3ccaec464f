// PostgresRepository: CounterRepository on PostgreSQL. See
// include/counterd/storage/postgres_repository.h and docs/postgres.md.
//
// Threads: every connection, timer and batch lives on one io_context run by
// the backend's own thread (io_thread_); callers only queue work (Commit
// under queue_mu_, reads by post) and read atomics. Completions run on
// io_thread_.
//
// Invariants (referenced as "Invariant (n)"):
//  1. A transaction is answered OK only after the COMMIT of the database
//     transaction holding it returned OK on a session with
//     synchronous_commit on (or remote_apply), on a server with fsync on.
//  2. One commit is in flight per replica (the writer connection); the
//     transactions that queue meanwhile form the next batch, applied in
//     queue order by MutationRules on rows locked FOR UPDATE in name
//     order, so every replica locks in the same order.
//  3. A row that did not exist is INSERTed, never upserted: a concurrent
//     creator makes the batch fail (unique_violation) and it is retried
//     against the winner's row; so is a deadlock or serialization failure.
//     Idempotency records are INSERTed the same way, so two replicas
//     racing with one key apply it once.
//  4. A connection lost after COMMIT was sent leaves the outcome unknown:
//     the batch is answered kUnavailable (never OK, never a refusal that
//     might be false); a retry with the same Idempotency-Key finds the
//     record if it committed.
//  5. Reads run on the primary, outside any cache, after every COMMIT
//     that was acknowledged before they started.
#include "counterd/storage/postgres_repository.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "blocking_session.h"
#include "commit_plan.h"
#include "counterd/core/log.h"
#include "counterd/core/mutex.h"
#include "counterd/service/mutation_rules.h"
#include "counterd/storage/snapshot_document.h"
#include "pg_connection.h"
#include "record_codec.h"
#include "schema.h"
#include "sql_text.h"

namespace counterd::storage {
namespace {

namespace asio = boost::asio;
using postgres::PgConnection;
using postgres::PgParam;
using postgres::PgResult;
using Query = PgConnection::Query;
using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// The first error among |results|, if any.
const PgResult* FirstError(const std::vector<PgResult>& results) {
  for (const PgResult& r : results) {
    if (r.kind == PgResult::Kind::kError) return &r;
  }
  return nullptr;
}

// One row of kChangesSince: a commit's seq and the state of one counter it
// changed.
struct ChangeRow {
  std::uint64_t seq = 0;
  CounterChange change;
};

// Row |r| of a kChangesSince answer; nothing if a cell is missing or not a
// number.
std::optional<ChangeRow> ParseChangeRow(const PgResult& res, std::size_t r) {
  const auto seq = postgres::ParseInt64(res.Cell(r, 0).value_or(""));
  const auto value = postgres::ParseInt64(res.Cell(r, 2).value_or(""));
  const auto version = postgres::ParseInt64(res.Cell(r, 3).value_or(""));
  const auto expires = postgres::ParseInt64(res.Cell(r, 4).value_or(""));
  if (!seq || !value || !version || !expires || !res.Cell(r, 1)) {
    return std::nullopt;
  }
  ChangeRow row{static_cast<std::uint64_t>(*seq),
                CounterChange{*res.Cell(r, 1), std::nullopt}};
  if (*version > 0) {
    row.change.state =
        domain::Counter{row.change.name, *value,
                        static_cast<std::uint64_t>(*version), *expires};
  }
  return row;
}

// A page of counterd_idempotency rows (scope, key, request, outcome,
// created_at_ms), as the snapshot's records cursor fetches them.
Result<std::vector<domain::IdempotencyRecord>> ParseRecords(const PgResult& r) {
  if (r.kind == PgResult::Kind::kError) {
    return Status::Unavailable("postgres: snapshot: " + r.message + " (" +
                               r.sqlstate + ")");
  }
  if (r.kind != PgResult::Kind::kTuples || r.column_count != 5) {
    return Status::Internal("postgres: unexpected idempotency answer");
  }
  std::vector<domain::IdempotencyRecord> out;
  out.reserve(r.row_count);
  for (std::size_t i = 0; i < r.row_count; ++i) {
    const auto request = postgres::ParseByteaHex(r.Cell(i, 2).value_or(""));
    const auto outcome = postgres::ParseByteaHex(r.Cell(i, 3).value_or(""));
    const auto created = postgres::ParseInt64(r.Cell(i, 4).value_or(""));
    if (!r.Cell(i, 0) || !r.Cell(i, 1) || !request || !outcome || !created) {
      return Status::DataLoss(
          "postgres: malformed row in counterd_idempotency");
    }
    Result<domain::Fingerprint> fp = postgres::DecodeFingerprint(*request);
    if (!fp) return fp.error();
    Result<domain::TransactionOutcome> result =
        postgres::DecodeOutcome(*outcome);
    if (!result) return result.error();
    out.push_back(domain::IdempotencyRecord{*r.Cell(i, 0), *r.Cell(i, 1),
                                            std::move(*fp), *created,
                                            std::move(*result)});
  }
  return out;
}

// The names of the snapshot transaction's cursors (one transaction at a
// time on the snapshot connection, so fixed names do).
constexpr std::string_view kCountersCursor = "counterd_snapshot_counters";
constexpr std::string_view kRecordsCursor = "counterd_snapshot_records";

class PostgresRepository final : public CounterRepository {
 public:
  PostgresRepository(PostgresOptions options,
                     std::unique_ptr<postgres::PqConnector> connector);
  ~PostgresRepository() override {
    // Close joins the I/O thread; a std::system_error from the join has
    // nowhere to go from a destructor.
    try {
      (void)Close();
    } catch (const std::exception& e) {
      log::Error("closing the postgres backend failed", {{"error", e.what()}});
    }
  }
  PostgresRepository(const PostgresRepository&) = delete;
  PostgresRepository& operator=(const PostgresRepository&) = delete;

  // Start-up: checks, migrations, the current commit sequence; then starts
  // the thread and the connections and waits for the writer.
  Status Start();

  void Get(const domain::CounterName& name,
           Completion<Result<std::optional<domain::Counter>>>& done) override;
  void List(const ListRequest& request,
            Completion<Result<CounterList>>& done) override;
  void Commit(domain::Transaction tx,
              Completion<domain::TransactionOutcome>& done) override;
  void TakeSnapshot(Completion<Result<SnapshotImage>>& done) override;
  void SetChangeSink(ChangeSink* sink) override { sink_.store(sink); }
  Status Health() const override;
  RepositoryStats Stats() const override;
  Status Close() override;

  PostgresStats OwnStats() const {
    return {reconnects_.load(), retries_.load(), unknown_outcomes_.load()};
  }

 private:
  // kSnapshot: one connection that only runs GET /admin/snapshot's
  // transaction, so that a slow download never holds a reader.
  enum class Role : std::uint8_t { kWriter, kReader, kListener, kSnapshot };
  struct Slot {
    Slot(asio::io_context& ioc, postgres::PqConnector& connector,
         const std::string& url, Role r, std::chrono::milliseconds backoff0)
        : role(r),
          conn(ioc, connector, url),
          retry_timer(ioc),
          connect_timer(ioc),
          backoff(backoff0) {}
    Role role;
    PgConnection conn;
    asio::steady_timer retry_timer;
    asio::steady_timer connect_timer;
    std::chrono::milliseconds backoff;
    bool ready = false;       // connected and set up
    bool timed_out = false;   // this attempt was dropped by connect_timer
    bool ever_ready = false;  // for the reconnect count
  };
  struct Item {
    domain::Transaction tx;
    Completion<domain::TransactionOutcome>* done;
  };
  struct Batch {
    std::vector<Item> items;
    int attempt = 0;
    SteadyClock::time_point started;
    // Filled by the first round trip.
    postgres::LockPlan locks;
    postgres::LockQueries lock_queries;
    std::vector<domain::TransactionOutcome> outcomes;
    postgres::WritePlan writes;
    postgres::WriteQueries write_queries;
    SteadyClock::time_point commit_sent;
  };

  // -- connections (io thread) ----------------------------------------------
  void ConnectSlot(Slot& slot);
  void OnConnected(Slot& slot, const Status& status);
  void OnSetUp(Slot& slot, PgConnection::Reply reply);
  void OnLost(Slot& slot, const Status& why);
  void ScheduleReconnect(Slot& slot);
  void NoteError(const Status& why);
  void UpdateUp();
  Slot* PickReader();

  // -- commits (io thread) ----------------------------------------------------
  void OnKick();
  void MaybeStartBatch();
  void RunBatch();
  void OnLocked(const PgConnection::Reply& reply);
  void OnCommitted(PgConnection::Reply reply);
  // A retryable error: ROLLBACK (with the next request) and run it again.
  void RetryBatch(const PgResult& error);
  void FailBatch(const Status& why);
  void CompleteBatch();

  // -- snapshots (io thread) --------------------------------------------------
  class CursorPages;  // a snapshot document's pages, FETCHed from cursors
  void OnSnapshotBegun(PgConnection::Reply reply,
                       Completion<Result<SnapshotImage>>& done);
  // FETCHes up to |max| rows of |cursor| on the snapshot connection (any
  // thread); |done| runs on the io thread, or at once when closing.
  void FetchSnapshotPage(std::string_view cursor, std::size_t max,
                         PgConnection::ReplyHandler done);
  // Ends the snapshot transaction and frees the connection for the next
  // one (any thread).
  void EndSnapshot();

  // -- reads, watch, maintenance (io thread) --------------------------------
  // Queues |handler| on the io thread; false when closing (not queued).
  template <typename Handler>
  bool PostRead(Handler handler) EXCLUDES(queue_mu_);
  void Read(Query query, std::function<void(PgConnection::Reply)> done);
  void FetchChanges();
  void OnChanges(PgConnection::Reply reply);
  // Gives the commits in |res| (a kChangesSince answer, whose fetch found
  // |last_seq| the last commit) to |sink|, in order; returns how many |res|
  // held.
  std::size_t DeliverChanges(const PgResult& res, std::uint64_t last_seq,
                             ChangeSink* sink);
  void ScheduleMaintenance(std::chrono::milliseconds after);
  // Drops connections whose oldest request is older than request_timeout.
  void ScheduleWatchdog();
  void RunMaintenance();
  void FinishIfDrained();
  // A reading of the stored row count (counterd_commit_seq.counters) at
  // commit sequence |seq|; the newest reading wins, whichever connection
  // brought it. Io thread (or Start, before it runs).
  void NoteRowCount(std::optional<std::int64_t> seq,
                    std::optional<std::int64_t> count);

  const PostgresOptions options_;
  std::unique_ptr<postgres::PqConnector> connector_;

  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  // Every slot lives as long as the repository (destroyed after the
  // thread stopped, before ioc_): writer first, then readers, listener.
  std::vector<std::unique_ptr<Slot>> slots_;
  Slot* writer_ = nullptr;
  Slot* listener_ = nullptr;
  Slot* snapshot_ = nullptr;
  bool snapshot_open_ = false;  // a snapshot transaction holds snapshot_
  std::size_t next_reader_ = 0;
  std::optional<Batch> batch_;  // the commit in flight (Invariant 2)
  bool rollback_pending_ = false;
  bool finishing_ = false;  // Close asked the io thread to wind down
  asio::steady_timer maintenance_timer_{ioc_};
  asio::steady_timer watchdog_timer_{ioc_};
  bool maintenance_running_ = false;
  bool maintenance_begun_ = false;   // the first pass is scheduled
  std::uint64_t delivered_seq_ = 0;  // last commit given to the sink
  std::int64_t row_count_seq_ = -1;  // NoteRowCount's newest reading
  bool fetching_ = false;
  bool fetch_again_ = false;

  Mutex queue_mu_;
  std::deque<Item> queue_ GUARDED_BY(queue_mu_);
  bool kick_posted_ GUARDED_BY(queue_mu_) = false;
  bool closing_ GUARDED_BY(queue_mu_) = false;
  bool started_ GUARDED_BY(queue_mu_) = false;

  mutable Mutex error_mu_;
  Status last_error_ GUARDED_BY(error_mu_);

  std::atomic<ChangeSink*> sink_{nullptr};
  std::atomic<bool> up_{false};
  std::atomic<std::size_t> readers_up_{0};
  std::atomic<bool> closed_flag_{false};
  std::atomic<std::uint64_t> mutations_{0};
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> expired_{0};
  std::atomic<std::uint64_t> last_seq_{0};
  std::atomic<std::uint64_t> counters_{0};  // exact, see NoteRowCount
  std::atomic<std::uint64_t> records_estimate_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> unknown_outcomes_{0};
  Histogram batch_sizes_{Histogram::BatchSizeBounds()};
  Histogram commit_seconds_{Histogram::LatencySecondsBounds()};

  std::thread io_thread_;  // last: started after everything above exists
};

PostgresRepository::PostgresRepository(
    PostgresOptions options, std::unique_ptr<postgres::PqConnector> connector)
    : options_(std::move(options)), connector_(std::move(connector)) {
  const std::size_t readers = std::max<std::size_t>(options_.pool_size, 2) - 1;
  auto add = [&](Role role) {
    slots_.push_back(std::make_unique<Slot>(ioc_, *connector_, options_.url,
                                            role, options_.reconnect_min));
    Slot* s = slots_.back().get();
    s->conn.SetLostHandler([this, s](const Status& why) { OnLost(*s, why); });
    return s;
  };
  writer_ = add(Role::kWriter);
  for (std::size_t i = 0; i < readers; ++i) add(Role::kReader);
  listener_ = add(Role::kListener);
  snapshot_ = add(Role::kSnapshot);
  listener_->conn.SetNotificationHandler(
      [this](const postgres::PgNotification& n) {
        const auto seq = postgres::ParseInt64(n.payload);
        if (seq && static_cast<std::uint64_t>(*seq) > delivered_seq_) {
          FetchChanges();
        }
      });
}

Status PostgresRepository::Start() {
  {
    postgres::BlockingSession session(*connector_, options_.url);
    Result<postgres::ServerFacts> facts =
        session.Connect(options_.start_timeout);
    if (!facts) return facts.error();
    Result<postgres::MigrationReport> migrated =
        postgres::ApplyMigrations(session, options_.start_timeout);
    if (!migrated) return migrated.error();
    if (migrated->from_version != migrated->to_version) {
      log::Info("postgres: schema migrated",
                {{"from_version", migrated->from_version},
                 {"to_version", migrated->to_version}});
    }
    PgConnection::Reply seq = session.Run(
        {Query::Sql("SELECT seq, counters FROM counterd_commit_seq")},
        options_.start_timeout);
    if (!seq.status.ok()) return seq.status;
    if (seq.results.at(0).kind != PgResult::Kind::kTuples ||
        seq.results[0].row_count != 1) {
      return Status::Internal("postgres: no commit sequence row");
    }
    const PgResult& row = seq.results[0];
    delivered_seq_ = static_cast<std::uint64_t>(
        postgres::ParseInt64(row.Cell(0, 0).value_or("0")).value_or(0));
    last_seq_.store(delivered_seq_);
    NoteRowCount(postgres::ParseInt64(row.Cell(0, 0).value_or("")),
                 postgres::ParseInt64(row.Cell(0, 1).value_or("")));
    log::Info("postgres: connected",
              {{"server_version_num", facts->server_version_num},
               {"synchronous_commit", facts->synchronous_commit},
               {"schema_version", migrated->to_version},
               {"commit_seq", delivered_seq_}});
    session.Close();
  }
  work_.emplace(ioc_.get_executor());
  for (auto& slot : slots_) ConnectSlot(*slot);
  ScheduleMaintenance(options_.maintenance_interval);
  ScheduleWatchdog();
  io_thread_ = std::thread([this] { ioc_.run(); });
  {
    MutexLock lock(queue_mu_);
    started_ = true;
  }
  // Serve once the writer and a reader are up (the first requests would
  // otherwise meet a 503); the server answered a moment ago, so this is
  // short.
  const auto deadline = SteadyClock::now() + options_.start_timeout;
  while (!(up_.load() && readers_up_.load() > 0) &&
         SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::Ok();
}

// -- connections ------------------------------------------------------------

void PostgresRepository::ConnectSlot(Slot& slot) {
  slot.ready = false;
  slot.timed_out = false;
  slot.connect_timer.expires_after(options_.connect_timeout);
  slot.connect_timer.async_wait(
      [this, &slot](const boost::system::error_code& ec) {
        if (ec || slot.ready || finishing_) return;
        // Also covers a server that accepted but never answered the setup.
        slot.timed_out = true;
        const Status why = Status::Unavailable("postgres: connect timed out");
        NoteError(why);
        slot.conn.Disconnect(why);
        ScheduleReconnect(slot);
      });
  slot.conn.Connect([this, &slot](const Status& s) { OnConnected(slot, s); });
}

void PostgresRepository::OnConnected(Slot& slot, const Status& status) {
  if (finishing_) return;
  if (!status.ok()) {
    if (slot.timed_out) return;  // the timer reconnects
    slot.connect_timer.cancel();
    NoteError(status);
    ScheduleReconnect(slot);
    return;
  }
  std::vector<Query> setup;
  setup.push_back(Query::Sql(std::string(postgres::kSessionSetup)));
  const auto statements =
      slot.role == Role::kWriter     ? postgres::WriterStatements()
      : slot.role == Role::kReader   ? postgres::ReaderStatements()
      : slot.role == Role::kListener ? postgres::ListenerStatements()
                                     : std::span<const postgres::Statement>();
  for (const postgres::Statement& s : statements) {
    setup.push_back(Query::Prepare(std::string(s.name), std::string(s.sql)));
  }
  if (slot.role == Role::kListener) {
    setup.push_back(
        Query::Sql("LISTEN " + std::string(postgres::kChangesChannel)));
  }
  slot.conn.Submit(setup, [this, &slot](PgConnection::Reply r) {
    OnSetUp(slot, std::move(r));
  });
}

void PostgresRepository::OnSetUp(Slot& slot, PgConnection::Reply reply) {
  if (!reply.status.ok()) return;  // lost: OnLost or the timer reconnects
  slot.connect_timer.cancel();
  Status problem;
  Result<postgres::ServerFacts> facts =
      postgres::ParseSessionSetup(reply.results.at(0));
  if (!facts) {
    problem = facts.error();
  } else {
    problem = postgres::CheckServer(*facts);
  }
  if (problem.ok()) {
    if (const PgResult* e = FirstError(reply.results)) {
      problem = Status::Unavailable("postgres: session setup: " + e->message +
                                    " (" + e->sqlstate + ")");
    }
  }
  if (!problem.ok()) {
    if (problem.code() == StatusCode::kFailedPrecondition) {
      log::Error("postgres: server refused", {{"error", problem.message()}});
    }
    NoteError(problem);
    slot.conn.Disconnect(problem);
    ScheduleReconnect(slot);
    return;
  }
  slot.ready = true;
  slot.backoff = options_.reconnect_min;
  if (slot.ever_ready) {
    reconnects_.fetch_add(1);
    log::Info("postgres: connection re-established",
              {{"role", slot.role == Role::kWriter     ? "writer"
                        : slot.role == Role::kReader   ? "reader"
                        : slot.role == Role::kListener ? "listener"
                                                       : "snapshot"}});
  }
  slot.ever_ready = true;
  UpdateUp();
  if (slot.role == Role::kWriter) {
    rollback_pending_ = false;  // a new session has no transaction open
    MaybeStartBatch();
  } else if (slot.role == Role::kListener) {
    FetchChanges();  // catch up on what committed while it was away
  } else if (slot.role == Role::kReader && !maintenance_begun_) {
    // The first pass as soon as it can run: a replica that starts after
    // a while away purges what fell due meanwhile without waiting.
    maintenance_begun_ = true;
    ScheduleMaintenance(std::chrono::milliseconds(0));
  }
}

void PostgresRepository::OnLost(Slot& slot, const Status& why) {
  slot.ready = false;
  UpdateUp();
  if (finishing_) return;
  log::Warn("postgres: connection lost", {{"error", why.message()}});
  NoteError(why);
  if (&slot == listener_) fetching_ = false;
  ScheduleReconnect(slot);
}

void PostgresRepository::ScheduleReconnect(Slot& slot) {
  if (finishing_) return;
  slot.retry_timer.expires_after(slot.backoff);
  slot.backoff = std::min(slot.backoff * 2, options_.reconnect_max);
  slot.retry_timer.async_wait(
      [this, &slot](const boost::system::error_code& ec) {
        if (ec || finishing_) return;
        ConnectSlot(slot);
      });
}

void PostgresRepository::NoteError(const Status& why) {
  MutexLock lock(error_mu_);
  last_error_ = why;
}

void PostgresRepository::UpdateUp() {
  up_.store(writer_->ready);
  std::size_t readers = 0;
  for (const auto& slot : slots_) {
    if (slot->role == Role::kReader && slot->ready) ++readers;
  }
  readers_up_.store(readers);
}

PostgresRepository::Slot* PostgresRepository::PickReader() {
  const std::size_t n = slots_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Slot* s = slots_[(next_reader_ + i) % n].get();
    if (s->role == Role::kReader && s->ready) {
      next_reader_ = (next_reader_ + i + 1) % n;
      return s;
    }
  }
  return nullptr;
}

// -- reads ------------------------------------------------------------------

void PostgresRepository::Read(Query query,
                              std::function<void(PgConnection::Reply)> done) {
  Slot* reader = PickReader();
  if (reader == nullptr) {
    PgConnection::Reply reply;
    {
      MutexLock lock(error_mu_);
      reply.status = Status::Unavailable(
          "postgres: no connection to read on" +
          (last_error_.ok() ? std::string()
                            : " (" + last_error_.message() + ")"));
    }
    done(std::move(reply));
    return;
  }
  reader->conn.Submit({std::move(query)}, std::move(done));
}

template <typename Handler>
bool PostgresRepository::PostRead(Handler handler) {
  // Under the lock, so that Close's own post comes after this one and the
  // io thread runs the read before it winds down.
  MutexLock lock(queue_mu_);
  if (closing_ || !started_) return false;
  asio::post(ioc_, std::move(handler));
  return true;
}

void PostgresRepository::Get(
    const domain::CounterName& name,
    Completion<Result<std::optional<domain::Counter>>>& done) {
  auto read = [this, name = name.str(), &done] {
    Read(
        Query::Prepared(std::string(postgres::stmt::kGet),
                        {PgParam::Text(name)}),
        [&done](PgConnection::Reply r) {
          if (!r.status.ok()) return done.Complete(r.status);
          const PgResult& res = r.results.at(0);
          if (res.kind == PgResult::Kind::kError) {
            return done.Complete(
                Status::Unavailable("postgres: read: " + res.message));
          }
          auto rows = postgres::ParseCounters(res);
          if (!rows) return done.Complete(rows.error());
          if (rows->empty()) {
            return done.Complete(std::optional<domain::Counter>());
          }
          done.Complete(std::optional<domain::Counter>(std::move(rows->at(0))));
        });
  };
  // Not under the lock: Complete may call back into the repository.
  if (!PostRead(std::move(read))) {
    done.Complete(Status::Unavailable("postgres: closing"));
  }
}

void PostgresRepository::List(const ListRequest& request,
                              Completion<Result<CounterList>>& done) {
  Query query;
  const std::string limit = std::to_string(request.limit);
  std::optional<std::string> upper;
  if (!request.prefix.empty()) {
    upper = postgres::PrefixUpperBound(request.prefix);
  }
  if (upper) {
    query = Query::Prepared(
        std::string(postgres::stmt::kListPrefix),
        {PgParam::Text(request.after), PgParam::Text(request.prefix),
         PgParam::Text(*upper), PgParam::Text(limit)});
  } else {
    query =
        Query::Prepared(std::string(postgres::stmt::kList),
                        {PgParam::Text(request.after), PgParam::Text(limit)});
  }
  auto read = [this, query = std::move(query), &done]() mutable {
    Read(std::move(query), [&done](PgConnection::Reply r) {
      if (!r.status.ok()) return done.Complete(r.status);
      const PgResult& res = r.results.at(0);
      if (res.kind == PgResult::Kind::kError) {
        return done.Complete(
            Status::Unavailable("postgres: read: " + res.message));
      }
      auto list = postgres::ParseCounterList(res);
      if (!list) return done.Complete(list.error());
      done.Complete(std::move(*list));
    });
  };
  if (!PostRead(std::move(read))) {
    done.Complete(Status::Unavailable("postgres: closing"));
  }
}

// -- snapshot ---------------------------------------------------------------

// The document's pages: each a FETCH from the transaction's cursors. The
// transaction stays open until the document is read or dropped, so that
// every page is of the same database snapshot; memory is one page.
// REQUIRES: destroyed before the repository (the server's connections are
// gone before main destroys the store).
class PostgresRepository::CursorPages final : public SnapshotPages {
 public:
  explicit CursorPages(PostgresRepository& repo) : repo_(repo) {}
  ~CursorPages() override {
    // EndSnapshot posts a handler, which allocates: a failure has nowhere
    // to go from a destructor but the log (the connection then stays
    // taken, and this replica refuses snapshots until it restarts).
    try {
      repo_.EndSnapshot();
    } catch (const std::exception& e) {
      log::Error("postgres: ending a snapshot failed", {{"error", e.what()}});
    }
  }
  CursorPages(const CursorPages&) = delete;
  CursorPages& operator=(const CursorPages&) = delete;

  void NextCounters(std::size_t max,
                    PageHandler<domain::Counter> done) override {
    repo_.FetchSnapshotPage(
        kCountersCursor, max,
        [max, done = std::move(done)](PgConnection::Reply r) {
          if (!r.status.ok()) return done(r.status);
          const PgResult& res = r.results.at(0);
          if (res.kind == PgResult::Kind::kError) {
            return done(
                Status::Unavailable("postgres: snapshot: " + res.message +
                                    " (" + res.sqlstate + ")"));
          }
          Result<std::vector<domain::Counter>> rows =
              postgres::ParseCounters(res);
          if (!rows) return done(rows.error());
          SnapshotPage<domain::Counter> page;
          page.last = rows->size() < max;  // the cursor ran out
          page.items = std::move(*rows);
          done(std::move(page));
        });
  }
  void NextRecords(std::size_t max,
                   PageHandler<domain::IdempotencyRecord> done) override {
    repo_.FetchSnapshotPage(
        kRecordsCursor, max,
        [max, done = std::move(done)](PgConnection::Reply r) {
          if (!r.status.ok()) return done(r.status);
          Result<std::vector<domain::IdempotencyRecord>> rows =
              ParseRecords(r.results.at(0));
          if (!rows) return done(rows.error());
          SnapshotPage<domain::IdempotencyRecord> page;
          page.last = rows->size() < max;
          page.items = std::move(*rows);
          done(std::move(page));
        });
  }

 private:
  PostgresRepository& repo_;
};

void PostgresRepository::TakeSnapshot(Completion<Result<SnapshotImage>>& done) {
  auto begin = [this, &done] {
    if (snapshot_open_) {
      return done.Complete(Status::Unavailable(
          "postgres: a snapshot is being read from this replica; try again "
          "once it is done"));
    }
    if (!snapshot_->ready) {
      return done.Complete(
          Status::Unavailable("postgres: no connection to take a snapshot on"));
    }
    snapshot_open_ = true;
    // One REPEATABLE READ transaction: the commit sequence, the counters and
    // the idempotency records all as of its one database snapshot (every
    // commit bumps the sequence row in its own transaction), however long
    // the document takes to read.
    snapshot_->conn.Submit(
        {Query::Sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
         Query::Sql("SELECT seq, counterd_now_ms() FROM counterd_commit_seq")},
        [this, &done](PgConnection::Reply r) {
          OnSnapshotBegun(std::move(r), done);
        });
  };
  if (!PostRead(std::move(begin))) {
    done.Complete(Status::Unavailable("postgres: closing"));
  }
}

void PostgresRepository::OnSnapshotBegun(
    PgConnection::Reply reply, Completion<Result<SnapshotImage>>& done) {
  const PgResult* error =
      reply.status.ok() ? FirstError(reply.results) : nullptr;
  const PgResult* row =
      reply.status.ok() && error == nullptr ? &reply.results.at(1) : nullptr;
  const auto seq = row != nullptr && row->row_count == 1
                       ? postgres::ParseInt64(row->Cell(0, 0).value_or(""))
                       : std::nullopt;
  const auto now_ms = row != nullptr && row->row_count == 1
                          ? postgres::ParseInt64(row->Cell(0, 1).value_or(""))
                          : std::nullopt;
  if (!seq || *seq < 0 || !now_ms) {
    EndSnapshot();
    if (!reply.status.ok()) return done.Complete(reply.status);
    if (error != nullptr) {
      return done.Complete(
          Status::Unavailable("postgres: snapshot: " + error->message + " (" +
                              error->sqlstate + ")"));
    }
    return done.Complete(Status::Internal("postgres: no commit sequence row"));
  }
  // Expiry and retention as of one instant, the transaction's start (the
  // cursors' rows are computed as they are fetched, later).
  const std::string now = std::to_string(*now_ms);
  const std::string retention =
      std::to_string(options_.idempotency_retention.count());
  snapshot_->conn.Submit(
      {Query::Sql("DECLARE " + std::string(kCountersCursor) +
                  " NO SCROLL CURSOR FOR SELECT name, value, version, "
                  "expires_at_ms FROM counterd_counters WHERE expires_at_ms = "
                  "0 OR expires_at_ms > " +
                  now + " ORDER BY name"),
       Query::Sql("DECLARE " + std::string(kRecordsCursor) +
                  " NO SCROLL CURSOR FOR SELECT scope, key, request, outcome, "
                  "created_at_ms FROM counterd_idempotency WHERE "
                  "created_at_ms > " +
                  now + " - " + retention +
                  " ORDER BY created_at_ms, scope, key")},
      [this, &done,
       seq = static_cast<std::uint64_t>(*seq)](const PgConnection::Reply& r) {
        Status problem = r.status;
        if (const PgResult* e =
                problem.ok() ? FirstError(r.results) : nullptr) {
          problem = Status::Unavailable("postgres: snapshot: " + e->message +
                                        " (" + e->sqlstate + ")");
        }
        if (!problem.ok()) {
          EndSnapshot();
          return done.Complete(problem);
        }
        // Encoded a piece at a time by whoever reads the document (the
        // connection sending it), not on this backend's thread.
        SnapshotImage image;
        image.seq = seq;
        image.document =
            NewSnapshotReader(seq, std::make_unique<CursorPages>(*this));
        done.Complete(std::move(image));
      });
}

void PostgresRepository::FetchSnapshotPage(std::string_view cursor,
                                           std::size_t max,
                                           PgConnection::ReplyHandler done) {
  auto fetch = [this, done,
                query = "FETCH FORWARD " + std::to_string(max) + " FROM " +
                        std::string(cursor)]() mutable {
    // On a connection lost since the cursor was declared, this fails (or
    // its new session has no such cursor): the document fails with it.
    snapshot_->conn.Submit({Query::Sql(query)}, std::move(done));
  };
  if (!PostRead(std::move(fetch))) {
    PgConnection::Reply closing;
    closing.status = Status::Unavailable("postgres: closing");
    done(std::move(closing));
  }
}

void PostgresRepository::EndSnapshot() {
  auto end = [this] {
    // A read-only transaction: ROLLBACK ends it with nothing to undo. On a
    // connection lost meanwhile there is no transaction to end; either way
    // the connection takes the next snapshot after this.
    snapshot_->conn.Submit({Query::Sql("ROLLBACK")},
                           [](const PgConnection::Reply&) {});
    snapshot_open_ = false;
  };
  // Closing: the io thread winds down and no snapshot starts again.
  (void)PostRead(std::move(end));
}

// -- commits ----------------------------------------------------------------

void PostgresRepository::Commit(domain::Transaction tx,
                                Completion<domain::TransactionOutcome>& done) {
  {
    MutexLock lock(queue_mu_);
    if (!closing_ && started_) {
      queue_.push_back(Item{std::move(tx), &done});
      if (!kick_posted_) {
        kick_posted_ = true;
        asio::post(ioc_, [this] { OnKick(); });
      }
      return;
    }
  }
  // Not under the lock: Complete may call back into the repository.
  done.Complete(domain::Refusal(Status::Unavailable("postgres: closing")));
}

void PostgresRepository::OnKick() {
  {
    MutexLock lock(queue_mu_);
    kick_posted_ = false;
  }
  MaybeStartBatch();
}

void PostgresRepository::MaybeStartBatch() {
  while (!batch_) {
    std::vector<Item> items;
    {
      MutexLock lock(queue_mu_);
      const std::size_t n = std::min(queue_.size(), options_.max_batch);
      items.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (items.empty()) {
      FinishIfDrained();
      return;
    }
    // Not batch_.emplace(): clang 14 refuses it for a nested struct with
    // default member initialisers.
    batch_ = Batch{};
    batch_->items = std::move(items);
    batch_->started = SteadyClock::now();
    if (!writer_->ready) {
      Status why;
      {
        MutexLock lock(error_mu_);
        why = Status::Unavailable("postgres: not connected" +
                                  (last_error_.ok()
                                       ? std::string()
                                       : " (" + last_error_.message() + ")"));
      }
      FailBatch(why);  // resets batch_; the loop takes the next
      continue;
    }
    RunBatch();
  }
}

void PostgresRepository::RunBatch() {
  Batch& b = *batch_;
  std::vector<const domain::Transaction*> txs;
  txs.reserve(b.items.size());
  for (const Item& item : b.items) txs.push_back(&item.tx);
  b.locks = postgres::PlanLocks(txs);
  b.lock_queries = postgres::MakeLockQueries(
      b.locks, options_.idempotency_retention, rollback_pending_);
  rollback_pending_ = false;
  writer_->conn.Submit(b.lock_queries.queries,
                       [this](const PgConnection::Reply& r) { OnLocked(r); });
}

void PostgresRepository::OnLocked(const PgConnection::Reply& reply) {
  Batch& b = *batch_;
  if (!reply.status.ok()) {
    // COMMIT was not sent: the transaction died with the connection
    // (OnLost reconnects).
    return FailBatch(reply.status);
  }
  if (const PgResult* e = FirstError(reply.results)) {
    rollback_pending_ = true;
    if (postgres::IsRetryable(*e)) return RetryBatch(*e);
    log::Error("postgres: commit failed",
               {{"error", e->message}, {"sqlstate", e->sqlstate}});
    return FailBatch(Status::Unavailable("postgres: " + e->message));
  }
  Result<postgres::LockedState> state =
      postgres::ParseLockReply(b.lock_queries, reply.results);
  if (!state) {
    rollback_pending_ = true;
    log::Error("postgres: commit failed", {{"error", state.error().message()}});
    return FailBatch(Status::Unavailable(state.error().message()));
  }
  service::WorkingSet ws;
  postgres::Seed(b.locks, *state, ws);
  std::set<std::string, std::less<>> existing;
  for (const domain::Counter& row : state->rows) existing.insert(row.name);
  b.outcomes.clear();
  b.outcomes.reserve(b.items.size());
  for (const Item& item : b.items) {
    b.outcomes.push_back(
        service::MutationRules::Apply(item.tx, ws, state->now_ms));
  }
  b.writes = postgres::PlanWrites(ws, existing);
  b.write_queries = postgres::MakeWriteQueries(b.writes);
  b.commit_sent = SteadyClock::now();
  writer_->conn.Submit(b.write_queries.queries, [this](PgConnection::Reply r) {
    OnCommitted(std::move(r));
  });
}

void PostgresRepository::OnCommitted(PgConnection::Reply reply) {
  Batch& b = *batch_;
  if (!reply.status.ok()) {
    if (b.writes.empty()) {
      // Nothing was written: the answers decided on the locked rows hold.
      CompleteBatch();
    } else {
      // Invariant (4).
      unknown_outcomes_.fetch_add(1);
      log::Warn("postgres: connection lost during COMMIT; outcome unknown",
                {{"transactions", b.items.size()},
                 {"error", reply.status.message()}});
      FailBatch(Status::Unavailable(
          "postgres: the connection was lost during COMMIT; the outcome is "
          "unknown (retry with the same Idempotency-Key to resolve it)"));
    }
    return;  // OnLost reconnects
  }
  if (const PgResult* e = FirstError(reply.results)) {
    rollback_pending_ = true;
    if (postgres::IsRetryable(*e)) return RetryBatch(*e);
    log::Error("postgres: commit failed",
               {{"error", e->message}, {"sqlstate", e->sqlstate}});
    return FailBatch(Status::Unavailable("postgres: " + e->message));
  }
  // Invariant (1): COMMIT returned OK.
  commits_.fetch_add(1);
  if (!b.writes.empty()) fsyncs_.fetch_add(1);
  commit_seconds_.Observe(SecondsSince(b.commit_sent));
  batch_sizes_.Observe(static_cast<double>(b.items.size()));
  if (b.write_queries.publish_index) {
    const PgResult& pub = reply.results.at(*b.write_queries.publish_index);
    if (pub.row_count == 1) {
      const auto seq = postgres::ParseInt64(pub.Cell(0, 0).value_or(""));
      // Before the answers go out: a scrape after an acknowledged creation
      // sees it counted.
      NoteRowCount(seq, postgres::ParseInt64(pub.Cell(0, 1).value_or("")));
      if (seq) {
        std::uint64_t s = static_cast<std::uint64_t>(*seq);
        std::uint64_t cur = last_seq_.load();
        while (s > cur && !last_seq_.compare_exchange_weak(cur, s)) {
        }
      }
    }
  }
  std::uint64_t changed = 0;
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    if (b.outcomes[i].status.ok() && !b.outcomes[i].replayed &&
        !b.items[i].tx.ReadOnly()) {
      ++changed;
    }
  }
  mutations_.fetch_add(changed);
  CompleteBatch();
}

void PostgresRepository::RetryBatch(const PgResult& error) {
  retries_.fetch_add(1);
  Batch& b = *batch_;
  if (++b.attempt > options_.max_retries) {
    log::Warn("postgres: gave up a batch after retries",
              {{"retries", options_.max_retries},
               {"error", error.message},
               {"sqlstate", error.sqlstate}});
    return FailBatch(Status::Unavailable("postgres: " + error.message +
                                         " (gave up after retries)"));
  }
  RunBatch();
}

void PostgresRepository::FailBatch(const Status& why) {
  Batch b = std::move(*batch_);
  batch_.reset();
  for (Item& item : b.items) item.done->Complete(domain::Refusal(why));
  // The next batch (or the end of Close) comes after these answers.
  asio::post(ioc_, [this] { MaybeStartBatch(); });
}

void PostgresRepository::CompleteBatch() {
  Batch b = std::move(*batch_);
  batch_.reset();
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    b.items[i].done->Complete(std::move(b.outcomes[i]));
  }
  MaybeStartBatch();
}

// -- watch ------------------------------------------------------------------

void PostgresRepository::FetchChanges() {
  if (!listener_->ready) return;
  if (fetching_) {
    fetch_again_ = true;
    return;
  }
  fetching_ = true;
  fetch_again_ = false;
  // The last sequence number first: every commit up to it has committed,
  // so one the change log no longer holds is known to be missing (read the
  // other way round, a commit landing in between would look missing).
  listener_->conn.Submit(
      {Query::Prepared(std::string(postgres::stmt::kLastSeq)),
       Query::Prepared(std::string(postgres::stmt::kChangesSince),
                       {PgParam::Text(std::to_string(delivered_seq_))})},
      [this](PgConnection::Reply r) { OnChanges(std::move(r)); });
}

void PostgresRepository::OnChanges(PgConnection::Reply reply) {
  fetching_ = false;
  if (!reply.status.ok()) return;  // OnLost reconnects; setup fetches again
  const PgResult& last = reply.results.at(0);
  const PgResult& res = reply.results.at(1);
  const std::optional<std::int64_t> last_seq =
      last.kind == PgResult::Kind::kTuples && last.row_count == 1
          ? postgres::ParseInt64(last.Cell(0, 0).value_or(""))
          : std::nullopt;
  if (!last_seq || res.kind != PgResult::Kind::kTuples ||
      res.column_count != 5) {
    log::Warn("postgres: reading the change log failed",
              {{"error", last.kind == PgResult::Kind::kError ? last.message
                                                             : res.message}});
    return;
  }
  const std::size_t commits =
      DeliverChanges(res, static_cast<std::uint64_t>(*last_seq), sink_.load());
  std::uint64_t cur = last_seq_.load();
  while (delivered_seq_ > cur &&
         !last_seq_.compare_exchange_weak(cur, delivered_seq_)) {
  }
  // A full page (256 commits) may have more behind it.
  if (commits >= 256 || fetch_again_) FetchChanges();
}

std::size_t PostgresRepository::DeliverChanges(const PgResult& res,
                                               std::uint64_t last_seq,
                                               ChangeSink* sink) {
  std::size_t commits = 0;
  ChangeBatch batch;
  // Commits missed for good (purged from the change log while this
  // replica's listener was away): the next batch says so, and watchers
  // resynchronise from current state.
  auto note_gap = [&](std::uint64_t next_seq) {
    log::Warn("postgres: watch: commits no longer in the change log",
              {{"from_seq", delivered_seq_ + 1}, {"to_seq", next_seq - 1}});
    batch.gap = true;
  };
  auto flush = [&] {
    if (batch.seq == 0) return;
    if (batch.seq != delivered_seq_ + 1) note_gap(batch.seq);
    if (sink != nullptr) sink->OnCommitted(batch);
    delivered_seq_ = batch.seq;
    ++commits;
    batch = ChangeBatch{};
  };
  for (std::size_t r = 0; r < res.row_count; ++r) {
    std::optional<ChangeRow> row = ParseChangeRow(res, r);
    if (!row) continue;
    if (row->seq != batch.seq) flush();
    batch.seq = row->seq;
    batch.changes.push_back(std::move(row->change));
  }
  flush();
  // The log ended before the last commit: the ones after what it held are
  // gone (a full page may just have more behind it).
  if (commits < 256 && last_seq > delivered_seq_) {
    batch.seq = last_seq;
    note_gap(batch.seq + 1);
    if (sink != nullptr) sink->OnCommitted(batch);
    delivered_seq_ = batch.seq;
  }
  return commits;
}

// -- maintenance ------------------------------------------------------------

void PostgresRepository::ScheduleMaintenance(std::chrono::milliseconds after) {
  maintenance_timer_.expires_after(after);
  maintenance_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finishing_) return;
    RunMaintenance();
  });
}

void PostgresRepository::ScheduleWatchdog() {
  watchdog_timer_.expires_after(
      std::min(options_.request_timeout / 4,
               std::chrono::milliseconds(std::chrono::seconds(1))));
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finishing_) return;
    const auto now = SteadyClock::now();
    for (auto& slot : slots_) {
      const auto oldest = slot->conn.OldestInFlight();
      if (slot->ready && oldest && now - *oldest > options_.request_timeout) {
        const Status why = Status::Unavailable(
            "postgres: no answer from the server in " +
            std::to_string(options_.request_timeout.count()) +
            " ms; dropping the connection");
        log::Warn("postgres: dropping a connection that stopped answering",
                  {{"timeout_ms", options_.request_timeout.count()}});
        slot->ready = false;
        UpdateUp();
        NoteError(why);
        // Answers what was in flight (a COMMIT among it: outcome unknown).
        slot->conn.Disconnect(why);
        ScheduleReconnect(*slot);
      }
    }
    ScheduleWatchdog();
  });
}

void PostgresRepository::RunMaintenance() {
  Slot* reader = PickReader();
  if (reader == nullptr || maintenance_running_) {
    ScheduleMaintenance(options_.maintenance_interval);
    return;
  }
  maintenance_running_ = true;
  const std::string batch = std::to_string(options_.purge_batch);
  // Each purge is its own request, so its own (short) transaction. The
  // largest number of rows one of them deleted: a full batch means more
  // are due, and the next pass comes at once (a pass per interval would
  // fall behind a database that takes more than a batch per interval).
  auto most_purged = std::make_shared<std::uint64_t>(0);
  const auto note_purged = [most_purged](std::optional<std::int64_t> n) {
    *most_purged = std::max(
        *most_purged,
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, n.value_or(0))));
  };
  reader->conn.Submit(
      {Query::Prepared(std::string(postgres::stmt::kPurgeExpired),
                       {PgParam::Text(batch)})},
      [this, note_purged](PgConnection::Reply r) {
        if (!r.status.ok() || r.results.at(0).kind != PgResult::Kind::kTuples) {
          return;
        }
        const PgResult& res = r.results[0];
        const auto n = postgres::ParseInt64(res.Cell(0, 0).value_or("0"));
        note_purged(n);
        expired_.fetch_add(static_cast<std::uint64_t>(n.value_or(0)));
        NoteRowCount(postgres::ParseInt64(res.Cell(0, 1).value_or("")),
                     postgres::ParseInt64(res.Cell(0, 2).value_or("")));
      });
  // Both answer the number of rows they deleted.
  const auto count_purged = [note_purged](PgConnection::Reply r) {
    if (r.status.ok() && r.results.at(0).kind == PgResult::Kind::kTuples &&
        r.results[0].row_count == 1) {
      note_purged(postgres::ParseInt64(r.results[0].Cell(0, 0).value_or("")));
    }
  };
  reader->conn.Submit(
      {Query::Prepared(std::string(postgres::stmt::kPurgeIdempotency),
                       {PgParam::Text(std::to_string(
                            options_.idempotency_retention.count())),
                        PgParam::Text(batch)})},
      count_purged);
  reader->conn.Submit(
      {Query::Prepared(
          std::string(postgres::stmt::kPurgeChanges),
          {PgParam::Text(std::to_string(options_.change_retention.count())),
           PgParam::Text(batch)})},
      count_purged);
  reader->conn.Submit(
      {Query::Prepared(std::string(postgres::stmt::kEstimates))},
      [this, most_purged](PgConnection::Reply r) {
        maintenance_running_ = false;
        if (r.status.ok() && r.results.at(0).kind == PgResult::Kind::kTuples &&
            r.results[0].row_count == 1) {
          // Other replicas' creations and deletions reach the gauge here.
          const PgResult& res = r.results[0];
          NoteRowCount(postgres::ParseInt64(res.Cell(0, 0).value_or("")),
                       postgres::ParseInt64(res.Cell(0, 1).value_or("")));
          records_estimate_.store(static_cast<std::uint64_t>(
              postgres::ParseInt64(res.Cell(0, 2).value_or("0")).value_or(0)));
        }
        if (finishing_) return FinishIfDrained();
        ScheduleMaintenance(*most_purged >= options_.purge_batch
                                ? std::chrono::milliseconds(10)
                                : options_.maintenance_interval);
      });
}

// -- health, stats, close ---------------------------------------------------

Status PostgresRepository::Health() const {
  if (closed_flag_.load()) return Status::Unavailable("postgres: closed");
  // Ready as at start-up: the writer and at least one reader connected.
  // With the writer alone every read would answer 503 while /readyz kept
  // the replica in the Service.
  const bool writer = up_.load();
  if (writer && readers_up_.load() > 0) return Status::Ok();
  MutexLock lock(error_mu_);
  return Status::Unavailable(
      std::string(writer ? "postgres: no reader connection"
                         : "postgres: not connected") +
      (last_error_.ok() ? std::string() : " (" + last_error_.message() + ")"));
}

RepositoryStats PostgresRepository::Stats() const {
  RepositoryStats s;
  s.backend = "postgres";
  s.counters = counters_.load();
  s.idempotency_keys = records_estimate_.load();
  s.mutations = mutations_.load();
  s.commits = commits_.load();
  s.fsyncs = fsyncs_.load();
  s.expired = expired_.load();
  s.last_seq = last_seq_.load();
  s.reconnects = reconnects_.load();
  s.failed = false;
  s.up = up_.load();
  s.batch_sizes = batch_sizes_.Read();
  s.commit_seconds = commit_seconds_.Read();
  return s;
}

void PostgresRepository::NoteRowCount(std::optional<std::int64_t> seq,
                                      std::optional<std::int64_t> count) {
  if (!seq || !count || *seq < row_count_seq_) return;
  row_count_seq_ = *seq;
  counters_.store(
      static_cast<std::uint64_t>(std::max<std::int64_t>(*count, 0)));
}

void PostgresRepository::FinishIfDrained() {
  if (!finishing_ || batch_ || maintenance_running_) return;
  {
    MutexLock lock(queue_mu_);
    if (!queue_.empty()) return;
  }
  maintenance_timer_.cancel();
  watchdog_timer_.cancel();
  for (auto& slot : slots_) {
    slot->retry_timer.cancel();
    slot->connect_timer.cancel();
    slot->ready = false;
    slot->conn.Disconnect(Status::Unavailable("postgres: closing"));
  }
  UpdateUp();
  work_.reset();  // run() returns once the cancelled waits have run
}

Status PostgresRepository::Close() {
  bool was_started = false;
  {
    MutexLock lock(queue_mu_);
    if (closing_) {
      was_started = false;
    } else {
      closing_ = true;
      was_started = started_;
    }
  }
  if (was_started) {
    asio::post(ioc_, [this] {
      finishing_ = true;
      MaybeStartBatch();  // drains the queue, then FinishIfDrained
    });
  }
  if (io_thread_.joinable()) io_thread_.join();
  closed_flag_.store(true);
  up_.store(false);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<CounterRepository>> OpenPostgresRepository(
    PostgresOptions options) {
  auto repo = std::make_unique<PostgresRepository>(
      std::move(options), postgres::NewLibpqConnector());
  if (Status s = repo->Start(); !s.ok()) return s;
  return std::unique_ptr<CounterRepository>(std::move(repo));
}

Result<PostgresMigration> MigratePostgres(const std::string& url,
                                          std::chrono::milliseconds timeout) {
  auto connector = postgres::NewLibpqConnector();
  postgres::BlockingSession session(*connector, url);
  Result<postgres::ServerFacts> facts = session.Connect(timeout);
  if (!facts) return facts.error();
  Result<postgres::MigrationReport> report =
      postgres::ApplyMigrations(session, timeout);
  session.Close();
  if (!report) return report.error();
  return PostgresMigration{report->from_version, report->to_version};
}

PostgresStats PostgresStatsOf(const CounterRepository& repository) {
  const auto* pg = dynamic_cast<const PostgresRepository*>(&repository);
  return pg != nullptr ? pg->OwnStats() : PostgresStats{};
}

}  // namespace counterd::storage
