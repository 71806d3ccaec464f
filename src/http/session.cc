#include "session.h"

#include <algorithm>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "handlers.h"
#include "uri.h"

namespace counterd::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

// Bytes read per wait for the next request.
constexpr std::size_t kFirstReadSize = 4096;
// After a response that closes the connection, unread request bytes are
// drained for a while before closing: closing a socket with unread data
// sends RST, which can destroy the response before the client reads it
// (the 413 for an oversized body, for instance).
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr std::size_t kMaxLingerBytes = 1 << 20;

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

std::string PeerOf(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "?";
  return peer.address().to_string() + ":" + std::to_string(peer.port());
}

}  // namespace

Session::Session(tcp::socket&& socket, std::shared_ptr<ServerState> state)
    : stream_(std::move(socket)),
      executor_(stream_.get_executor()),
      peer_(PeerOf(stream_.socket())),
      state_(std::move(state)) {}

Session::~Session() {
  EndRequest(std::nullopt);
  if (id_) state_->connections.Remove(*id_);
}

void Session::Run(std::uint64_t id) {
  id_ = id;
  // The socket was accepted onto a strand; from here on every handler of
  // this session runs on it.
  net::dispatch(executor_, beast::bind_front_handler(&Session::WaitForRequest,
                                                     shared_from_this()));
}

void Session::Reject() {
  net::dispatch(executor_, [self = shared_from_this()] {
    self->close_after_response_ = true;
    self->Send(MakeProblemResponse(
        MakeProblem(ProblemType::kTooManyConnections,
                    "the server is at its connection limit; retry later", "")));
  });
}

void Session::Drain() {
  net::post(executor_, [self = shared_from_this()] {
    // Between requests: nothing is lost by closing now. Otherwise the
    // current response carries "Connection: close" (see Send).
    if (self->phase_ == Phase::kIdle) self->stream_.cancel();
  });
}

void Session::WaitForRequest() {
  if (state_->draining.load()) return Close();
  if (buffer_.size() > 0) return ReadHeader();  // pipelined: already here
  phase_ = Phase::kIdle;
  // Before the first request the header timeout applies, so a connection
  // that never sends anything is not kept for the longer idle timeout.
  stream_.expires_after(served_one_ ? state_->options.idle_timeout
                                    : state_->options.header_timeout);
  stream_.async_read_some(
      buffer_.prepare(kFirstReadSize),
      beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
}

void Session::OnFirstBytes(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    if (!IsQuietError(ec)) {
      spdlog::warn("connection peer={} read failed: {}", peer_, ec.message());
    }
    return Close();
  }
  buffer_.commit(bytes);
  ReadHeader();
}

void Session::ReadHeader() {
  phase_ = Phase::kReadingHeader;
  request_in_flight_ = true;
  state_->connections.RequestStarted();
  request_start_ = std::chrono::steady_clock::now();
  route_ = Route::kOther;
  method_ = Method::kOther;
  // A fresh parser per message, its limits set before the first octet.
  parser_.emplace();
  parser_->header_limit(state_->options.max_header_bytes);
  parser_->body_limit(state_->options.max_body_bytes);
  // One deadline for the whole header: a client trickling bytes is cut off.
  stream_.expires_after(state_->options.header_timeout);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
}

void Session::OnHeader(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec) return OnReadError(ec);
  const Request& request = parser_->get();
  route_ = MatchRoute(SplitTarget(request.target()).path).route;
  method_ = MethodOf(request.method());
  request_start_ = std::chrono::steady_clock::now();
  if (!parser_->is_done() &&
      beast::iequals(request[bhttp::field::expect], "100-continue")) {
    // The body fits the limit (the parser checked Content-Length): ask
    // for it, as a client that sent Expect waits for this.
    continue_ = {bhttp::status::continue_, request.version()};
    stream_.expires_after(state_->options.write_timeout);
    bhttp::async_write(stream_, continue_,
                       beast::bind_front_handler(&Session::OnContinueSent,
                                                 shared_from_this()));
    return;
  }
  ReadBody();
}

void Session::OnContinueSent(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec) return Close();
  ReadBody();
}

void Session::ReadBody() {
  if (parser_->is_done()) return Handle();
  phase_ = Phase::kReadingBody;
  stream_.expires_after(state_->options.read_timeout);
  bhttp::async_read(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&Session::OnBody, shared_from_this()));
}

void Session::OnBody(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec) return OnReadError(ec);
  Handle();
}

void Session::Handle() {
  phase_ = Phase::kHandling;
  // No deadline while the service works: a mutation waits for its group
  // commit, and the drain timeout bounds that at shutdown.
  stream_.expires_never();
  request_ = parser_->release();
  parser_.reset();
  auto self = shared_from_this();
  HandleRequest(
      request_, HandlerContext{state_->service, *state_},
      Reply{[self](Response response) { self->Send(std::move(response)); },
            [self](std::function<void()> task) {
              net::post(self->executor_, std::move(task));
            }});
}

void Session::OnReadError(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    const Request& request = parser_->get();
    route_ = MatchRoute(SplitTarget(request.target()).path).route;
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
    spdlog::debug("connection peer={} request timed out", peer_);
  } else if (!IsQuietError(ec)) {
    spdlog::warn("connection peer={} read failed: {}", peer_, ec.message());
  }
  Close();
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
                          !state_->draining.load();
  response.version(request_.version());
  response.keep_alive(keep_alive);
  PreparePayload(response, request_.method() == bhttp::verb::head);
  response_ = std::move(response);
  phase_ = Phase::kWriting;
  stream_.expires_after(state_->options.write_timeout);
  bhttp::async_write(
      stream_, *response_,
      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
}

void Session::OnWrite(beast::error_code ec, std::size_t /*bytes*/) {
  EndRequest(response_->result_int());
  if (ec) {
    if (!IsQuietError(ec)) {
      spdlog::warn("connection peer={} write failed: {}", peer_, ec.message());
    }
    return Close();
  }
  const bool last = response_->need_eof();
  response_.reset();
  served_one_ = true;
  if (last) return Linger();
  WaitForRequest();
}

void Session::EndRequest(std::optional<unsigned> status) {
  if (!request_in_flight_) return;
  request_in_flight_ = false;
  if (status) {
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - request_start_;
    state_->metrics.Record(route_, method_, *status, took.count());
  }
  state_->connections.RequestFinished();
}

void Session::Linger() {
  phase_ = Phase::kClosing;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  stream_.expires_after(std::min(kMaxLinger, state_->options.read_timeout));
  stream_.async_read_some(
      net::buffer(discard_),
      beast::bind_front_handler(&Session::OnLingerRead, shared_from_this()));
}

void Session::OnLingerRead(beast::error_code ec, std::size_t bytes) {
  discarded_ += bytes;
  if (ec || discarded_ > kMaxLingerBytes) return Close();
  stream_.async_read_some(
      net::buffer(discard_),
      beast::bind_front_handler(&Session::OnLingerRead, shared_from_this()));
}

void Session::Close() {
  phase_ = Phase::kClosing;
  EndRequest(std::nullopt);
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

}  // namespace counterd::http
