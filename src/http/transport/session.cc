#include "transport/session.h"

#include <algorithm>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "api/handlers.h"
#include "api/uri.h"
#include "counterd/core/log.h"
#include "transport/http_date.h"
#include "transport/response_writer.h"

namespace counterd::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Bytes read per wait for the next request.
constexpr std::size_t kFirstReadSize = 4096;
// Bytes read per wait once a message has begun, as http::async_read did.
constexpr std::size_t kMaxReadSize = 65536;
// After a response that closes the connection, unread request bytes are
// drained for a while before closing: closing a socket with unread data
// sends RST, which can destroy the response before the client reads it
// (the 413 for an oversized body, for instance).
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr std::size_t kMaxLingerBytes = 1 << 20;
// The response buffer keeps its capacity between requests unless a large
// response (a long list) grew it past this.
constexpr std::size_t kMaxKeptResponseBytes = std::size_t{64} * 1024;
// A streamed body (GET /admin/snapshot) goes out in pieces of about this
// size: large enough for few writes, small enough to be kept (above).
constexpr std::size_t kStreamPieceBytes = std::size_t{60} * 1024;

// Errors that are the peer's business: no need to tell an operator.
// TLS errors after the handshake (a peer that closes without
// close_notify, a bad record) are the peer's business too.
bool IsQuietError(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == net::error::operation_aborted ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == bhttp::error::end_of_stream ||
         ec == bhttp::error::partial_message ||
         ec == net::ssl::error::stream_truncated ||
         ec.category() == net::error::get_ssl_category();
}

// The shortest time limit a session sets per request: its Deadline's
// floor. The linger limit is left out: it comes once per connection, and
// a shorter one just restarts the wait.
Clock::duration ShortestTimeout(const ServerOptions& options) {
  return std::min({Clock::duration(options.header_timeout),
                   Clock::duration(options.read_timeout),
                   Clock::duration(options.write_timeout),
                   Clock::duration(options.idle_timeout)});
}

}  // namespace

template <class Stream>
Stream Session<Stream>::MakeStream(Socket&& socket, net::ssl::context* tls) {
  if constexpr (kTls) {
    return Stream(std::move(socket), *tls);
  } else {
    return Stream(std::move(socket));
  }
}

template <class Stream>
typename Session<Stream>::Socket& Session<Stream>::socket() {
  if constexpr (kTls) {
    return stream_.next_layer();
  } else {
    return stream_;
  }
}

template <class Stream>
Session<Stream>::Session(Socket&& socket, const tcp::endpoint& peer,
                         std::shared_ptr<ServerState> state,
                         std::shared_ptr<net::ssl::context> tls)
    : tls_(std::move(tls)),
      stream_(MakeStream(std::move(socket), tls_.get())),
      ioc_(this->socket().get_executor().context()),
      deadline_(this->socket().get_executor(), ShortestTimeout(state->options)),
      peer_(peer),
      state_(std::move(state)),
      context_{state_->service, state_->status} {}

template <class Stream>
Session<Stream>::~Session() {
  // The stream may outlive the session (a read of the service holds it):
  // no more wake-ups for a session that is gone.
  if (watch_) watch_->Close();
  if (watch_slot_) state_->watch.Release();
  EndRequest(std::nullopt);
  if (id_) state_->connections.Remove(*id_);
}

template <class Stream>
void Session<Stream>::Run(std::uint64_t id) {
  id_ = id;
  // From here on every handler of this session runs on the socket's
  // io_context, whose one thread serializes them.
  net::dispatch(ioc_, [self = this->shared_from_this()] {
    if constexpr (kTls) {
      self->Handshake(&Session::WaitForRequest);
    } else {
      self->WaitForRequest();
    }
  });
}

template <class Stream>
void Session<Stream>::Reject(ConnectionRefusal reason) {
  net::dispatch(ioc_, [self = this->shared_from_this(), reason] {
    self->refusal_ = reason;
    if constexpr (kTls) {
      // The 503 can only be read over TLS: handshake first, still under
      // the header timeout.
      self->Handshake(&Session::SendRefusal);
    } else {
      self->SendRefusal();
    }
  });
}

