// PqConnection: the seam between counterd and libpq. One object is one
// PGconn; its methods are the few PQ* calls the backend uses, one to one,
// with results copied out into value types. The real implementation
// (libpq_connection.cc) is a thin forwarder; tests substitute a fake to
// script partial writes, PQflush returning 1, sockets that change during
// PQconnectPoll and connection loss at every step.
//
// Thread-compatible: a connection is used by one thread at a time (the
// backend's I/O thread).
#ifndef COUNTERD_STORAGE_POSTGRES_PQ_CONNECTION_H_
#define COUNTERD_STORAGE_POSTGRES_PQ_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace counterd::storage::postgres {

// One query parameter: SQL NULL, or text, or (binary) raw bytes (bytea).
struct PgParam {
  std::optional<std::string> value;
  bool binary = false;

  static PgParam Text(std::string v) { return {std::move(v), false}; }
  static PgParam Bytes(std::string v) { return {std::move(v), true}; }
  static PgParam Null() { return {}; }
};

// What PQgetResult returned, copied out of the PGresult (text format).
struct PgResult {
  enum class Kind : std::uint8_t {
    kCommandOk,        // PGRES_COMMAND_OK
    kTuples,           // PGRES_TUPLES_OK
    kError,            // PGRES_FATAL_ERROR (and NONFATAL, BAD_RESPONSE)
    kPipelineSync,     // PGRES_PIPELINE_SYNC
    kPipelineAborted,  // PGRES_PIPELINE_ABORTED: skipped after an error
    kOther,            // anything else (COPY, empty query): unexpected here
  };
  Kind kind = Kind::kOther;
  std::string sqlstate;  // kError: the SQLSTATE ("40P01"), else ""
  std::string message;   // kError: the primary message
  std::size_t row_count = 0;
  std::size_t column_count = 0;
  std::vector<std::optional<std::string>> cells;  // row-major; nullopt = NULL

  bool ok() const { return kind == Kind::kCommandOk || kind == Kind::kTuples; }
  const std::optional<std::string>& Cell(std::size_t row,
                                         std::size_t column) const {
    return cells[row * column_count + column];
  }
};

struct PgNotification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
};

class PqConnection {
 public:
  // PostgresPollingStatusType.
  enum class Poll : std::uint8_t { kReading, kWriting, kOk, kFailed };

  virtual ~PqConnection() = default;  // PQfinish: closes the socket

  virtual Poll ConnectPoll() = 0;  // PQconnectPoll
  // PQsocket: may change after every ConnectPoll (libpq moves on to the next
  // host of a multi-host URL); -1 when there is none.
  virtual int Socket() const = 0;
  virtual std::string ErrorMessage() const = 0;  // PQerrorMessage
  virtual bool SetNonblocking() = 0;             // PQsetnonblocking(1) == 0
  virtual bool EnterPipelineMode() = 0;          // PQenterPipelineMode
  // PQsendPrepare / PQsendQueryPrepared / PQsendQueryParams (text results);
  // false when libpq refused (the connection is then unusable).
  virtual bool SendPrepare(const std::string& name, const std::string& sql) = 0;
  virtual bool SendQueryPrepared(const std::string& name,
                                 std::span<const PgParam> params) = 0;
  virtual bool SendQueryParams(const std::string& sql,
                               std::span<const PgParam> params) = 0;
  virtual bool PipelineSync() = 0;  // PQpipelineSync
  // PQflush: 0 all sent, 1 some left (wait until writable, flush again),
  // -1 failed.
  virtual int Flush() = 0;
  virtual bool ConsumeInput() = 0;  // PQconsumeInput
  virtual bool IsBusy() = 0;        // PQisBusy
  // PQgetResult: nullopt for its NULL (the end of one query's results).
  virtual std::optional<PgResult> GetResult() = 0;
  virtual std::optional<PgNotification> Notifies() = 0;  // PQnotifies
};

// Starts connections (PQconnectStartParams with expand_dbname, so
// |conninfo| is a URI or key=value string, multi-host URLs included).
class PqConnector {
 public:
  virtual ~PqConnector() = default;
  // Never nullptr: a connection that cannot start fails its first
  // ConnectPoll with the reason in ErrorMessage().
  virtual std::unique_ptr<PqConnection> Start(const std::string& conninfo) = 0;
};

std::unique_ptr<PqConnector> NewLibpqConnector();

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_PQ_CONNECTION_H_
