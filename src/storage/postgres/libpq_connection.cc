// The real PqConnection: forwards to libpq. The only file that includes
// <libpq-fe.h>.
#include <libpq-fe.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pq_connection.h"

namespace counterd::storage::postgres {
namespace {

PgResult CopyResult(const PGresult* res) {
  PgResult out;
  switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
      out.kind = PgResult::Kind::kCommandOk;
      break;
    case PGRES_TUPLES_OK:
      out.kind = PgResult::Kind::kTuples;
      break;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_BAD_RESPONSE:
      out.kind = PgResult::Kind::kError;
      break;
    case PGRES_PIPELINE_SYNC:
      out.kind = PgResult::Kind::kPipelineSync;
      break;
    case PGRES_PIPELINE_ABORTED:
      out.kind = PgResult::Kind::kPipelineAborted;
      break;
    default:
      out.kind = PgResult::Kind::kOther;
      break;
  }
  if (out.kind == PgResult::Kind::kError) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    out.sqlstate = state != nullptr ? state : "";
    out.message = primary != nullptr ? primary : PQresultErrorMessage(res);
    return out;
  }
  if (out.kind != PgResult::Kind::kTuples) return out;
  const int rows = PQntuples(res);
  const int cols = PQnfields(res);
  out.row_count = static_cast<std::size_t>(rows);
  out.column_count = static_cast<std::size_t>(cols);
  out.cells.reserve(out.row_count * out.column_count);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res, r, c) != 0) {
        out.cells.emplace_back(std::nullopt);
      } else {
        out.cells.emplace_back(
            std::string(PQgetvalue(res, r, c),
                        static_cast<std::size_t>(PQgetlength(res, r, c))));
      }
    }
  }
  return out;
}

// The C arrays PQsendQuery* take, pointing into |params| (which must
// outlive them).
struct ParamArrays {
  explicit ParamArrays(std::span<const PgParam> params) {
    values.reserve(params.size());
    lengths.reserve(params.size());
    formats.reserve(params.size());
    for (const PgParam& p : params) {
      values.push_back(p.value ? p.value->data() : nullptr);
      lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
      formats.push_back(p.binary ? 1 : 0);
    }
  }
  int count() const { return static_cast<int>(values.size()); }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

class LibpqConnection final : public PqConnection {
 public:
  explicit LibpqConnection(PGconn* conn) : conn_(conn) {
    // Server notices ("relation ... already exists, skipping") are not for
    // counterd's log, which libpq's default would write them to (stderr).
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~LibpqConnection() override { PQfinish(conn_); }
  LibpqConnection(const LibpqConnection&) = delete;
  LibpqConnection& operator=(const LibpqConnection&) = delete;

  Poll ConnectPoll() override {
    if (PQstatus(conn_) == CONNECTION_BAD) return Poll::kFailed;
    switch (PQconnectPoll(conn_)) {
      case PGRES_POLLING_READING:
        return Poll::kReading;
      case PGRES_POLLING_WRITING:
        return Poll::kWriting;
      case PGRES_POLLING_OK:
        return Poll::kOk;
      default:
        return Poll::kFailed;
    }
  }
  int Socket() const override { return PQsocket(conn_); }
  std::string ErrorMessage() const override {
    std::string m = PQerrorMessage(conn_);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }
  bool SetNonblocking() override { return PQsetnonblocking(conn_, 1) == 0; }
  bool EnterPipelineMode() override { return PQenterPipelineMode(conn_) == 1; }
  bool SendPrepare(const std::string& name, const std::string& sql) override {
    return PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr) == 1;
  }
  bool SendQueryPrepared(const std::string& name,
                         std::span<const PgParam> params) override {
    const ParamArrays a(params);
    return PQsendQueryPrepared(conn_, name.c_str(), a.count(), a.values.data(),
                               a.lengths.data(), a.formats.data(), 0) == 1;
  }
  bool SendQueryParams(const std::string& sql,
                       std::span<const PgParam> params) override {
    const ParamArrays a(params);
    return PQsendQueryParams(conn_, sql.c_str(), a.count(), nullptr,
                             a.values.data(), a.lengths.data(),
                             a.formats.data(), 0) == 1;
  }
  bool PipelineSync() override { return PQpipelineSync(conn_) == 1; }
  int Flush() override { return PQflush(conn_); }
  bool ConsumeInput() override { return PQconsumeInput(conn_) == 1; }
  bool IsBusy() override { return PQisBusy(conn_) == 1; }
  std::optional<PgResult> GetResult() override {
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) return std::nullopt;
    PgResult out = CopyResult(res);
    PQclear(res);
    return out;
  }
  std::optional<PgNotification> Notifies() override {
    PGnotify* n = PQnotifies(conn_);
    if (n == nullptr) return std::nullopt;
    PgNotification out{n->relname != nullptr ? n->relname : "",
                       n->extra != nullptr ? n->extra : "", n->be_pid};
    PQfreemem(n);
    return out;
  }

 private:
  PGconn* const conn_;
};

class LibpqConnector final : public PqConnector {
 public:
  std::unique_ptr<PqConnection> Start(const std::string& conninfo) override {
    // Defaults first: libpq takes the last value of a repeated keyword, so
    // the URL (expanded from dbname, last) may override them. Keepalives
    // and tcp_user_timeout make a vanished server (a node lost without a
    // RST) show as a lost connection in seconds, not after the kernel's
    // retransmission limit (about 15 minutes).
    const char* keywords[] = {"keepalives_idle",  "keepalives_interval",
                              "keepalives_count", "tcp_user_timeout",
                              "dbname",           nullptr};
    const char* values[] = {"10", "3", "3", "20000", conninfo.c_str(), nullptr};
    // expand_dbname = 1: |conninfo| may be a URI or a key=value string.
    PGconn* conn = PQconnectStartParams(keywords, values, 1);
    if (conn == nullptr) throw std::bad_alloc();  // libpq's only NULL case
    return std::make_unique<LibpqConnection>(conn);
  }
};

}  // namespace

std::unique_ptr<PqConnector> NewLibpqConnector() {
  return std::make_unique<LibpqConnector>();
}

}  // namespace counterd::storage::postgres