template <class Stream>
void Session<Stream>::SendRefusal() {
  // No request has been read, so the problem names the server itself
  // ("/") as the resource that refused.
  SendProblem(ProblemType::kTooManyConnections,
              refusal_ == ConnectionRefusal::kMaxConnections
                  ? "the server is at its connection limit; retry later"
                  : "this client address holds the most connections the "
                    "server allows one client; close one or retry later",
              "/");
}

template <class Stream>
void Session<Stream>::Handshake(void (Session::*next)()) {
  if constexpr (kTls) {
    phase_ = Phase::kHandshake;
    SetDeadline(Clock::now() + state_->options.header_timeout);
    stream_.async_handshake(
        net::ssl::stream_base::server,
        [self = this->shared_from_this(), next](beast::error_code ec) {
          self->OnHandshake(ec, next);
        });
  } else {
    (this->*next)();
  }
}

template <class Stream>
void Session<Stream>::OnHandshake(beast::error_code ec,
                                  void (Session::*next)()) {
  if (ec) {
    ec = Translate(ec);
    if (!state_->status.draining.load()) {
      state_->status.metrics.tls().handshake_failures.fetch_add(
          1, std::memory_order_relaxed);
    }
    // A client's business (wrong protocol version, no certificate, a
    // port scanner), not an operator's: debug.
    log::Debug("TLS handshake failed",
               {{"peer", Peer()}, {"error", ec.message()}});
    return Close();
  }
  (this->*next)();
}

template <class Stream>
void Session<Stream>::Drain() {
  net::post(ioc_, [self = this->shared_from_this()] {
    // Between requests: nothing is lost by closing now. Otherwise the
    // current response carries "Connection: close" (see Send).
    if (self->phase_ == Phase::kIdle) {
      beast::error_code ec;
      self->socket().cancel(ec);
    }
    // A watch never ends by itself: end it now, so the drain does not
    // wait for it.
    if (self->phase_ == Phase::kStreaming) self->FinishWatch();
  });
}

template <class Stream>
void Session<Stream>::WaitForRequest() {
  if (state_->status.draining.load()) return Close();
  if (buffer_.size() > 0) return StartRequest();  // pipelined: already here
  phase_ = Phase::kIdle;
  // Before the first request the header timeout applies, so a connection
  // that never sends anything is not kept for the longer idle timeout.
  SetDeadline(Clock::now() + (served_one_ ? state_->options.idle_timeout
                                          : state_->options.header_timeout));
  stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                          [self = this->shared_from_this()](
                              beast::error_code ec, std::size_t bytes) {
                            self->OnFirstBytes(ec, bytes);
                          });
}

template <class Stream>
void Session<Stream>::OnFirstBytes(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    ec = Translate(ec);
    if (!IsQuietError(ec)) {
      log::Warn("connection read failed",
                {{"peer", Peer()}, {"error", ec.message()}});
    }
    // Drained between requests: a TLS peer gets its close_notify.
    if constexpr (kTls) {
      if (ec == net::error::operation_aborted) return Linger();
    }
    return Close();
  }
  buffer_.commit(bytes);
  StartRequest();
}

template <class Stream>
void Session<Stream>::StartRequest() {
  phase_ = Phase::kReadingHeader;
  request_in_flight_ = true;
  state_->connections.RequestStarted();
  request_start_ = Clock::now();
  match_ = RouteMatch{};
  method_ = Method::kOther;
  principal_.reset();
  reader_.Start(state_->options.max_header_bytes,
                state_->options.max_body_bytes);
  // One deadline for the whole header: a client trickling bytes is cut off.
  SetDeadline(request_start_ + state_->options.header_timeout);
  ParseHeader();
}

template <class Stream>
void Session<Stream>::ParseHeader() {
  OnStep(reader_.ParseHeader(buffer_));
}

template <class Stream>
void Session<Stream>::ParseBody() {
  OnStep(reader_.ParseBody(buffer_));
}

template <class Stream>
void Session<Stream>::OnStep(RequestReader::Step step) {
  switch (step) {
    case RequestReader::Step::kNeedMore:
      return ReadMore();
    case RequestReader::Step::kRefused:
      return Refuse();
    case RequestReader::Step::kDone:
      if (phase_ == Phase::kReadingHeader) return OnHeader();
      return Handle();
  }
}

