// PgConnection: one PostgreSQL connection driven by an Asio io_context —
// libpq in non-blocking pipeline mode, waiting for the socket libpq names
// (PQsocket) with async_wait, so no thread ever blocks on the database.
// Requests are pipelined: each is a list of queries closed by a sync point,
// sent at once and answered in order, so a request costs one round trip
// however many statements it holds and several requests can be in flight.
//
// A lost connection (at any step: connecting, sending, flushing, reading)
// fails every request in flight with kUnavailable, says whether each may
// have reached the server (Reply::sent), and calls the lost handler once.
// Reconnecting is the owner's decision (Connect again).
//
// Thread-compatible: every method and every callback runs on the thread
// that runs |ioc| (one thread). Callbacks may call back into the connection.
#ifndef COUNTERD_STORAGE_POSTGRES_PG_CONNECTION_H_
#define COUNTERD_STORAGE_POSTGRES_PG_CONNECTION_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "counterd/core/status.h"
#include "pq_connection.h"

namespace counterd::storage::postgres {

class PgConnection {
 public:
  struct Query {
    enum class Kind : std::uint8_t {
      kSql,       // PQsendQueryParams(text)
      kPrepared,  // PQsendQueryPrepared(text = statement name)
      kPrepare,   // PQsendPrepare(text = statement name, sql)
    };
    Kind kind = Kind::kSql;
    std::string text;
    std::string sql;
    std::vector<PgParam> params;

    static Query Sql(std::string sql, std::vector<PgParam> params = {});
    static Query Prepared(std::string name, std::vector<PgParam> params = {});
    static Query Prepare(std::string name, std::string sql);
  };

  struct Reply {
    // OK, or kUnavailable when the connection failed (or was not up)
    // before every result arrived.
    Status status;
    // The request was handed to libpq: with a failed status, it may or may
    // not have run on the server (what makes a lost COMMIT's outcome
    // unknown).
    bool sent = false;
    // With an OK status: one result per query, in order. A query's SQL
    // error is a result (kError), and the queries after it up to the sync
    // point are kPipelineAborted.
    std::vector<PgResult> results;
  };
  using ReplyHandler = std::function<void(Reply)>;
  using StatusHandler = std::function<void(const Status&)>;
  using NotificationHandler = std::function<void(const PgNotification&)>;

  // |ioc| and |connector| must outlive this connection, and the connection
  // must outlive every handler it has queued on |ioc|: destroy it only once
  // |ioc| runs no more (stopped, or after its run() returned).
  PgConnection(boost::asio::io_context& ioc, PqConnector& connector,
               std::string conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Opens the connection (dropping any current one). |done| gets OK once it
  // is up, in non-blocking pipeline mode, or kUnavailable with libpq's
  // reason.
  void Connect(StatusHandler done);
  // Sends |queries| followed by a sync point. |done| runs once with the
  // reply; right away (before Submit returns) if the connection is not up.
  void Submit(const std::vector<Query>& queries, ReplyHandler done);
  // Closes the connection; requests in flight fail with |why| (the lost
  // handler is not called for a disconnect asked for).
  void Disconnect(const Status& why);

  bool connected() const { return state_ == State::kReady; }
  std::size_t in_flight() const { return pending_.size(); }
  // When the oldest request in flight was sent; nullopt if none is.
  std::optional<std::chrono::steady_clock::time_point> OldestInFlight() const {
    if (pending_.empty()) return std::nullopt;
    return pending_.front().sent_at;
  }

  // Called with every NOTIFY received (LISTEN is the caller's query).
  void SetNotificationHandler(NotificationHandler handler) {
    on_notification_ = std::move(handler);
  }
  // Called once when an established connection is lost, after the
  // requests in flight have been failed.
  void SetLostHandler(StatusHandler handler) { on_lost_ = std::move(handler); }

 private:
  enum class State : std::uint8_t { kDown, kConnecting, kReady };
  struct Pending {
    std::size_t queries = 0;
    std::size_t done_queries = 0;
    std::optional<PgResult> current;  // the running query's result so far
    Reply reply;
    ReplyHandler done;
    std::chrono::steady_clock::time_point sent_at;
  };

  // Connecting: waits as PQconnectPoll asked, on the socket it names now.
  void WaitToConnect(PqConnection::Poll want);
  void OnConnectReady(std::uint64_t generation);
  // (Re-)registers PQsocket with the reactor. Done after every
  // PQconnectPoll, even when the number is unchanged: libpq may have closed
  // the socket and opened another under the same number (the next host of
  // a multi-host URL), which the reactor would not know of.
  // The reactor gets a duplicate of libpq's descriptor, which only this
  // class closes: libpq closes its own number as soon as it sees the
  // connection drop (inside PQconsumeInput or PQconnectPoll), before this
  // class hears of it, and by then another thread may have opened a file
  // under that number, which deregistering it would touch.
  // kNotFound: libpq has no socket (yet); kUnavailable: no descriptor left.
  Status AdoptSocket();

  void StartRead();
  void OnReadable(std::uint64_t generation);
  void StartWrite();
  void OnWritable(std::uint64_t generation);
  // PQflush; on 1, waits until writable (or readable: OnReadable consumes
  // input and flushes again, as libpq's docs ask) and flushes again.
  void Flush();
  // Takes every result libpq has parsed and completes requests.
  void DrainResults();
  void DrainNotifications();

  // Drops the connection and fails what is in flight with |why|.
  void Fail(const Status& why, bool call_lost_handler);
  void CloseSocket();

  boost::asio::io_context& ioc_;
  PqConnector& connector_;
  const std::string conninfo_;
  std::unique_ptr<PqConnection> pq_;
  boost::asio::posix::stream_descriptor socket_;
  State state_ = State::kDown;
  // Bumped whenever the connection is dropped: handlers queued before then
  // find a different number and do nothing.
  std::uint64_t generation_ = 0;
  bool reading_ = false;        // a read wait is queued
  bool writing_ = false;        // a write wait is queued
  bool flush_pending_ = false;  // PQflush returned 1
  StatusHandler connect_done_;
  std::deque<Pending> pending_;
  NotificationHandler on_notification_;
  StatusHandler on_lost_;
};

// True if |result| failed with an error that retrying the whole transaction
// may cure: deadlock_detected (40P01), serialization_failure (40001), or
// unique_violation (23505: a concurrent creator won the race).
bool IsRetryable(const PgResult& result);

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_STORAGE_POSTGRES_PG_CONNECTION_H_
