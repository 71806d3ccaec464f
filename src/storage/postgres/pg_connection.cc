#include "pg_connection.h"

#include <string>
#include <utility>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include "counterd/platform/descriptor.h"

namespace counterd::storage::postgres {

namespace asio = boost::asio;
using boost::system::error_code;

PgConnection::Query PgConnection::Query::Sql(std::string sql,
                                             std::vector<PgParam> params) {
  return {Kind::kSql, std::move(sql), {}, std::move(params)};
}
PgConnection::Query PgConnection::Query::Prepared(std::string name,
                                                  std::vector<PgParam> params) {
  return {Kind::kPrepared, std::move(name), {}, std::move(params)};
}
PgConnection::Query PgConnection::Query::Prepare(std::string name,
                                                 std::string sql) {
  return {Kind::kPrepare, std::move(name), std::move(sql), {}};
}

bool IsRetryable(const PgResult& result) {
  return result.kind == PgResult::Kind::kError &&
         (result.sqlstate == "40P01" || result.sqlstate == "40001" ||
          result.sqlstate == "23505");
}

PgConnection::PgConnection(asio::io_context& ioc, PqConnector& connector,
                           std::string conninfo)
    : ioc_(ioc),
      connector_(connector),
      conninfo_(std::move(conninfo)),
      socket_(ioc) {}

PgConnection::~PgConnection() { CloseSocket(); }

void PgConnection::CloseSocket() {
  // Our duplicate first (deregistered and closed: the waits pending end
  // with operation_aborted), then libpq's own socket (PQfinish).
  if (socket_.is_open()) {
    error_code ignored;
    socket_.close(ignored);
  }
  reading_ = writing_ = flush_pending_ = false;
  pq_.reset();
}

void PgConnection::Connect(StatusHandler done) {
  if (state_ != State::kDown) {
    Fail(Status::Unavailable("postgres: reconnecting"), false);
  }
  ++generation_;
  connect_done_ = std::move(done);
  state_ = State::kConnecting;
  pq_ = connector_.Start(conninfo_);
  // libpq: just after PQconnectStart, behave as if PQconnectPoll had
  // returned PGRES_POLLING_WRITING.
  WaitToConnect(PqConnection::Poll::kWriting);
}

Status PgConnection::AdoptSocket() {
  if (socket_.is_open()) {
    error_code ignored;
    socket_.close(ignored);
  }
  const int fd = pq_->Socket();
  if (fd < 0) return Status::NotFound("postgres: no socket");
  Result<int> own = platform::DuplicateDescriptor(fd);
  if (!own) return Status::Unavailable("postgres: " + own.error().message());
  error_code ec;
  socket_.assign(*own, ec);
  if (ec) {
    platform::CloseDescriptor(*own);
    return Status::Unavailable("postgres: registering the socket: " +
                               ec.message());
  }
  return Status::Ok();
}

void PgConnection::WaitToConnect(PqConnection::Poll want) {
  if (Status adopted = AdoptSocket(); !adopted.ok()) {
    if (adopted.code() != StatusCode::kNotFound) return Fail(adopted, false);
    // No socket: libpq failed before it could open one (a bad conninfo,
    // no host reachable); PQconnectPoll reports why.
    asio::post(ioc_, [this, g = generation_] { OnConnectReady(g); });
    return;
  }
  const auto wait = want == PqConnection::Poll::kReading
                        ? asio::posix::stream_descriptor::wait_read
                        : asio::posix::stream_descriptor::wait_write;
  socket_.async_wait(wait, [this, g = generation_](const error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    OnConnectReady(g);
  });
}

void PgConnection::OnConnectReady(std::uint64_t generation) {
  if (generation != generation_ || state_ != State::kConnecting) return;
  const PqConnection::Poll poll = pq_->ConnectPoll();
  switch (poll) {
    case PqConnection::Poll::kReading:
    case PqConnection::Poll::kWriting:
      WaitToConnect(poll);
      return;
    case PqConnection::Poll::kFailed:
      Fail(Status::Unavailable("postgres: connect: " + pq_->ErrorMessage()),
           false);
      return;
    case PqConnection::Poll::kOk:
      break;
  }
  // Taking the socket into the reactor fails with our error, not libpq's:
  // report that one.
  if (Status adopted = AdoptSocket(); !adopted.ok()) {
    Fail(Status::Unavailable(adopted.message()), false);
    return;
  }
  if (!pq_->SetNonblocking() || !pq_->EnterPipelineMode()) {
    Fail(Status::Unavailable("postgres: set up connection: " +
                             pq_->ErrorMessage()),
         false);
    return;
  }
  state_ = State::kReady;
  StartRead();  // from now on a read wait is always queued: loss shows
  StatusHandler done = std::move(connect_done_);
  connect_done_ = nullptr;
  if (done) done(Status::Ok());
}

void PgConnection::Submit(const std::vector<Query>& queries,
                          ReplyHandler done) {
  if (state_ != State::kReady) {
    Reply reply;
    reply.status = Status::Unavailable("postgres: not connected");
    done(std::move(reply));
    return;
  }
  Pending p;
  p.queries = queries.size();
  p.reply.sent = true;
  p.reply.results.reserve(queries.size());
  p.done = std::move(done);
  p.sent_at = std::chrono::steady_clock::now();
  pending_.push_back(std::move(p));
  for (const Query& q : queries) {
    bool ok = false;
    switch (q.kind) {
      case Query::Kind::kSql:
        ok = pq_->SendQueryParams(q.text, q.params);
        break;
      case Query::Kind::kPrepared:
        ok = pq_->SendQueryPrepared(q.text, q.params);
        break;
      case Query::Kind::kPrepare:
        ok = pq_->SendPrepare(q.text, q.sql);
        break;
    }
    if (!ok) {
      Fail(Status::Unavailable("postgres: send: " + pq_->ErrorMessage()), true);
      return;
    }
  }
  if (!pq_->PipelineSync()) {
    Fail(Status::Unavailable("postgres: sync: " + pq_->ErrorMessage()), true);
    return;
  }
  Flush();
}

void PgConnection::Flush() {
  const int r = pq_->Flush();
  if (r < 0) {
    Fail(Status::Unavailable("postgres: flush: " + pq_->ErrorMessage()), true);
    return;
  }
  flush_pending_ = r == 1;
  if (flush_pending_) StartWrite();
}

void PgConnection::StartWrite() {
  if (writing_) return;
  writing_ = true;
  socket_.async_wait(
      asio::posix::stream_descriptor::wait_write,
      [this, g = generation_](const error_code& ec) {
        if (ec == asio::error::operation_aborted || g != generation_) return;
        writing_ = false;
        OnWritable(g);
      });
}

void PgConnection::OnWritable(std::uint64_t generation) {
  if (generation != generation_ || !flush_pending_) return;
  Flush();
}

void PgConnection::StartRead() {
  if (reading_) return;
  reading_ = true;
  socket_.async_wait(
      asio::posix::stream_descriptor::wait_read,
      [this, g = generation_](const error_code& ec) {
        if (ec == asio::error::operation_aborted || g != generation_) return;
        reading_ = false;
        OnReadable(g);
      });
}

void PgConnection::OnReadable(std::uint64_t generation) {
  if (generation != generation_ || state_ != State::kReady) return;
  if (!pq_->ConsumeInput()) {
    Fail(Status::Unavailable("postgres: connection lost: " +
                             pq_->ErrorMessage()),
         true);
    return;
  }
  DrainNotifications();
  if (generation != generation_) return;
  DrainResults();
  if (generation != generation_) return;
  if (flush_pending_) {
    Flush();
    if (generation != generation_) return;
  }
  StartRead();
}

void PgConnection::DrainNotifications() {
  const std::uint64_t generation = generation_;
  while (generation == generation_ && pq_ != nullptr) {
    std::optional<PgNotification> n = pq_->Notifies();
    if (!n) return;
    if (on_notification_) on_notification_(*n);
  }
}

void PgConnection::DrainResults() {
  const std::uint64_t generation = generation_;
  while (generation == generation_ && !pending_.empty() && !pq_->IsBusy()) {
    Pending& p = pending_.front();
    std::optional<PgResult> r = pq_->GetResult();
    if (p.done_queries < p.queries) {
      if (r && r->kind == PgResult::Kind::kPipelineSync) {
        Fail(Status::Unavailable("postgres: protocol: sync before results"),
             true);
        return;
      }
      if (r) {
        p.current = std::move(*r);  // a query ends with NULL; keep the last
        continue;
      }
      if (!p.current) {
        // NULL without a result: nothing more parsed yet.
        return;
      }
      p.reply.results.push_back(std::move(*p.current));
      p.current.reset();
      ++p.done_queries;
      continue;
    }
    if (!r) return;  // the sync point has not arrived yet
    if (r->kind != PgResult::Kind::kPipelineSync) {
      Fail(Status::Unavailable("postgres: protocol: result after the last "
                               "query"),
           true);
      return;
    }
    Pending done = std::move(pending_.front());
    pending_.pop_front();
    done.done(std::move(done.reply));
  }
  if (generation == generation_) DrainNotifications();
}

void PgConnection::Disconnect(const Status& why) { Fail(why, false); }

void PgConnection::Fail(const Status& why, bool call_lost_handler) {
  const bool was_ready = state_ == State::kReady;
  ++generation_;
  state_ = State::kDown;
  CloseSocket();
  std::deque<Pending> failed = std::move(pending_);
  pending_.clear();
  StatusHandler connect_done = std::move(connect_done_);
  connect_done_ = nullptr;
  const std::uint64_t generation = generation_;
  for (Pending& p : failed) {
    p.reply.status = why;
    p.reply.results.clear();
    p.done(std::move(p.reply));
  }
  if (connect_done) connect_done(why);
  if (call_lost_handler && was_ready && generation == generation_ && on_lost_) {
    on_lost_(why);
  }
}

}  // namespace counterd::storage::postgres