template <class Stream>
void Session<Stream>::OnHeader() {
  const Request& request = reader_.request();
  match_ = MatchRoute(SplitTarget(request.target()).path);
  method_ = MethodOf(request.method());
  request_start_ = Clock::now();
  // Bearer token, scope and prefix, from the header alone: a refused
  // request is answered before its body is read (or 100 Continue sent).
  Authorizer::Decision auth = state_->authorizer.Authorize(request, match_);
  if (auth.refusal) return Deny(std::move(*auth.refusal));
  principal_ = std::move(auth.principal);
  if (!reader_.done() &&
      beast::iequals(request[bhttp::field::expect], "100-continue")) {
    // The body fits the limit (the parser checked Content-Length): ask
    // for it, as a client that sent Expect waits for this.
    WriteContinue(request.version(), out_);
    WriteOut(request_start_ + state_->options.write_timeout,
             &Session::OnContinueSent);
    return;
  }
  ReadBody();
}

template <class Stream>
void Session<Stream>::OnContinueSent(beast::error_code ec) {
  if (ec) return Close();
  ReadBody();
}

template <class Stream>
void Session<Stream>::ReadBody() {
  if (reader_.done()) return Handle();
  phase_ = Phase::kReadingBody;
  SetDeadline(Clock::now() + state_->options.read_timeout);
  ParseBody();
}

template <class Stream>
void Session<Stream>::ReadMore() {
  const std::size_t size = beast::read_size(buffer_, kMaxReadSize);
  if (size == 0) return OnReadError(bhttp::error::buffer_overflow);
  stream_.async_read_some(buffer_.prepare(size),
                          [self = this->shared_from_this()](
                              beast::error_code ec, std::size_t bytes) {
                            self->OnMoreBytes(ec, bytes);
                          });
}

template <class Stream>
void Session<Stream>::OnMoreBytes(beast::error_code ec, std::size_t bytes) {
  buffer_.commit(bytes);
  // EOF in the middle of a request: it can never be complete (a request
  // without a length has no body), so there is nothing to answer.
  if (ec) return OnReadError(Translate(ec));
  if (phase_ == Phase::kReadingHeader) return ParseHeader();
  ParseBody();
}

template <class Stream>
void Session<Stream>::Handle() {
  phase_ = Phase::kHandling;
  // No deadline while the service works: a mutation waits for its group
  // commit, and the drain timeout bounds that at shutdown.
  deadline_.Clear();
  request_ = reader_.Release();
  // The match points into the parser's target: match again on request_'s.
  match_ = MatchRoute(SplitTarget(request_.target()).path);
  if (request_.method() == bhttp::verb::unknown) {
    // Not a method of the HTTP method registry ("FOO", "get": methods are
    // case-sensitive). A registered one a route does not serve gets 405
    // from the handlers instead. The framing was sound: keep the
    // connection.
    return Send(MakeProblemResponse(
        MakeProblem(ProblemType::kNotImplemented,
                    "method " + std::string(request_.method_string()) +
                        " is not implemented",
                    std::string(SplitTarget(request_.target()).path))));
  }
  context_.principal = principal_.get();
  Action action = Dispatch(request_, match_, context_);
  if (auto* watch = std::get_if<WatchCall>(&action)) {
    return StartWatch(std::move(*watch));
  }
  if (!std::holds_alternative<Response>(action)) {
    awaiting_ = this->shared_from_this();
  }
  exchange_.Start(request_, std::move(action), context_);
}

template <class Stream>
void Session<Stream>::OnReady() {
  // On this session's thread (an immediate answer, a read, or a commit
  // this thread made inline) the response goes out there and then; from
  // the committer it is posted, and the committer gets back to committing.
  if (ioc_.get_executor().running_in_this_thread()) return Respond();
  net::post(ioc_, [self = awaiting_] { self->Respond(); });
}

template <class Stream>
void Session<Stream>::Respond() {
  // Dropped only after Send has taken the response: the session may be
  // kept alive by this reference alone.
  const std::shared_ptr<Session> keep = std::move(awaiting_);
  Response response = exchange_.TakeResponse();
  if (std::unique_ptr<storage::SnapshotReader> body =
          exchange_.TakeBodyReader()) {
    // HEAD gets the same head, and no body: the reader is dropped unread.
    if (request_.method() == bhttp::verb::head) body.reset();
    return SendStreamed(std::move(response), std::move(body));
  }
  Send(std::move(response));
}

