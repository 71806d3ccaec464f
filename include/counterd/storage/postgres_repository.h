// The PostgreSQL backend of CounterRepository (see counter_repository.h for
// the promise): counterd runs as N stateless replicas in front of one
// database. Each replica group-commits the transactions that queue up
// while its previous commit is in flight into one database transaction,
// locks the rows in name order, decides with service::MutationRules on the
// locked rows and writes each touched row once. docs/postgres.md explains
// the schema, the guarantees and failover.
//
// Thread-safety: as CounterRepository (every method thread-safe). The
// backend runs libpq on its own thread; completions run there.
#ifndef COUNTERD_STORAGE_POSTGRES_REPOSITORY_H_
#define COUNTERD_STORAGE_POSTGRES_REPOSITORY_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "counterd/core/result.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::storage {

struct PostgresOptions {
  // libpq URI or key=value conninfo; multi-host URLs with
  // target_session_attrs=read-write follow a failover.
  std::string url;
  // Connections for reads and writes (>= 2): one commits, the others
  // read. One more connection LISTENs for other replicas' commits.
  std::size_t pool_size = 4;
  // Idempotency records older than this are gone (purged in batches).
  std::chrono::milliseconds idempotency_retention = std::chrono::hours(24);
  // Upper bound on the transactions of one group commit.
  std::size_t max_batch = 1024;
  // How long Open waits for the database at start-up.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
  // A connection (attempt) that does not come up in this time is dropped.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  // A connection whose oldest request has waited this long is dropped
  // (and the request answered kUnavailable): a server that stopped
  // answering without closing the connection.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  // Reconnect backoff: doubles from min to max.
  std::chrono::milliseconds reconnect_min = std::chrono::milliseconds(50);
  std::chrono::milliseconds reconnect_max = std::chrono::seconds(2);
  // Background purges (expired counters, old idempotency records, the
  // change log): how often, and how many rows per statement.
  std::chrono::milliseconds maintenance_interval = std::chrono::seconds(1);
  std::size_t purge_batch = 1000;
  // How long commits stay in the change log (watch catch-up).
  std::chrono::milliseconds change_retention = std::chrono::minutes(10);
  // A commit the database reports as a deadlock, serialization failure or
  // lost creation race is retried this many times.
  int max_retries = 16;
};

// Connects (waiting up to start_timeout), refuses a server with fsync off,
// applies the schema migrations under an advisory lock, and starts the
// backend's thread. kFailedPrecondition for a server or schema counterd
// must not use, kUnavailable if the database could not be reached.
Result<std::unique_ptr<CounterRepository>> OpenPostgresRepository(
    PostgresOptions options);

// `counterd migrate`: applies the migrations and reports the versions.
struct PostgresMigration {
  int from_version = 0;
  int to_version = 0;
};
Result<PostgresMigration> MigratePostgres(const std::string& url,
                                          std::chrono::milliseconds timeout);

// `counterd restore --backend postgres`: applies the migrations, then in one
// transaction (the tables locked against writers) loads |snapshot|: every
// counter and idempotency record, the row count, and a new commit sequence
// number (watchers resynchronise). A database holding counters or
// idempotency records is refused with kAlreadyExists unless |force|, which
// replaces them.
Result<SnapshotSummary> RestorePostgres(const std::string& url,
                                        const SnapshotContents& snapshot,
                                        bool force,
                                        std::chrono::milliseconds timeout);

// Counters the postgres backend has beyond RepositoryStats.
struct PostgresStats {
  std::uint64_t reconnects = 0;  // connections re-established after a loss
  std::uint64_t retries = 0;     // batches retried (deadlock, races)
  std::uint64_t unknown_outcomes = 0;  // commits lost with their outcome
};
// The postgres backend's own counters; zeros for another backend.
PostgresStats PostgresStatsOf(const CounterRepository& repository);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_POSTGRES_REPOSITORY_H_
