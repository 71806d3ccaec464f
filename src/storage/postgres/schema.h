// Schema: counterd's tables in PostgreSQL, as versioned, forward-only
// migrations compiled into the binary, and the statements the backend
// prepares on its connections. docs/postgres.md describes the tables.
#ifndef COUNTERD_STORAGE_POSTGRES_SCHEMA_H_
#define COUNTERD_STORAGE_POSTGRES_SCHEMA_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace counterd::storage::postgres {

struct Migration {
  int version;  // 1, 2, ...: applied in order, each once
  std::string_view description;
  // Run in one transaction, with the row recording the version.
  std::vector<std::string_view> statements;
};

// Every migration this binary knows, oldest first.
std::span<const Migration> Migrations();
int LatestSchemaVersion();

// The advisory lock key migrations run under (pg_advisory_lock), so that N
// replicas starting at once apply each migration once.
inline constexpr std::int64_t kMigrationLockKey =
    0x636f756e74657264;  // "counterd"
// The channel commits NOTIFY with their commit sequence number.
inline constexpr std::string_view kChangesChannel = "counterd_changes";

// A statement prepared on a connection: name and SQL.
struct Statement {
  std::string_view name;
  std::string_view sql;
};

// Committer (writer connection). Parameters are documented in schema.cc.
namespace stmt {
inline constexpr std::string_view kLock = "counterd_lock";
inline constexpr std::string_view kIdemExpire = "counterd_idem_expire";
inline constexpr std::string_view kIdemGet = "counterd_idem_get";
inline constexpr std::string_view kNow = "counterd_now";
inline constexpr std::string_view kUpdate = "counterd_update";
inline constexpr std::string_view kInsert = "counterd_insert";
inline constexpr std::string_view kDelete = "counterd_delete";
inline constexpr std::string_view kIdemPut = "counterd_idem_put";
inline constexpr std::string_view kPublish = "counterd_publish";
// Readers.
inline constexpr std::string_view kGet = "counterd_get";
inline constexpr std::string_view kList = "counterd_list";
inline constexpr std::string_view kListPrefix = "counterd_list_prefix";
inline constexpr std::string_view kPurgeExpired = "counterd_purge_expired";
inline constexpr std::string_view kPurgeIdempotency = "counterd_purge_idem";
inline constexpr std::string_view kPurgeChanges = "counterd_purge_changes";
inline constexpr std::string_view kEstimates = "counterd_estimates";
// Listener.
inline constexpr std::string_view kChangesSince = "counterd_changes_since";
inline constexpr std::string_view kLastSeq = "counterd_last_seq";
}  // namespace stmt

std::span<const Statement> WriterStatements();
std::span<const Statement> ReaderStatements();
std::span<const Statement> ListenerStatements();

// The first query on every connection: sets synchronous_commit for the
// session (on, or remote_apply if the server already asks for that) and
// returns (fsync, pg_is_in_recovery, synchronous_commit, server_version_num).
inline constexpr std::string_view kSessionSetup =
    "SELECT current_setting('fsync'), pg_is_in_recovery()::text, "
    "set_config('synchronous_commit', CASE WHEN "
    "current_setting('synchronous_commit') = 'remote_apply' THEN "
    "'remote_apply' ELSE 'on' END, false), "
    "current_setting('server_version_num')";

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_SCHEMA_H_