template <class Stream>
void Session<Stream>::Refuse() {
  if (reader_.header_done()) {
    // Counted under the route and method it asked for.
    const Request& request = reader_.request();
    match_ = MatchRoute(SplitTarget(request.target()).path);
    method_ = MethodOf(request.method());
  }
  const RequestReader::Refusal& refusal = reader_.refusal();
  SendProblem(refusal.type, refusal.detail);
}

template <class Stream>
void Session<Stream>::OnReadError(beast::error_code ec) {
  if (ec == bhttp::error::buffer_overflow) {
    return SendProblem(ProblemType::kBadRequest,
                       "malformed HTTP request: " + ec.message());
  }
  if (ec == beast::error::timeout) {
    log::Debug("request timed out", {{"peer", Peer()}});
  } else if (!IsQuietError(ec)) {
    log::Warn("connection read failed",
              {{"peer", Peer()}, {"error", ec.message()}});
  }
  Close();
}

template <class Stream>
void Session<Stream>::Deny(Response response) {
  // Closes: the body, if any, stays unread and Linger drains it. The
  // request's HTTP version and method (HEAD) still shape the answer.
  close_after_response_ = true;
  request_ = reader_.Release();
  match_ = MatchRoute(SplitTarget(request_.target()).path);
  Send(std::move(response));
}

template <class Stream>
void Session<Stream>::SendProblem(ProblemType type, std::string detail,
                                  std::string instance) {
  // The stream is out of step with the message boundaries (or the rest
  // would be too large to skip): answer and close.
  close_after_response_ = true;
  if (instance.empty() && reader_.started()) {
    instance = std::string(SplitTarget(reader_.request().target()).path);
  }
  // Whatever else the peer sent is never parsed: the response closes the
  // connection, and Linger only discards.
  buffer_.consume(buffer_.size());
  request_ = {};
  Send(MakeProblemResponse(
      MakeProblem(type, std::move(detail), std::move(instance))));
}

template <class Stream>
void Session<Stream>::Send(Response response) {
  const bool keep_alive = request_.keep_alive() && !close_after_response_ &&
                          !state_->status.draining.load();
  response.version(request_.version());
  response.keep_alive(keep_alive);
  PreparePayload(response, request_.method() == bhttp::verb::head);
  status_ = response.result_int();
  last_response_ = response.need_eof();
  WriteResponse(response, HttpDateNow(), out_);
  phase_ = Phase::kWriting;
  WriteOut(Clock::now() + state_->options.write_timeout, &Session::OnWrite);
}

template <class Stream>
void Session<Stream>::OnWrite(beast::error_code ec) {
  EndRequest(status_);
  if (ec) {
    ec = Translate(ec);
    if (!IsQuietError(ec)) {
      log::Warn("connection write failed",
                {{"peer", Peer()}, {"error", ec.message()}});
    }
    return Close();
  }
  served_one_ = true;
  if (out_.capacity() > kMaxKeptResponseBytes) std::string().swap(out_);
  if (last_response_) return Linger();
  WaitForRequest();
}

template <class Stream>
void Session<Stream>::SendStreamed(
    Response head, std::unique_ptr<storage::SnapshotReader> body) {
  body_reader_ = std::move(body);  // null: the head alone (HEAD)
  body_chunked_ = request_.version() >= 11;
  head.version(request_.version());
  if (body_chunked_) head.set(bhttp::field::transfer_encoding, "chunked");
  head.set(bhttp::field::connection, "close");
  status_ = head.result_int();
  last_response_ = true;
  WriteResponse(head, HttpDateNow(), out_);
  phase_ = Phase::kWriting;
  WriteOut(Clock::now() + state_->options.write_timeout,
           &Session::OnStreamedPiece);
}

template <class Stream>
void Session<Stream>::OnStreamedPiece(beast::error_code ec) {
  // An error, or the end of the body is out: the response is over, and
  // OnWrite ends it (metrics, then the linger before close).
  if (ec || !body_reader_) {
    body_reader_.reset();
    return OnWrite(ec);
  }
  // Encoded as the socket takes it: from the file backend's memory before
  // Next returns, or once the database has sent the next page (postgres,
  // on its thread). Either way the piece is sent from this connection's.
  body_reader_->Next(kStreamPieceBytes, [self = this->shared_from_this()](
                                            Result<std::string> piece) {
    net::post(self->ioc_, [self, piece = std::move(piece)]() mutable {
      self->SendPiece(std::move(piece));
    });
  });
}

