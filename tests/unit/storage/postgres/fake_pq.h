// FakePq: a scripted PqConnection for unit tests of the libpq/Asio adapter.
// Its "socket" is one end of a socketpair the test controls: the test makes
// it readable by writing to the other end (Peer()), and not writable by
// filling it, so the adapter's waits are real reactor waits. Results become
// available when ConsumeInput runs after data "arrived" (Arrive()).
// Thread-compatible; single-threaded tests only.
#ifndef COUNTERD_TESTS_UNIT_STORAGE_POSTGRES_FAKE_PQ_H_
#define COUNTERD_TESTS_UNIT_STORAGE_POSTGRES_FAKE_PQ_H_

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pq_connection.h"

namespace counterd::storage::postgres {

// A socketpair: |ours| is what the fake hands out as PQsocket, |peer| the
// test's end.
class SocketPair {
 public:
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::abort();
    ours_ = fds[0];
    peer_ = fds[1];
    ::fcntl(ours_, F_SETFL, O_NONBLOCK);
    ::fcntl(peer_, F_SETFL, O_NONBLOCK);
  }
  ~SocketPair() {
    if (ours_ >= 0) ::close(ours_);
    if (peer_ >= 0) ::close(peer_);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;

  int ours() const { return ours_; }
  // Makes |ours| readable.
  void Poke() const {
    const char c = 'x';
    (void)!::write(peer_, &c, 1);
  }
  // Reads what Poke() wrote (as libpq's read would).
  void DrainOurs() const {
    char buf[256];
    while (::read(ours_, buf, sizeof buf) > 0) {
    }
  }
  // Fills |ours|' send buffer: it is then not writable until DrainPeer().
  void FillOurs() const {
    std::string chunk(4096, 'f');
    while (::write(ours_, chunk.data(), chunk.size()) > 0) {
    }
  }
  void DrainPeer() const {
    char buf[65536];
    while (::read(peer_, buf, sizeof buf) > 0) {
    }
  }
  // EOF on |ours| (the server went away).
  void ClosePeer() {
    ::close(peer_);
    peer_ = -1;
  }

 private:
  int ours_ = -1;
  int peer_ = -1;
};

class FakePq final : public PqConnection {
 public:
  struct Log {
    std::vector<std::string> calls;  // "send:SELECT 1", "sync", "flush", ...
    bool destroyed = false;
  };

  FakePq(std::shared_ptr<Log> log, const SocketPair* socket)
      : log_(std::move(log)), socket_(socket) {}
  ~FakePq() override { log_->destroyed = true; }

  // -- script ---------------------------------------------------------------
  // ConnectPoll answers, in order, each with the socket to name after it.
  void ScriptPoll(Poll answer, const SocketPair* socket_after) {
    polls_.push_back({answer, socket_after});
  }
  void ScriptFlush(int answer) { flushes_.push_back(answer); }
  void FailSendAt(int n) { fail_send_at_ = n; }
  void FailSync() { fail_sync_ = true; }
  void FailConsume() { fail_consume_ = true; }
  void FailNonblocking() { fail_nonblocking_ = true; }
  // Results (nullopt: libpq's NULL) that ConsumeInput makes available.
  void Arrive(std::optional<PgResult> r) { incoming_.push_back(std::move(r)); }
  void ArriveNotification(PgNotification n) {
    notes_in_.push_back(std::move(n));
  }
  void set_error(std::string e) { error_ = std::move(e); }

