#include "schema.h"

#include <array>

namespace counterd::storage::postgres {
namespace {

// Forward-only: a released migration is never edited; a change is a new
// one. Each statement is idempotent as well (IF NOT EXISTS, OR REPLACE), so
// a database someone half-migrated by hand still converges.
const std::vector<Migration>& AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "counters, idempotency records, commit sequence and change log",
       {
           // One row per counter. name sorts bytewise (COLLATE "C"), as the
           // file backend's names do, so listing pages agree. fillfactor
           // leaves room on each page for HOT updates: an increment changes
           // no indexed column, so the new row version goes on the same
           // page without index writes.
           R"sql(CREATE TABLE IF NOT EXISTS counterd_counters (
  name text COLLATE "C" PRIMARY KEY,
  value bigint NOT NULL,
  version bigint NOT NULL CHECK (version > 0),
  expires_at_ms bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 70))sql",
           // Expired counters are found by this index and purged in bounded
           // batches. Only counters with an expiry are in it, and an
           // increment keeps the expiry, so it does not stop HOT updates.
           R"sql(CREATE INDEX IF NOT EXISTS counterd_counters_expiry
  ON counterd_counters (expires_at_ms) WHERE expires_at_ms <> 0)sql",
           // The first answer to each Idempotency-Key, per scope (token
           // name; '' without authentication), written in the transaction
           // of the change it describes.
           R"sql(CREATE TABLE IF NOT EXISTS counterd_idempotency (
  scope text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  request bytea NOT NULL,
  outcome bytea NOT NULL,
  created_at_ms bigint NOT NULL,
  PRIMARY KEY (scope, key)
))sql",
           R"sql(CREATE INDEX IF NOT EXISTS counterd_idempotency_created
  ON counterd_idempotency (created_at_ms))sql",
           // The commit sequence (watch ids): one row, bumped by every
           // commit that changes counters. Its row lock is held to COMMIT,
           // so sequence order is commit order across replicas.
           R"sql(CREATE TABLE IF NOT EXISTS counterd_commit_seq (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq bigint NOT NULL
) WITH (fillfactor = 50))sql",
           R"sql(INSERT INTO counterd_commit_seq (id, seq) VALUES (true, 0)
  ON CONFLICT (id) DO NOTHING)sql",
           // What each commit changed, kept for a while so that a replica
           // whose LISTEN connection dropped catches up (watch).
           // versions[i] = 0: names[i] was deleted or expired.
           R"sql(CREATE TABLE IF NOT EXISTS counterd_changes (
  seq bigint PRIMARY KEY,
  committed_at_ms bigint NOT NULL,
  names text[] NOT NULL,
  vals bigint[] NOT NULL,
  versions bigint[] NOT NULL,
  expires_at_ms bigint[] NOT NULL
))sql",
           // The database's wall clock in ms: every replica decides expiry
           // and retention on the same clock.
           R"sql(CREATE OR REPLACE FUNCTION counterd_now_ms() RETURNS bigint
  LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint$$)sql",
       }},
      {2,
       "counterd_commit_seq.counters: the number of counter rows",
       {
           // The counterd_counters gauge and the start-up line's counters=
           // are exact, as on the file backend, without counting rows: every
           // commit that creates or deletes rows adds its difference here
           // in the same transaction (the publish already updates this row,
           // so it costs no extra lock or write). Counted once, with the
           // counters table held against writers so no creation is in
           // flight, and with no commit publishing meanwhile (the ALTER
           // holds this table).
           "LOCK TABLE counterd_counters IN SHARE MODE",
           R"sql(ALTER TABLE counterd_commit_seq
  ADD COLUMN IF NOT EXISTS counters bigint)sql",
           R"sql(UPDATE counterd_commit_seq
  SET counters = (SELECT count(*) FROM counterd_counters)
  WHERE counters IS NULL)sql",
           R"sql(ALTER TABLE counterd_commit_seq
  ALTER COLUMN counters SET NOT NULL)sql",
       }},
  };
  return kMigrations;
}

