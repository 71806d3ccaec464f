// The real PqConnection: forwards to libpq. The only file that includes
// <libpq-fe.h>.
//
// libpq is loaded when the postgres backend first needs it (dlopen), not
// linked: a linked libpq maps and initialises its dependencies (Kerberos,
// LDAP, GnuTLS, p11-kit) in every counterd process, about 5.5 MiB of
// resident memory for a file-backend server that never talks to
// PostgreSQL. <libpq-fe.h> still gives the types, constants and the
// function signatures the table below is checked against.
#include <dlfcn.h>
#include <libpq-fe.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pq_connection.h"

namespace counterd::storage::postgres {
namespace {

// Every libpq function counterd calls.
// clang-format off
#define COUNTERD_LIBPQ_FUNCTIONS(X) \
  X(PQconnectStartParams) \
  X(PQconnectPoll) \
  X(PQstatus) \
  X(PQsocket) \
  X(PQerrorMessage) \
  X(PQfinish) \
  X(PQsetNoticeProcessor) \
  X(PQsetnonblocking) \
  X(PQenterPipelineMode) \
  X(PQsendPrepare) \
  X(PQsendQueryPrepared) \
  X(PQsendQueryParams) \
  X(PQpipelineSync) \
  X(PQflush) \
  X(PQconsumeInput) \
  X(PQisBusy) \
  X(PQgetResult) \
  X(PQnotifies) \
  X(PQfreemem) \
  X(PQclear) \
  X(PQresultStatus) \
  X(PQresultErrorField) \
  X(PQresultErrorMessage) \
  X(PQntuples) \
  X(PQnfields) \
  X(PQgetisnull) \
  X(PQgetvalue) \
  X(PQgetlength)
// clang-format on

// libpq's functions, resolved from the shared library; |error| says why
// not when it could not be loaded.
struct LibPq {
// NOLINTNEXTLINE(bugprone-macro-parentheses): |name| is a declarator.
#define COUNTERD_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  COUNTERD_LIBPQ_FUNCTIONS(COUNTERD_LIBPQ_MEMBER)
#undef COUNTERD_LIBPQ_MEMBER
  std::string error;
};

LibPq Load() {
  LibPq lib;
  // libpq5's soname (Debian's libpq5 package, which libpq-dev depends on).
  // Never closed: libpq keeps process-wide state once initialised.
  void* handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    // Not thread-safe in general; here it runs once, inside Pq()'s static
    // initialisation, which C++ runs on one thread.
    const char* why = dlerror();  // NOLINT(concurrency-mt-unsafe)
    lib.error = std::string("cannot load libpq (install libpq5): ") +
                (why != nullptr ? why : "dlopen failed");
    return lib;
  }
#define COUNTERD_LIBPQ_RESOLVE(name)                                      \
  lib.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));   \
  if (lib.name == nullptr && lib.error.empty()) {                         \
    lib.error = "libpq.so.5 has no " #name " (libpq 14 or later needed)"; \
  }
  COUNTERD_LIBPQ_FUNCTIONS(COUNTERD_LIBPQ_RESOLVE)
#undef COUNTERD_LIBPQ_RESOLVE
  return lib;
}

// Loaded once, on the first connection (thread-safe static).
const LibPq& Pq() {
  static const LibPq kLibPq = Load();
  return kLibPq;
}