  // -- PqConnection -----------------------------------------------------------
  Poll ConnectPoll() override {
    log_->calls.push_back("poll");
    if (polls_.empty()) return Poll::kFailed;
    auto [answer, next] = polls_.front();
    polls_.pop_front();
    socket_ = next;
    return answer;
  }
  int Socket() const override { return socket_ ? socket_->ours() : -1; }
  std::string ErrorMessage() const override { return error_; }
  bool SetNonblocking() override { return !fail_nonblocking_; }
  bool EnterPipelineMode() override { return true; }
  bool SendPrepare(const std::string& name, const std::string&) override {
    return Sent("prepare:" + name);
  }
  bool SendQueryPrepared(const std::string& name,
                         std::span<const PgParam>) override {
    return Sent("exec:" + name);
  }
  bool SendQueryParams(const std::string& sql,
                       std::span<const PgParam>) override {
    return Sent("send:" + sql);
  }
  bool PipelineSync() override {
    log_->calls.push_back("sync");
    return !fail_sync_;
  }
  int Flush() override {
    log_->calls.push_back("flush");
    if (flushes_.empty()) return 0;
    const int r = flushes_.front();
    flushes_.pop_front();
    return r;
  }
  bool ConsumeInput() override {
    log_->calls.push_back("consume");
    if (socket_) socket_->DrainOurs();
    if (fail_consume_) return false;
    for (auto& r : incoming_) available_.push_back(std::move(r));
    incoming_.clear();
    for (auto& n : notes_in_) notes_.push_back(std::move(n));
    notes_in_.clear();
    return true;
  }
  bool IsBusy() override { return available_.empty(); }
  std::optional<PgResult> GetResult() override {
    if (available_.empty()) return std::nullopt;
    auto r = std::move(available_.front());
    available_.pop_front();
    return r;
  }
  std::optional<PgNotification> Notifies() override {
    if (notes_.empty()) return std::nullopt;
    auto n = std::move(notes_.front());
    notes_.pop_front();
    return n;
  }

 private:
  bool Sent(std::string what) {
    log_->calls.push_back(std::move(what));
    return ++sends_ != fail_send_at_;
  }

  std::shared_ptr<Log> log_;
  const SocketPair* socket_;
  std::deque<std::pair<Poll, const SocketPair*>> polls_;
  std::deque<int> flushes_;
  int sends_ = 0;
  int fail_send_at_ = -1;
  bool fail_sync_ = false;
  bool fail_consume_ = false;
  bool fail_nonblocking_ = false;
  std::string error_ = "fake failure";
  std::deque<std::optional<PgResult>> incoming_;
  std::deque<std::optional<PgResult>> available_;
  std::deque<PgNotification> notes_in_;
  std::deque<PgNotification> notes_;
};

// Hands out prepared fakes, one per Start, in order.
class FakeConnector final : public PqConnector {
 public:
  void Add(std::unique_ptr<FakePq> fake) { fakes_.push_back(std::move(fake)); }
  std::unique_ptr<PqConnection> Start(const std::string& conninfo) override {
    conninfos_.push_back(conninfo);
    if (fakes_.empty()) std::abort();
    auto f = std::move(fakes_.front());
    fakes_.pop_front();
    return f;
  }
  const std::vector<std::string>& conninfos() const { return conninfos_; }

 private:
  std::deque<std::unique_ptr<FakePq>> fakes_;
  std::vector<std::string> conninfos_;
};

inline PgResult TuplesResult(std::vector<std::optional<std::string>> row) {
  PgResult r;
  r.kind = PgResult::Kind::kTuples;
  r.row_count = 1;
  r.column_count = row.size();
  r.cells = std::move(row);
  return r;
}
inline PgResult CommandOk() {
  PgResult r;
  r.kind = PgResult::Kind::kCommandOk;
  return r;
}
inline PgResult ErrorResult(std::string sqlstate, std::string message) {
  PgResult r;
  r.kind = PgResult::Kind::kError;
  r.sqlstate = std::move(sqlstate);
  r.message = std::move(message);
  return r;
}
inline PgResult Aborted() {
  PgResult r;
  r.kind = PgResult::Kind::kPipelineAborted;
  return r;
}
inline PgResult SyncResult() {
  PgResult r;
  r.kind = PgResult::Kind::kPipelineSync;
  return r;
}

}  // namespace counterd::storage::postgres

#endif  // COUNTERD_TESTS_UNIT_STORAGE_POSTGRES_FAKE_PQ_H_