// $1 text[] names, sorted: locks the rows that exist, in name order.
constexpr std::string_view kLockSql =
    "SELECT name, value, version, expires_at_ms FROM counterd_counters "
    "WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE";
// $1 text[] scopes, $2 text[] keys, $3 bigint retention ms: removes the
// expired records of these keys, so that a key past its retention is new.
constexpr std::string_view kIdemExpireSql =
    "DELETE FROM counterd_idempotency i USING unnest($1::text[], $2::text[]) "
    "AS k(scope, key) WHERE i.scope = k.scope AND i.key = k.key "
    "AND i.created_at_ms < counterd_now_ms() - $3::bigint";
// $1 text[] scopes, $2 text[] keys.
constexpr std::string_view kIdemGetSql =
    "SELECT i.scope, i.key, i.request, i.outcome, i.created_at_ms "
    "FROM counterd_idempotency i JOIN unnest($1::text[], $2::text[]) "
    "AS k(scope, key) ON i.scope = k.scope AND i.key = k.key";
constexpr std::string_view kNowSql = "SELECT counterd_now_ms()";
// $1 names, $2 values, $3 versions, $4 expiries: rows that exist (locked).
constexpr std::string_view kUpdateSql =
    "UPDATE counterd_counters AS c SET value = u.value, version = u.version, "
    "expires_at_ms = u.expires_at_ms FROM unnest($1::text[], $2::bigint[], "
    "$3::bigint[], $4::bigint[]) AS u(name, value, version, expires_at_ms) "
    "WHERE c.name = u.name";
// Same parameters, rows that did not exist (sorted by name). A concurrent
// creator makes it fail with unique_violation: the batch is retried.
constexpr std::string_view kInsertSql =
    "INSERT INTO counterd_counters (name, value, version, expires_at_ms) "
    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], "
    "$4::bigint[])";
constexpr std::string_view kDeleteSql =
    "DELETE FROM counterd_counters WHERE name = ANY($1::text[])";
// $1 scopes, $2 keys, $3 bytea[] requests, $4 bytea[] outcomes, $5 created.
// A concurrent first use of the same key fails with unique_violation: the
// batch is retried and then replays the other's answer.
constexpr std::string_view kIdemPutSql =
    "INSERT INTO counterd_idempotency (scope, key, request, outcome, "
    "created_at_ms) SELECT * FROM unnest($1::text[], $2::text[], "
    "$3::bytea[], $4::bytea[], $5::bigint[])";
// $1 names, $2 values, $3 versions (0: deleted), $4 expiries, $5 rows
// created minus rows deleted: takes the next commit sequence number (its row
// lock is held to COMMIT), adds $5 to the row count, records the changes
// under it and notifies the replicas' listeners (delivered on commit only).
// Returns the sequence number and the row count.
constexpr std::string_view kPublishSql =
    "WITH s AS (UPDATE counterd_commit_seq SET seq = seq + 1, "
    "counters = counters + $5::bigint RETURNING seq, counters), "
    "c AS (INSERT INTO counterd_changes (seq, committed_at_ms, names, vals, "
    "versions, expires_at_ms) SELECT s.seq, counterd_now_ms(), $1::text[], "
    "$2::bigint[], $3::bigint[], $4::bigint[] FROM s RETURNING seq) "
    "SELECT c.seq, s.counters, pg_notify('counterd_changes', c.seq::text) "
    "FROM c, s";

// $1 name.
constexpr std::string_view kGetSql =
    "SELECT name, value, version, expires_at_ms FROM counterd_counters "
    "WHERE name = $1 AND (expires_at_ms = 0 OR expires_at_ms > "
    "counterd_now_ms())";