PgResult CopyResult(const PGresult* res) {
  PgResult out;
  switch (Pq().PQresultStatus(res)) {
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
    const char* state = Pq().PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char* primary = Pq().PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    out.sqlstate = state != nullptr ? state : "";
    out.message = primary != nullptr ? primary : Pq().PQresultErrorMessage(res);
    return out;
  }
  if (out.kind != PgResult::Kind::kTuples) return out;
  const int rows = Pq().PQntuples(res);
  const int cols = Pq().PQnfields(res);
  out.row_count = static_cast<std::size_t>(rows);
  out.column_count = static_cast<std::size_t>(cols);
  out.cells.reserve(out.row_count * out.column_count);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      if (Pq().PQgetisnull(res, r, c) != 0) {
        out.cells.emplace_back(std::nullopt);
      } else {
        out.cells.emplace_back(
            std::string(Pq().PQgetvalue(res, r, c),
                        static_cast<std::size_t>(Pq().PQgetlength(res, r, c))));
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
    Pq().PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~LibpqConnection() override { Pq().PQfinish(conn_); }
  LibpqConnection(const LibpqConnection&) = delete;
  LibpqConnection& operator=(const LibpqConnection&) = delete;

  Poll ConnectPoll() override {
    if (Pq().PQstatus(conn_) == CONNECTION_BAD) return Poll::kFailed;
    switch (Pq().PQconnectPoll(conn_)) {
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
  int Socket() const override { return Pq().PQsocket(conn_); }
  std::string ErrorMessage() const override {
    std::string m = Pq().PQerrorMessage(conn_);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }
  bool SetNonblocking() override {
    return Pq().PQsetnonblocking(conn_, 1) == 0;
  }
  bool EnterPipelineMode() override {
    return Pq().PQenterPipelineMode(conn_) == 1;
  }
  bool SendPrepare(const std::string& name, const std::string& sql) override {
    return Pq().PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr) ==
           1;
  }
  bool SendQueryPrepared(const std::string& name,
                         std::span<const PgParam> params) override {
    const ParamArrays a(params);
    return Pq().PQsendQueryPrepared(conn_, name.c_str(), a.count(),
                                    a.values.data(), a.lengths.data(),
                                    a.formats.data(), 0) == 1;
  }
  bool SendQueryParams(const std::string& sql,
                       std::span<const PgParam> params) override {
    const ParamArrays a(params);
    return Pq().PQsendQueryParams(conn_, sql.c_str(), a.count(), nullptr,
                                  a.values.data(), a.lengths.data(),
                                  a.formats.data(), 0) == 1;
  }
  bool PipelineSync() override { return Pq().PQpipelineSync(conn_) == 1; }
  int Flush() override { return Pq().PQflush(conn_); }
  bool ConsumeInput() override { return Pq().PQconsumeInput(conn_) == 1; }
  bool IsBusy() override { return Pq().PQisBusy(conn_) == 1; }
  std::optional<PgResult> GetResult() override {
    PGresult* res = Pq().PQgetResult(conn_);
    if (res == nullptr) return std::nullopt;
    PgResult out = CopyResult(res);
    Pq().PQclear(res);
    return out;
  }
  std::optional<PgNotification> Notifies() override {
    PGnotify* n = Pq().PQnotifies(conn_);
    if (n == nullptr) return std::nullopt;
    PgNotification out{n->relname != nullptr ? n->relname : "",
                       n->extra != nullptr ? n->extra : "", n->be_pid};
    Pq().PQfreemem(n);
    return out;
  }

 private:
  PGconn* const conn_;
};

// A connection when libpq could not be loaded: its first ConnectPoll fails
// with the reason, so the backend reports it as it reports a server it
// cannot reach (503 store-unavailable, /readyz 503, the reason in the log,
// retries with backoff) and nothing else is ever called.
class UnloadedConnection final : public PqConnection {
 public:
  explicit UnloadedConnection(std::string why) : why_(std::move(why)) {}
  Poll ConnectPoll() override { return Poll::kFailed; }
  int Socket() const override { return -1; }
  std::string ErrorMessage() const override { return why_; }
  bool SetNonblocking() override { return false; }
  bool EnterPipelineMode() override { return false; }
  bool SendPrepare(const std::string& /*name*/,
                   const std::string& /*sql*/) override {
    return false;
  }
  bool SendQueryPrepared(const std::string& /*name*/,
                         std::span<const PgParam> /*params*/) override {
    return false;
  }
  bool SendQueryParams(const std::string& /*sql*/,
                       std::span<const PgParam> /*params*/) override {
    return false;
  }
  bool PipelineSync() override { return false; }
  int Flush() override { return -1; }
  bool ConsumeInput() override { return false; }
  bool IsBusy() override { return false; }
  std::optional<PgResult> GetResult() override { return std::nullopt; }
  std::optional<PgNotification> Notifies() override { return std::nullopt; }

 private:
  const std::string why_;
};

class LibpqConnector final : public PqConnector {
 public:
  std::unique_ptr<PqConnection> Start(const std::string& conninfo) override {
    if (!Pq().error.empty()) {
      return std::make_unique<UnloadedConnection>(Pq().error);
    }
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
    PGconn* conn = Pq().PQconnectStartParams(keywords, values, 1);
    if (conn == nullptr) throw std::bad_alloc();  // libpq's only NULL case
    return std::make_unique<LibpqConnection>(conn);
  }
};

}  // namespace

std::unique_ptr<PqConnector> NewLibpqConnector() {
  return std::make_unique<LibpqConnector>();
}

}  // namespace counterd::storage::postgres