template <class Stream>
void Session<Stream>::SendPiece(Result<std::string> piece) {
  if (phase_ != Phase::kWriting) {  // closed while the piece was made
    body_reader_.reset();
    return;
  }
  if (!piece) {
    // The rest cannot be read (the database went away mid-document): no
    // last chunk, and a reset instead of a clean close (an HTTP/1.0 body
    // ends at the close), so the client sees a body cut short, never a
    // short document that looks whole.
    log::Warn("snapshot: the document could not be finished",
              {{"peer", Peer()}, {"error", piece.error().message()}});
    body_reader_.reset();
    beast::error_code ignored;
    socket().set_option(net::socket_base::linger(true, 0), ignored);
    return Close();
  }
  if (piece->empty()) {
    body_reader_.reset();
    if (!body_chunked_) return OnWrite(beast::error_code{});
    WriteLastChunk(out_);
  } else if (body_chunked_) {
    WriteChunk(*piece, out_);
  } else {
    out_ = std::move(*piece);
  }
  // Each piece gets the whole write timeout: a client that keeps reading
  // may take as long as the body needs; one that stops is cut off.
  WriteOut(Clock::now() + state_->options.write_timeout,
           &Session::OnStreamedPiece);
}

template <class Stream>
void Session<Stream>::StartWatch(WatchCall call) {
  if (state_->status.draining.load()) {
    return Send(MakeProblemResponse(
        MakeProblem(ProblemType::kNotReady, "the server is shutting down",
                    std::string(SplitTarget(request_.target()).path))));
  }
  if (!state_->watch.TryAcquire()) {
    Response res = MakeProblemResponse(
        MakeProblem(ProblemType::kTooManyWatchers,
                    "the server has --max-watchers (" +
                        std::to_string(state_->options.max_watchers) +
                        ") watch streams open; retry later",
                    std::string(SplitTarget(request_.target()).path)));
    res.set(bhttp::field::retry_after, "1");
    return Send(std::move(res));
  }
  watch_slot_ = true;
  phase_ = Phase::kStreaming;
  // Whatever the client sent after the request is never parsed: while it
  // watches, the connection only carries the stream.
  buffer_.consume(buffer_.size());
  // HTTP/1.0 has no chunked coding: the stream then runs until close.
  watch_chunked_ = request_.version() >= 11;
  Response res{bhttp::status::ok, request_.version()};
  res.set(bhttp::field::content_type, "text/event-stream");
  res.set(bhttp::field::cache_control, "no-cache");
  if (watch_chunked_) res.set(bhttp::field::transfer_encoding, "chunked");
  // No request follows a stream on this connection.
  res.set(bhttp::field::connection, "close");
  status_ = 200;
  WriteResponse(res, HttpDateNow(), out_);

  // The stream only posts here; the session takes its output on its own
  // thread. It holds the state (so the hub it names outlives it), not the
  // session.
  std::weak_ptr<Session> weak = this->shared_from_this();
  net::io_context& ioc = ioc_;
  watch_ = std::make_shared<WatchStream>(
      WatchTarget{call.prefix, std::move(call.name), call.restricted,
                  std::move(call.ranges)},
      call.last_event_id, state_->options.watch_buffer, state_->service,
      state_->watch.hub(), [weak, &ioc, keep = state_] {
        net::post(ioc, [weak] {
          if (const std::shared_ptr<Session> self = weak.lock()) {
            self->PumpWatch();
          }
        });
      });
  watch_writing_ = true;
  watch_last_write_ = Clock::now();
  WriteOut(watch_last_write_ + state_->options.write_timeout,
           &Session::OnWatchHeader);
  // Registers with the hub and reads the current state; its first output
  // waits for the header (one write at a time).
  watch_->Start();
}

template <class Stream>
void Session<Stream>::OnWatchHeader(beast::error_code ec) {
  if (!ec && !watch_done_) {
    heartbeat_.emplace(ioc_.get_executor());
    WaitForHeartbeat();
    ReadWhileWatching();
  }
  OnWatchWrite(ec);
}

