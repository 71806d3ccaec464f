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
constexpr std::size_t kMaxKeptResponseBytes = 64 * 1024;

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
      state_(std::move(state)) {}

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

void Session::Reject(ConnectionRefusal reason) {
  net::dispatch(ioc_, [self = shared_from_this(), reason] {
    // No request has been read, so the problem names the server itself
    // ("/") as the resource that refused.
    self->SendProblem(
        ProblemType::kTooManyConnections,
        reason == ConnectionRefusal::kMaxConnections
            ? "the server is at its connection limit; retry later"
            : "this client address holds the most connections the server "
              "allows one client; close one or retry later",
        "/");
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
  route_ = Route::kOther;
  method_ = Method::kOther;
  reader_.Start(state_->options.max_header_bytes,
                state_->options.max_body_bytes);
  // One deadline for the whole header: a client trickling bytes is cut off.
  SetDeadline(request_start_ + state_->options.header_timeout);
  ParseHeader();
}

void Session::ParseHeader() { OnStep(reader_.ParseHeader(buffer_)); }

void Session::ParseBody() { OnStep(reader_.ParseBody(buffer_)); }

void Session::OnStep(RequestReader::Step step) {
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

void Session::OnHeader() {
  const Request& request = reader_.request();
  route_ = MatchRoute(SplitTarget(request.target()).path).route;
  method_ = MethodOf(request.method());
  request_start_ = Clock::now();
  if (!reader_.done() &&
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
  if (reader_.done()) return Handle();
  phase_ = Phase::kReadingBody;
  SetDeadline(Clock::now() + state_->options.read_timeout);
  ParseBody();
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
  // EOF in the middle of a request: it can never be complete (a request
  // without a length has no body), so there is nothing to answer.
  if (ec) return OnReadError(Translate(ec));
  if (phase_ == Phase::kReadingHeader) return ParseHeader();
  ParseBody();
}

void Session::Handle() {
  phase_ = Phase::kHandling;
  // No deadline while the service works: a mutation waits for its group
  // commit, and the drain timeout bounds that at shutdown.
  deadline_.Clear();
  request_ = reader_.Release();
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
  // |post| captures only the io_context, small enough for std::function
  // to store without allocating; |send| keeps the session alive.
  HandleRequest(request_, HandlerContext{state_->service, state_->status},
                Reply{[self = shared_from_this()](Response response) {
                        self->Send(std::move(response));
                      },
                      [ioc = &ioc_](std::function<void()> task) {
                        // Inline: a commit this thread made itself (see
                        // the store's inline commit) is answered without a
                        // trip through the io_context's queue.
                        net::dispatch(*ioc, std::move(task));
                      }});
}

void Session::Refuse() {
  if (reader_.header_done()) {
    // Counted under the route and method it asked for.
    const Request& request = reader_.request();
    route_ = MatchRoute(SplitTarget(request.target()).path).route;
    method_ = MethodOf(request.method());
  }
  const RequestReader::Refusal& refusal = reader_.refusal();
  SendProblem(refusal.type, refusal.detail);
}

void Session::OnReadError(beast::error_code ec) {
  if (ec == bhttp::error::buffer_overflow) {
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

void Session::SendProblem(ProblemType type, std::string detail,
                          std::string instance) {
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

void Session::Send(Response response) {
  const bool keep_alive = request_.keep_alive() && !close_after_response_ &&
                          !state_->status.draining.load();
  response.version(request_.version());
  response.keep_alive(keep_alive);
  PreparePayload(response, request_.method() == bhttp::verb::head);
  status_ = response.result_int();
  last_response_ = response.need_eof();
  WriteResponse(response, HttpDateNow(), out_);
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
    state_->status.metrics.Record(route_, method_, *status, took.count());
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
