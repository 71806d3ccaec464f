// RestorePostgres (postgres_repository.h): a snapshot loaded in one
// transaction.
#include <string>
#include <utility>
#include <vector>

#include "blocking_session.h"
#include "counterd/storage/postgres_repository.h"
#include "pg_connection.h"
#include "record_codec.h"
#include "sql_text.h"

namespace counterd::storage {
namespace {

using postgres::PgConnection;
using postgres::PgParam;
using postgres::PgResult;
using Query = PgConnection::Query;

// Rows per INSERT: bounded statements for a large snapshot.
constexpr std::size_t kChunk = 1000;

Status FirstError(const PgConnection::Reply& reply, std::string_view step) {
  if (!reply.status.ok()) return reply.status.WithContext(std::string(step));
  for (const PgResult& r : reply.results) {
    if (r.kind == PgResult::Kind::kError) {
      return Status::Unavailable("postgres: " + std::string(step) + ": " +
                                 r.message + " (" + r.sqlstate + ")");
    }
  }
  return Status::Ok();
}

void AddCounterInserts(const std::vector<domain::Counter>& counters,
                       std::vector<Query>& queries) {
  for (std::size_t at = 0; at < counters.size(); at += kChunk) {
    std::vector<std::string> names;
    std::vector<std::int64_t> values, versions, expiries;
    for (std::size_t i = at; i < counters.size() && i < at + kChunk; ++i) {
      names.push_back(counters[i].name);
      values.push_back(counters[i].value);
      versions.push_back(static_cast<std::int64_t>(counters[i].version));
      expiries.push_back(counters[i].expires_at_ms);
    }
    queries.push_back(Query::Sql(
        "INSERT INTO counterd_counters (name, value, version, expires_at_ms) "
        "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], "
        "$4::bigint[])",
        {PgParam::Text(postgres::TextArray(names)),
         PgParam::Text(postgres::Int64Array(values)),
         PgParam::Text(postgres::Int64Array(versions)),
         PgParam::Text(postgres::Int64Array(expiries))}));
  }
}

void AddIdempotencyInserts(
    const std::vector<domain::IdempotencyRecord>& records,
    std::vector<Query>& queries) {
  for (std::size_t at = 0; at < records.size(); at += kChunk) {
    std::vector<std::string> scopes, keys, requests, outcomes;
    std::vector<std::int64_t> created;
    for (std::size_t i = at; i < records.size() && i < at + kChunk; ++i) {
      const domain::IdempotencyRecord& r = records[i];
      scopes.push_back(r.scope);
      keys.push_back(r.key);
      requests.push_back(postgres::EncodeFingerprint(r.request));
      outcomes.push_back(postgres::EncodeOutcome(r.outcome));
      created.push_back(r.created_at_ms);
    }
    queries.push_back(Query::Sql(
        "INSERT INTO counterd_idempotency (scope, key, request, outcome, "
        "created_at_ms) SELECT * FROM unnest($1::text[], $2::text[], "
        "$3::bytea[], $4::bytea[], $5::bigint[])",
        {PgParam::Text(postgres::TextArray(scopes)),
         PgParam::Text(postgres::TextArray(keys)),
         PgParam::Text(postgres::ByteaArray(requests)),
         PgParam::Text(postgres::ByteaArray(outcomes)),
         PgParam::Text(postgres::Int64Array(created))}));
  }
}

}  // namespace

Result<SnapshotSummary> RestorePostgres(const std::string& url,
                                        const SnapshotContents& snapshot,
                                        bool force,
                                        std::chrono::milliseconds timeout) {
  auto connector = postgres::NewLibpqConnector();
  postgres::BlockingSession session(*connector, url);
  Result<postgres::ServerFacts> facts = session.Connect(timeout);
  if (!facts) return facts.error();
  Result<postgres::MigrationReport> migrated =
      postgres::ApplyMigrations(session, timeout);
  if (!migrated) return migrated.error();

  // The tables are locked against every writer (EXCLUSIVE still lets
  // readers in) before they are looked at, so no replica commits between
  // the emptiness check and the load.
  PgConnection::Reply found = session.Run(
      {Query::Sql("BEGIN ISOLATION LEVEL READ COMMITTED"),
       Query::Sql("LOCK TABLE counterd_counters, counterd_idempotency, "
                  "counterd_commit_seq IN EXCLUSIVE MODE"),
       Query::Sql("SELECT (SELECT count(*) FROM counterd_counters), "
                  "(SELECT count(*) FROM counterd_idempotency)")},
      timeout);
  if (Status s = FirstError(found, "restore"); !s.ok()) return s;
  const PgResult& counts = found.results.at(2);
  const auto counters = postgres::ParseInt64(counts.Cell(0, 0).value_or(""));
  const auto records = postgres::ParseInt64(counts.Cell(0, 1).value_or(""));
  if (!counters || !records) {
    return Status::Internal("postgres: restore: cannot count the rows");
  }
  if ((*counters > 0 || *records > 0) && !force) {
    (void)session.Run({Query::Sql("ROLLBACK")}, timeout);
    session.Close();
    return Status::AlreadyExists(
        "the database is not empty (" + std::to_string(*counters) +
        " counters, " + std::to_string(*records) +
        " idempotency records); restore replaces them only with --force");
  }

  std::vector<Query> load;
  load.push_back(Query::Sql("DELETE FROM counterd_counters"));
  load.push_back(Query::Sql("DELETE FROM counterd_idempotency"));
  // The change log describes the replaced history: a watcher catching up
  // across the restore finds the gap and resynchronises.
  load.push_back(Query::Sql("DELETE FROM counterd_changes"));
  AddCounterInserts(snapshot.counters, load);
  AddIdempotencyInserts(snapshot.idempotency, load);
  // A new commit sequence number for the restored state, and the exact row
  // count (counterd_counters gauge).
  load.push_back(Query::Sql(
      "UPDATE counterd_commit_seq SET seq = seq + 1, counters = $1::bigint",
      {PgParam::Text(std::to_string(snapshot.counters.size()))}));
  load.push_back(Query::Sql("COMMIT"));
  PgConnection::Reply loaded = session.Run(load, timeout);
  Status s = FirstError(loaded, "restore");
  if (!s.ok()) {
    // Nothing is kept: the transaction did not commit (or, if the
    // connection was lost, the server rolls it back).
    (void)session.Run({Query::Sql("ROLLBACK")}, timeout);
  }
  session.Close();
  if (!s.ok()) return s;
  return snapshot.summary;
}

}  // namespace counterd::storage