template <class Stream>
void Session<Stream>::ReadWhileWatching() {
  watch_reading_ = true;
  stream_.async_read_some(
      net::buffer(discard_),
      [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
        self->OnWatchRead(ec, n);
      });
}

template <class Stream>
void Session<Stream>::OnWatchRead(beast::error_code ec, std::size_t /*n*/) {
  watch_reading_ = false;
  if (phase_ != Phase::kStreaming) return;  // closed meanwhile
  // The last chunk is out and this read was cancelled for the linger.
  if (watch_done_) return Linger();
  if (ec) {
    ec = Translate(ec);
    if (!IsQuietError(ec)) {
      log::Warn("connection read failed",
                {{"peer", Peer()}, {"error", ec.message()}});
    }
    // The client left (or reset): nobody to stream to.
    EndWatch();
    return Close();
  }
  ReadWhileWatching();  // bytes sent while watching: discarded
}

template <class Stream>
void Session<Stream>::PumpWatch() {
  if (phase_ != Phase::kStreaming || !watch_ || watch_writing_ ||
      watch_finishing_) {
    return;
  }
  const std::string data = watch_->TakeOutput();
  if (!data.empty()) WriteWatch(data);
}

template <class Stream>
void Session<Stream>::WriteWatch(const std::string& data) {
  if (watch_chunked_) {
    WriteChunk(data, out_);
  } else {
    out_ = data;
  }
  watch_writing_ = true;
  watch_last_write_ = Clock::now();
  WriteOut(watch_last_write_ + state_->options.write_timeout,
           &Session::OnWatchWrite);
}

template <class Stream>
void Session<Stream>::OnWatchWrite(beast::error_code ec) {
  watch_writing_ = false;
  if (phase_ != Phase::kStreaming) return;
  deadline_.Clear();  // no time limit between writes
  if (ec) {
    ec = Translate(ec);
    if (ec == beast::error::timeout) {
      log::Debug("watch write timed out", {{"peer", Peer()}});
    } else if (!IsQuietError(ec)) {
      log::Warn("connection write failed",
                {{"peer", Peer()}, {"error", ec.message()}});
    }
    EndWatch();
    return Close();
  }
  if (out_.capacity() > kMaxKeptResponseBytes) std::string().swap(out_);
  if (watch_finishing_) return FinishWatch();
  PumpWatch();
}

template <class Stream>
void Session<Stream>::WaitForHeartbeat() {
  const Clock::time_point now = Clock::now();
  Clock::time_point next = watch_last_write_ + state_->options.watch_heartbeat;
  // A write in flight for longer than the interval: look again one
  // interval later rather than spin.
  if (next <= now) next = now + state_->options.watch_heartbeat;
  heartbeat_->expires_at(next);
  heartbeat_->async_wait([self = this->shared_from_this()](
                             beast::error_code ec) { self->OnHeartbeat(ec); });
}

template <class Stream>
void Session<Stream>::OnHeartbeat(beast::error_code ec) {
  if (ec || phase_ != Phase::kStreaming || watch_done_ || watch_finishing_) {
    return;
  }
  if (!watch_writing_ &&
      Clock::now() >= watch_last_write_ + state_->options.watch_heartbeat) {
    WriteWatch(WatchStream::Heartbeat());
  }
  WaitForHeartbeat();
}

template <class Stream>
void Session<Stream>::FinishWatch() {
  watch_finishing_ = true;
  if (watch_writing_ || watch_done_) return;  // OnWatchWrite comes back
  // Nothing more goes out: the stream stops, the chunk in flight is done.
  if (watch_) watch_->Close();
  if (!watch_chunked_) return OnLastChunk({});
  WriteLastChunk(out_);
  watch_writing_ = true;
  WriteOut(Clock::now() + state_->options.write_timeout, &Session::OnLastChunk);
}

template <class Stream>
void Session<Stream>::OnLastChunk(beast::error_code ec) {
  watch_writing_ = false;
  if (phase_ != Phase::kStreaming) return;
  EndWatch();
  if (ec) return Close();
  // Lingers once the pending read is out of the way (OnWatchRead).
  if (!watch_reading_) return Linger();
  beast::error_code ignored;
  socket().cancel(ignored);
}

