// BlockingSession: one PgConnection on a private io_context, run on the
// calling thread until each answer arrives. For start-up work (migrations,
// the durability checks) and `counterd migrate` only: never call it from
// an I/O thread. Thread-compatible.
#ifndef COUNTERD_STORAGE_POSTGRES_BLOCKING_SESSION_H_
#define COUNTERD_STORAGE_POSTGRES_BLOCKING_SESSION_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "counterd/core/result.h"
#include "pg_connection.h"

namespace counterd::storage::postgres {

// What a session learnt about the server when it connected.
struct ServerFacts {
  bool fsync = true;
  bool in_recovery = false;
  std::string synchronous_commit;  // as counterd set it for its sessions
  int server_version_num = 0;
};

// Runs kSessionSetup on |conn|'s answer: parses the facts.
Result<ServerFacts> ParseSessionSetup(const PgResult& result);
// kFailedPrecondition for a server counterd must not run against (fsync
// off); kUnavailable for a standby (not where writes go).
Status CheckServer(const ServerFacts& facts);

class BlockingSession {
 public:
  // |connector| must outlive the session.
  BlockingSession(PqConnector& connector, std::string conninfo);
  BlockingSession(const BlockingSession&) = delete;
  BlockingSession& operator=(const BlockingSession&) = delete;
  ~BlockingSession() = default;

  // Connects, retrying with capped backoff until |timeout| has passed, and
  // sets up the session (synchronous_commit). Returns the last connection
  // error (kUnavailable) if none succeeded in time, or (with |check_server|)
  // what CheckServer says.
  Result<ServerFacts> Connect(std::chrono::milliseconds timeout,
                              bool check_server = true);
  // Sends |queries| and waits for the reply (no longer than |timeout|: the
  // connection is then dropped and the reply is kUnavailable).
  PgConnection::Reply Run(const std::vector<PgConnection::Query>& queries,
                          std::chrono::milliseconds timeout);
  void Close();

 private:
  // Sets up the session just connected and checks the server: what Connect
  // answers, or nothing when a later attempt may succeed (the setup failed,
  // or the server is a standby), with |last| saying why this one did not.
  std::optional<Result<ServerFacts>> SetUpSession(
      std::chrono::steady_clock::time_point deadline, bool check_server,
      Status& last);
  // Runs the io_context until |done| or |deadline|; false on timeout.
  template <typename Pred>
  bool RunUntil(Pred done, std::chrono::steady_clock::time_point deadline);

  boost::asio::io_context ioc_;
  PgConnection conn_;
};

// What `counterd migrate` and start-up did to the schema.
struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
};

// Applies the migrations |session| is missing, under the advisory lock
// (kMigrationLockKey), each in its own transaction. kFailedPrecondition if
// the database has a newer schema than this binary knows (forward-only:
// upgrade counterd instead), kUnavailable / kInternal for failures.
Result<MigrationReport> ApplyMigrations(BlockingSession& session,
                                        std::chrono::milliseconds timeout);

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_BLOCKING_SESSION_H_
