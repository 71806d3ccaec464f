#include "transport/session.h"

#include <algorithm>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/spdlog.h>

#include "api/handlers.h"
#include "api/uri.h"
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
constexpr std::size_t kMaxKeptResponseBytes = 64 * 1024;

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() ==
         bhttp::make_error_code(bhttp::error::bad_method).category();
}

// Errors that are the peer's business: no need to tell an operator.
bool IsQuietError(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == net::error::operation_aborted ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == bhttp::error::end_of_stream ||
         ec == bhttp::error::partial_message;
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

Session::Session(Socket&& socket, const tcp::endpoint& peer,
                 std::shared_ptr<ServerState> state)
    : socket_(std::move(socket)),
      ioc_(socket_.get_executor().context()),
      deadline_(socket_.get_executor(), ShortestTimeout(state->options)),
      peer_(peer),
      state_(std::move(state)),
      context_{state_->service, state_->status} {}

Session::~Session() {
  EndRequest(std::nullopt);
  if (id_) state_->connections.Remove(*id_);
}

void Session::Run(std::uint64_t id) {
  id_ = id;
  // From here on every handler of this session runs on the socket's
  // io_context, whose one thread serializes them.
  net::dispatch(ioc_, [self = shared_from_this()] { self->WaitForRequest(); });
}

void Session::Reject() {
  net::dispatch(ioc_, [self = shared_from_this()] {
    self->close_after_response_ = true;
    self->Send(MakeProblemResponse(
        MakeProblem(ProblemType::kTooManyConnections,
                    "the server is at its connection limit; retry later", "")));
  });
}

void Session::Drain() {
  net::post(ioc_, [self = shared_from_this()] {
    // Between requests: nothing is lost by closing now. Otherwise the
    // current response carries "Connection: close" (see Send).
    if (self->phase_ == Phase::kIdle) {
      beast::error_code ec;
      self->socket_.cancel(ec);
    }
  });
}

void Session::WaitForRequest() {
  if (state_->status.draining.load()) return Close();
  if (buffer_.size() > 0) return StartRequest();  // pipelined: already here
  phase_ = Phase::kIdle;
  // Before the first request the header timeout applies, so a connection
  // that never sends anything is not kept for the longer idle timeout.
  SetDeadline(Clock::now() + (served_one_ ? state_->options.idle_timeout
                                          : state_->options.header_timeout));
  socket_.async_read_some(
      buffer_.prepare(kFirstReadSize),
      [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
        self->OnFirstBytes(ec, bytes);
      });
}

void Session::OnFirstBytes(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    ec = Translate(ec);
    if (!IsQuietError(ec)) {
      spdlog::warn("connection peer={} read failed: {}", Peer(), ec.message());
    }
    return Close();
  }
  buffer_.commit(bytes);
  StartRequest();
}

void Session::StartRequest() {
  phase_ = Phase::kReadingHeader;
  request_in_flight_ = true;
  state_->connections.RequestStarted();
  request_start_ = Clock::now();
  match_ = RouteMatch{};
  method_ = Method::kOther;
  principal_.reset();
  // A fresh parser per message, its limits set before the first octet. It
  // is not eager yet: a put stops at the end of the header, so a body sent
  // along with "Expect: 100-continue" still gets its 100 (see OnHeader).
  parser_.emplace();
  parser_->header_limit(state_->options.max_header_bytes);
  parser_->body_limit(state_->options.max_body_bytes);
  // One deadline for the whole header: a client trickling bytes is cut off.
  SetDeadline(request_start_ + state_->options.header_timeout);
  ParseHeader();
}

void Session::ParseHeader() {
  while (buffer_.size() > 0) {
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec == bhttp::error::need_more) break;
    if (ec) return OnReadError(ec);
    if (parser_->is_header_done()) return OnHeader();
  }
  ReadMore();
}