template <class Stream>
void Session<Stream>::EndWatch() {
  watch_done_ = true;
  if (watch_) {
    watch_->Close();
    watch_.reset();
  }
  if (watch_slot_) {
    watch_slot_ = false;
    state_->watch.Release();
  }
  if (heartbeat_) heartbeat_->cancel();
  deadline_.Clear();
  // Counted once, now that it has ended: 200, for as long as it ran.
  EndRequest(status_);
}

template <class Stream>
void Session<Stream>::EndRequest(std::optional<unsigned> status) {
  if (!request_in_flight_) return;
  request_in_flight_ = false;
  if (status) {
    const std::chrono::duration<double> took = Clock::now() - request_start_;
    state_->status.metrics.Record(match_.route, method_, *status, took.count());
  }
  state_->connections.RequestFinished();
}

template <class Stream>
void Session<Stream>::Linger() {
  phase_ = Phase::kClosing;
  SetDeadline(Clock::now() +
              std::min(kMaxLinger, state_->options.read_timeout));
  if constexpr (kTls) {
    // close_notify, best effort: the deadline bounds the wait for the
    // peer's; then the TCP linger below, within the same deadline.
    stream_.async_shutdown(
        [self = this->shared_from_this()](beast::error_code ec) {
          self->OnTlsShutdown(ec);
        });
  } else {
    LingerPlain();
  }
}

template <class Stream>
void Session<Stream>::OnTlsShutdown(beast::error_code /*ec*/) {
  // Whatever the peer did (close_notify, a plain close, more data), the
  // socket may still hold unread bytes: drain them as on a plain socket.
  if (timed_out_) return Close();
  LingerPlain();
}

template <class Stream>
void Session<Stream>::LingerPlain() {
  beast::error_code ec;
  socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  socket().async_read_some(net::buffer(discard_),
                           [self = this->shared_from_this()](
                               beast::error_code read_ec, std::size_t n) {
                             self->OnLingerRead(read_ec, n);
                           });
}

template <class Stream>
void Session<Stream>::OnLingerRead(beast::error_code ec, std::size_t bytes) {
  discarded_ += bytes;
  if (ec || discarded_ > kMaxLingerBytes) return Close();
  socket().async_read_some(net::buffer(discard_),
                           [self = this->shared_from_this()](
                               beast::error_code read_ec, std::size_t n) {
                             self->OnLingerRead(read_ec, n);
                           });
}

template <class Stream>
void Session<Stream>::Close() {
  phase_ = Phase::kClosing;
  EndRequest(std::nullopt);
  beast::error_code ec;
  socket().shutdown(tcp::socket::shutdown_both, ec);
  socket().close(ec);
  // Lets the pending wait, and with it the last reference, go.
  deadline_.Stop();
}

template <class Stream>
void Session<Stream>::WriteOut(Clock::time_point deadline,
                               void (Session::*next)(beast::error_code)) {
  SetDeadline(deadline);
  net::async_write(
      stream_, net::buffer(out_),
      [self = this->shared_from_this(), next](
          beast::error_code ec, std::size_t) { ((*self).*next)(ec); });
}

template <class Stream>
void Session<Stream>::SetDeadline(Clock::time_point at) {
  if (deadline_.Set(at)) WaitForDeadline();
}

template <class Stream>
void Session<Stream>::WaitForDeadline() {
  deadline_.AsyncWait([self = this->shared_from_this()](beast::error_code ec) {
    self->OnDeadline(ec);
  });
}

template <class Stream>
void Session<Stream>::OnDeadline(beast::error_code ec) {
  switch (deadline_.OnWaitComplete(ec)) {
    case Deadline::Outcome::kWaitAgain:
      return WaitForDeadline();
    case Deadline::Outcome::kIdle:
      return;
    case Deadline::Outcome::kExpired: {
      // As beast::tcp_stream: close the socket, so the operation in
      // progress fails; its handler sees timeout (Translate).
      timed_out_ = true;
      beast::error_code ignored;
      socket().close(ignored);
      return;
    }
  }
}

template <class Stream>
beast::error_code Session<Stream>::Translate(beast::error_code ec) const {
  if (ec && timed_out_) return beast::error::timeout;
  return ec;
}

template <class Stream>
std::string Session<Stream>::Peer() const {
  return peer_.address().to_string() + ":" + std::to_string(peer_.port());
}

template class Session<PlainStream>;
template class Session<TlsStream>;

}  // namespace counterd::http