// Listings: the counters with the commit sequence number, read by one
// statement and so from one snapshot: the number says exactly which
// commits the rows include (a watch stitches them to its change feed with
// it). The outer join answers one row with a NULL name when no counter
// matches, so the number comes back either way.
// $1 after, $2 limit.
constexpr std::string_view kListSql =
    "SELECT s.seq, c.name, c.value, c.version, c.expires_at_ms FROM "
    "counterd_commit_seq AS s LEFT JOIN LATERAL (SELECT name, value, "
    "version, expires_at_ms FROM counterd_counters WHERE name > $1 AND "
    "(expires_at_ms = 0 OR expires_at_ms > counterd_now_ms()) ORDER BY name "
    "LIMIT $2::bigint) AS c ON true ORDER BY c.name";
// $1 after, $2 prefix, $3 the prefix's upper bound, $4 limit.
constexpr std::string_view kListPrefixSql =
    "SELECT s.seq, c.name, c.value, c.version, c.expires_at_ms FROM "
    "counterd_commit_seq AS s LEFT JOIN LATERAL (SELECT name, value, "
    "version, expires_at_ms FROM counterd_counters WHERE name > $1 AND "
    "name >= $2 AND name < $3 AND (expires_at_ms = 0 OR expires_at_ms > "
    "counterd_now_ms()) ORDER BY name LIMIT $4::bigint) AS c ON true ORDER "
    "BY c.name";
// The purges below run every maintenance pass on tables of millions of
// rows, so each reads only what it deletes (postgres.real counts the rows):
// - "(SELECT counterd_now_ms())" is computed once per statement, so the
//   comparison with it is an index condition (the function itself is
//   VOLATILE and would be a filter on every row the scan visits);
// - "= ANY(ARRAY(SELECT ...))" is also computed once, so the DELETE finds
//   the batch by key; written "IN (SELECT ...)", it may be planned as a
//   scan of the whole table joined with the batch, however small.
//
// $1 batch size: deletes up to that many expired counters (skipping rows a
// commit holds: that commit replaces them) and publishes their removal as
// one commit. Returns (purged, seq or NULL, row count or NULL).
constexpr std::string_view kPurgeExpiredSql =
    "WITH d AS (DELETE FROM counterd_counters WHERE name = ANY(ARRAY(SELECT "
    "name FROM counterd_counters WHERE expires_at_ms <> 0 AND expires_at_ms "
    "<= (SELECT counterd_now_ms()) ORDER BY expires_at_ms LIMIT $1::bigint "
    "FOR UPDATE SKIP LOCKED)) AND expires_at_ms <> 0 AND expires_at_ms <= "
    "(SELECT counterd_now_ms()) RETURNING name), "
    "s AS (UPDATE counterd_commit_seq SET seq = seq + 1, counters = "
    "counters - (SELECT count(*) FROM d) WHERE EXISTS (SELECT 1 FROM d) "
    "RETURNING seq, counters), "
    "c AS (INSERT INTO counterd_changes (seq, committed_at_ms, names, vals, "
    "versions, expires_at_ms) SELECT s.seq, counterd_now_ms(), "
    "array_agg(d.name), array_agg(0::bigint), array_agg(0::bigint), "
    "array_agg(0::bigint) FROM s, d GROUP BY s.seq RETURNING seq) "
    "SELECT (SELECT count(*) FROM d), (SELECT max(seq) FROM c), "
    "(SELECT max(counters) FROM s), "
    "(SELECT count(*) FROM (SELECT pg_notify('counterd_changes', seq::text) "
    "FROM c) n)";
// $1 retention ms, $2 batch size; answers the number of records deleted.
// The oldest records past retention, by the created_at_ms index, deleted by
// their row addresses (the key has two columns); the row locks taken keep
// the addresses valid until the DELETE.
constexpr std::string_view kPurgeIdempotencySql =
    "WITH d AS (DELETE FROM counterd_idempotency WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM counterd_idempotency WHERE created_at_ms < (SELECT "
    "counterd_now_ms()) - $1::bigint ORDER BY created_at_ms LIMIT $2::bigint "
    "FOR UPDATE SKIP LOCKED)) RETURNING 1) SELECT count(*) FROM d";