void Session::OnHeader() {
  const Request& request = parser_->get();
  match_ = MatchRoute(SplitTarget(request.target()).path);
  method_ = MethodOf(request.method());
  request_start_ = Clock::now();
  // Bearer token, scope and prefix, from the header alone: a refused
  // request is answered before its body is read (or 100 Continue sent).
  Authorizer::Decision auth = state_->authorizer.Authorize(request, match_);
  if (auth.refusal) return Refuse(std::move(*auth.refusal));
  principal_ = std::move(auth.principal);
  if (!parser_->is_done() &&
      beast::iequals(request[bhttp::field::expect], "100-continue")) {
    // The body fits the limit (the parser checked Content-Length): ask
    // for it, as a client that sent Expect waits for this.
    WriteContinue(request.version(), out_);
    SetDeadline(request_start_ + state_->options.write_timeout);
    net::async_write(
        socket_, net::buffer(out_),
        [self = shared_from_this()](beast::error_code ec, std::size_t) {
          self->OnContinueSent(ec);
        });
    return;
  }
  ReadBody();
}

void Session::OnContinueSent(beast::error_code ec) {
  if (ec) return Close();
  ReadBody();
}

void Session::ReadBody() {
  if (parser_->is_done()) return Handle();
  phase_ = Phase::kReadingBody;
  SetDeadline(Clock::now() + state_->options.read_timeout);
  // The body needs no stop on the way: parse all that is buffered at once.
  parser_->eager(true);
  ParseBody();
}

void Session::ParseBody() {
  while (buffer_.size() > 0) {
    beast::error_code ec;
    buffer_.consume(parser_->put(buffer_.data(), ec));
    if (ec == bhttp::error::need_more) break;
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return Handle();
  }
  ReadMore();
}

void Session::ReadMore() {
  const std::size_t size = beast::read_size(buffer_, kMaxReadSize);
  if (size == 0) return OnReadError(bhttp::error::buffer_overflow);
  socket_.async_read_some(
      buffer_.prepare(size),
      [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
        self->OnMoreBytes(ec, bytes);
      });
}

void Session::OnMoreBytes(beast::error_code ec, std::size_t bytes) {
  buffer_.commit(bytes);
  if (ec == net::error::eof) {
    // As http::async_read: EOF completes the message only if the parser
    // allows it (put_eof); a message cut short is partial_message.
    if (!parser_->got_some()) return OnReadError(bhttp::error::end_of_stream);
    ec = {};
    parser_->put_eof(ec);
    if (ec) return OnReadError(ec);
    if (phase_ == Phase::kReadingHeader) return OnHeader();
    return Handle();
  }
  if (ec) return OnReadError(Translate(ec));
  if (phase_ == Phase::kReadingHeader) return ParseHeader();
  ParseBody();
}

void Session::Handle() {
  phase_ = Phase::kHandling;
  // No deadline while the service works: a mutation waits for its group
  // commit, and the drain timeout bounds that at shutdown.
  deadline_.Clear();
  request_ = parser_->release();
  parser_.reset();
  // The match points into the parser's target: match again on request_'s.
  match_ = MatchRoute(SplitTarget(request_.target()).path);
  context_.principal = principal_.get();
  Action action = Dispatch(request_, match_, context_);
  if (!std::holds_alternative<Response>(action)) awaiting_ = shared_from_this();
  exchange_.Start(request_, std::move(action), context_);
}

void Session::OnReady() {
  // On this session's thread (an immediate answer, a read, or a commit
  // this thread made inline) the response goes out there and then; from
  // the committer it is posted, and the committer gets back to committing.
  if (ioc_.get_executor().running_in_this_thread()) return Respond();
  net::post(ioc_, [self = awaiting_] { self->Respond(); });
}

void Session::Respond() {
  // Dropped only after Send has taken the response: the session may be
  // kept alive by this reference alone.
  const std::shared_ptr<Session> keep = std::move(awaiting_);
  Send(exchange_.TakeResponse());
}

void Session::OnReadError(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    const Request& request = parser_->get();
    match_ = MatchRoute(SplitTarget(request.target()).path);
    method_ = MethodOf(request.method());
    return SendProblem(ProblemType::kPayloadTooLarge,
                       "request body exceeds " +
                           std::to_string(state_->options.max_body_bytes) +
                           " bytes");
  }
  if (ec == bhttp::error::header_limit) {
    return SendProblem(ProblemType::kHeaderTooLarge,
                       "request header exceeds " +
                           std::to_string(state_->options.max_header_bytes) +
                           " bytes");
  }
  if (IsHttpParseError(ec) && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message) {
    return SendProblem(ProblemType::kBadRequest,
                       "malformed HTTP request: " + ec.message());
  }
  if (ec == beast::error::timeout) {
    spdlog::debug("connection peer={} request timed out", Peer());
  } else if (!IsQuietError(ec)) {
    spdlog::warn("connection peer={} read failed: {}", Peer(), ec.message());
  }
  Close();
}

