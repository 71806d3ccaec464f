#include "blocking_session.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "schema.h"
#include "sql_text.h"

namespace counterd::storage::postgres {

using Query = PgConnection::Query;
using Clock = std::chrono::steady_clock;

Result<ServerFacts> ParseSessionSetup(const PgResult& result) {
  if (!result.ok() || result.row_count != 1 || result.column_count != 4) {
    return Status::Unavailable("postgres: session setup failed: " +
                               result.message);
  }
  ServerFacts facts;
  facts.fsync = result.Cell(0, 0).value_or("") != "off";
  facts.in_recovery = result.Cell(0, 1).value_or("") == "true";
  facts.synchronous_commit = result.Cell(0, 2).value_or("");
  facts.server_version_num =
      static_cast<int>(ParseInt64(result.Cell(0, 3).value_or("0")).value_or(0));
  return facts;
}

Status CheckServer(const ServerFacts& facts) {
  if (!facts.fsync) {
    return Status::FailedPrecondition(
        "postgres: the server runs with fsync = off, so a committed "
        "transaction can be lost in a crash; counterd refuses to acknowledge "
        "writes there (set fsync = on)");
  }
  if (facts.in_recovery) {
    return Status::Unavailable(
        "postgres: the server is a standby (in recovery), not the primary; "
        "list the primary in the URL, or several hosts with "
        "target_session_attrs=read-write");
  }
  return Status::Ok();
}

BlockingSession::BlockingSession(PqConnector& connector, std::string conninfo)
    : conn_(ioc_, connector, std::move(conninfo)) {}

template <typename Pred>
bool BlockingSession::RunUntil(Pred done, Clock::time_point deadline) {
  while (!done()) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    ioc_.restart();
    ioc_.run_one_for(deadline - now);
  }
  return true;
}

std::optional<Result<ServerFacts>> BlockingSession::SetUpSession(
    Clock::time_point deadline, bool check_server, Status& last) {
  PgConnection::Reply setup =
      Run({Query::Sql(std::string(kSessionSetup))},
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::max(deadline - Clock::now(), Clock::duration::zero())));
  if (!setup.status.ok()) {
    last = setup.status;
    return std::nullopt;
  }
  Result<ServerFacts> facts = ParseSessionSetup(setup.results.at(0));
  if (!facts) return facts.error();
  Status check = check_server ? CheckServer(*facts) : Status::Ok();
  if (check.ok()) return facts;
  if (check.code() != StatusCode::kUnavailable) return check;
  last = check;  // a standby: it may be promoted; try again
  conn_.Disconnect(last);
  return std::nullopt;
}

Result<ServerFacts> BlockingSession::Connect(std::chrono::milliseconds timeout,
                                             bool check_server) {
  const auto deadline = Clock::now() + timeout;
  auto backoff = std::chrono::milliseconds(50);
  Status last = Status::Unavailable("postgres: connect: timed out");
  while (true) {
    std::optional<Status> connected;
    conn_.Connect([&](const Status& s) { connected = s; });
    if (!RunUntil([&] { return connected.has_value(); }, deadline)) {
      conn_.Disconnect(last);
      return last;
    }
    if (!connected->ok()) {
      last = *connected;
    } else if (std::optional<Result<ServerFacts>> answer =
                   SetUpSession(deadline, check_server, last)) {
      return std::move(*answer);
    }
    if (Clock::now() + backoff >= deadline) return last;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

PgConnection::Reply BlockingSession::Run(const std::vector<Query>& queries,
                                         std::chrono::milliseconds timeout) {
  std::optional<PgConnection::Reply> reply;
  conn_.Submit(queries, [&](PgConnection::Reply r) { reply = std::move(r); });
  if (!RunUntil([&] { return reply.has_value(); }, Clock::now() + timeout)) {
    conn_.Disconnect(Status::Unavailable("postgres: timed out"));
    RunUntil([&] { return reply.has_value(); }, Clock::now());
  }
  return std::move(*reply);
}

void BlockingSession::Close() {
  conn_.Disconnect(Status::Unavailable("postgres: session closed"));
}

namespace {

// The first failed result of |reply|, as a Status; OK if all succeeded.
Status FirstError(const PgConnection::Reply& reply, std::string_view what) {
  if (!reply.status.ok()) return reply.status.WithContext(what);
  for (const PgResult& r : reply.results) {
    if (r.kind == PgResult::Kind::kError) {
      return Status::Internal(std::string(what) + ": " + r.message + " (" +
                              r.sqlstate + ")");
    }
    if (!r.ok()) {
      return Status::Internal(std::string(what) + ": unexpected result");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<MigrationReport> ApplyMigrations(BlockingSession& session,
                                        std::chrono::milliseconds timeout) {
  const std::string lock_key = std::to_string(kMigrationLockKey);
  // The lock is the session's: a lost connection releases it.
  PgConnection::Reply head = session.Run(
      {Query::Sql("SELECT pg_advisory_lock($1::bigint)",
                  {PgParam::Text(lock_key)}),
       Query::Sql("CREATE TABLE IF NOT EXISTS counterd_schema_migrations ("
                  "version integer PRIMARY KEY, description text NOT NULL, "
                  "applied_at timestamptz NOT NULL DEFAULT now())"),
       Query::Sql("SELECT coalesce(max(version), 0) FROM "
                  "counterd_schema_migrations")},
      timeout);
  if (Status s = FirstError(head, "migrate: read the schema version");
      !s.ok()) {
    return s;
  }
  MigrationReport report;
  report.from_version = static_cast<int>(
      ParseInt64(head.results[2].Cell(0, 0).value_or("0")).value_or(0));
  report.to_version = report.from_version;
  Status failure;
  if (report.from_version > LatestSchemaVersion()) {
    failure = Status::FailedPrecondition(
        "migrate: the database's counterd schema is version " +
        std::to_string(report.from_version) + ", newer than this counterd (" +
        std::to_string(LatestSchemaVersion()) +
        "); migrations are forward-only: run a newer counterd");
  }
  for (const Migration& m : Migrations()) {
    if (!failure.ok() || m.version <= report.from_version) continue;
    std::vector<Query> queries;
    queries.push_back(Query::Sql("BEGIN"));
    for (std::string_view sql : m.statements) {
      queries.push_back(Query::Sql(std::string(sql)));
    }
    queries.push_back(Query::Sql(
        "INSERT INTO counterd_schema_migrations (version, description) "
        "VALUES ($1::integer, $2)",
        {PgParam::Text(std::to_string(m.version)),
         PgParam::Text(std::string(m.description))}));
    queries.push_back(Query::Sql("COMMIT"));
    PgConnection::Reply reply = session.Run(queries, timeout);
    failure = FirstError(
        reply, "migrate: apply migration " + std::to_string(m.version));
    if (failure.ok()) {
      report.to_version = m.version;
    } else if (reply.status.ok()) {
      (void)session.Run({Query::Sql("ROLLBACK")}, timeout);
    }
  }
  (void)session.Run({Query::Sql("SELECT pg_advisory_unlock($1::bigint)",
                                {PgParam::Text(lock_key)})},
                    timeout);
  if (!failure.ok()) return failure;
  return report;
}

}  // namespace counterd::storage::postgres