// $1 retention ms, $2 batch size; answers the number of commits deleted.
// Looks at the $2 oldest commits only (sequence order is commit order, so
// they are the oldest in time too) and deletes those past retention: a pass
// reads at most $2 rows of the log, however long it is. (Filtering on
// committed_at_ms first, which has no index, would read the whole log
// whenever nothing is old enough yet.)
constexpr std::string_view kPurgeChangesSql =
    "WITH d AS (DELETE FROM counterd_changes WHERE seq = ANY(ARRAY(SELECT seq "
    "FROM (SELECT seq, committed_at_ms FROM counterd_changes ORDER BY seq "
    "LIMIT $2::bigint FOR UPDATE SKIP LOCKED) AS head WHERE committed_at_ms < "
    "(SELECT counterd_now_ms()) - $1::bigint)) RETURNING 1) SELECT count(*) "
    "FROM d";
// The stored row count with the sequence number it goes with (exact), and
// the planner's estimate of the idempotency records (approximate, cheap).
constexpr std::string_view kEstimatesSql =
    "SELECT seq, counters, greatest(0, (SELECT reltuples FROM pg_class WHERE "
    "oid = 'counterd_idempotency'::regclass))::bigint FROM "
    "counterd_commit_seq";

// $1 seq: the changes of the next (up to 256) commits after it, one row
// per counter, in commit order. The commits are taken first, by a range of
// the key: every notification runs this on every replica, and the log
// holds minutes of commits (a join of the log with that range could be
// planned as a scan of the whole log).
constexpr std::string_view kChangesSinceSql =
    "SELECT c.seq, u.name, u.val, u.ver, u.exp FROM (SELECT seq, names, "
    "vals, versions, expires_at_ms FROM counterd_changes WHERE seq > "
    "$1::bigint ORDER BY seq LIMIT 256) AS c CROSS JOIN LATERAL "
    "unnest(c.names, c.vals, c.versions, c.expires_at_ms) WITH ORDINALITY AS "
    "u(name, val, ver, exp, ord) ORDER BY c.seq, u.ord";
constexpr std::string_view kLastSeqSql = "SELECT seq FROM counterd_commit_seq";

constexpr std::array kWriterStatements = {
    Statement{stmt::kLock, kLockSql},
    Statement{stmt::kIdemExpire, kIdemExpireSql},
    Statement{stmt::kIdemGet, kIdemGetSql},
    Statement{stmt::kNow, kNowSql},
    Statement{stmt::kUpdate, kUpdateSql},
    Statement{stmt::kInsert, kInsertSql},
    Statement{stmt::kDelete, kDeleteSql},
    Statement{stmt::kIdemPut, kIdemPutSql},
    Statement{stmt::kPublish, kPublishSql},
};
constexpr std::array kReaderStatements = {
    Statement{stmt::kGet, kGetSql},
    Statement{stmt::kList, kListSql},
    Statement{stmt::kListPrefix, kListPrefixSql},
    Statement{stmt::kPurgeExpired, kPurgeExpiredSql},
    Statement{stmt::kPurgeIdempotency, kPurgeIdempotencySql},
    Statement{stmt::kPurgeChanges, kPurgeChangesSql},
    Statement{stmt::kEstimates, kEstimatesSql},
};
constexpr std::array kListenerStatements = {
    Statement{stmt::kChangesSince, kChangesSinceSql},
    Statement{stmt::kLastSeq, kLastSeqSql},
};

}  // namespace

std::span<const Migration> Migrations() { return AllMigrations(); }
int LatestSchemaVersion() { return AllMigrations().back().version; }

std::span<const Statement> WriterStatements() { return kWriterStatements; }
std::span<const Statement> ReaderStatements() { return kReaderStatements; }
std::span<const Statement> ListenerStatements() { return kListenerStatements; }

}  // namespace counterd::storage::postgres