void Session::Refuse(Response response) {
  // Closes: the body, if any, stays unread and Linger drains it. The
  // request's HTTP version and method (HEAD) still shape the answer.
  close_after_response_ = true;
  request_ = parser_->release();
  parser_.reset();
  Send(std::move(response));
}

void Session::SendProblem(ProblemType type, std::string detail) {
  // The stream is out of step with the message boundaries (or the rest
  // would be too large to skip): answer and close.
  close_after_response_ = true;
  std::string instance;
  if (parser_) {
    instance = std::string(SplitTarget(parser_->get().target()).path);
  }
  request_ = {};
  Send(MakeProblemResponse(
      MakeProblem(type, std::move(detail), std::move(instance))));
}

void Session::Send(Response response) {
  const bool keep_alive = request_.keep_alive() && !close_after_response_ &&
                          !state_->status.draining.load();
  response.version(request_.version());
  response.keep_alive(keep_alive);
  PreparePayload(response, request_.method() == bhttp::verb::head);
  status_ = response.result_int();
  last_response_ = response.need_eof();
  WriteResponse(response, out_);
  phase_ = Phase::kWriting;
  SetDeadline(Clock::now() + state_->options.write_timeout);
  net::async_write(
      socket_, net::buffer(out_),
      [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->OnWrite(ec);
      });
}

void Session::OnWrite(beast::error_code ec) {
  EndRequest(status_);
  if (ec) {
    ec = Translate(ec);
    if (!IsQuietError(ec)) {
      spdlog::warn("connection peer={} write failed: {}", Peer(), ec.message());
    }
    return Close();
  }
  served_one_ = true;
  if (out_.capacity() > kMaxKeptResponseBytes) std::string().swap(out_);
  if (last_response_) return Linger();
  WaitForRequest();
}

void Session::EndRequest(std::optional<unsigned> status) {
  if (!request_in_flight_) return;
  request_in_flight_ = false;
  if (status) {
    const std::chrono::duration<double> took = Clock::now() - request_start_;
    state_->status.metrics.Record(match_.route, method_, *status, took.count());
  }
  state_->connections.RequestFinished();
}

void Session::Linger() {
  phase_ = Phase::kClosing;
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  SetDeadline(Clock::now() +
              std::min(kMaxLinger, state_->options.read_timeout));
  socket_.async_read_some(
      net::buffer(discard_),
      [self = shared_from_this()](beast::error_code read_ec, std::size_t n) {
        self->OnLingerRead(read_ec, n);
      });
}

void Session::OnLingerRead(beast::error_code ec, std::size_t bytes) {
  discarded_ += bytes;
  if (ec || discarded_ > kMaxLingerBytes) return Close();
  socket_.async_read_some(
      net::buffer(discard_),
      [self = shared_from_this()](beast::error_code read_ec, std::size_t n) {
        self->OnLingerRead(read_ec, n);
      });
}

void Session::Close() {
  phase_ = Phase::kClosing;
  EndRequest(std::nullopt);
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  // Lets the pending wait, and with it the last reference, go.
  deadline_.Stop();
}

void Session::SetDeadline(Clock::time_point at) {
  if (deadline_.Set(at)) WaitForDeadline();
}

void Session::WaitForDeadline() {
  deadline_.AsyncWait([self = shared_from_this()](beast::error_code ec) {
    self->OnDeadline(ec);
  });
}

void Session::OnDeadline(beast::error_code ec) {
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
      socket_.close(ignored);
      return;
    }
  }
}

beast::error_code Session::Translate(beast::error_code ec) const {
  if (ec && timed_out_) return beast::error::timeout;
  return ec;
}

std::string Session::Peer() const {
  return peer_.address().to_string() + ":" + std::to_string(peer_.port());
}

}  // namespace counterd::http
