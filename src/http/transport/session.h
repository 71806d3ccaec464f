// Session: one HTTP/1.1 connection, served one request at a time
// (read -> handle -> write -> read), callback style as in Beast's
// advanced_server example, but on a plain socket: the session parses with
// Beast's request_parser straight from its buffer, writes each response as
// one serialized string (response_writer.h) and keeps its time limits on a
// lazily re-armed Deadline, so a keep-alive request costs no timer system
// calls and no composed-operation machinery.
//
// Lifetime: created with make_shared and started with Run() or Reject();
// every pending operation holds a shared_ptr to it and nothing else owns
// it (the registry keeps a weak_ptr). Thread-safety: the socket's
// io_context is run by exactly one thread, and all state is touched only
// there; Drain() may be called from any thread.
#ifndef COUNTERD_HTTP_TRANSPORT_SESSION_H_
#define COUNTERD_HTTP_TRANSPORT_SESSION_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "api/exchange.h"
#include "api/message.h"
#include "api/principal.h"
#include "api/problem.h"
#include "api/router.h"
#include "transport/deadline.h"
#include "transport/server_state.h"

namespace counterd::http {

class Session final : public std::enable_shared_from_this<Session>,
                      private Exchange::Sink {
 public:
  using Executor = boost::asio::io_context::executor_type;
  using Socket =
      boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;

  // |socket|'s io_context must be run by one thread only: that is what
  // serializes the session's handlers. |peer| is the address accept gave.
  Session(Socket&& socket, const boost::asio::ip::tcp::endpoint& peer,
          std::shared_ptr<ServerState> state);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Serves requests until the peer leaves, a timeout fires or the server
  // drains. REQUIRES: registered under |id| in state->connections.
  void Run(std::uint64_t id);
  // Answers a connection the server has no room for with a 503 problem and
  // closes it, without reading a request.
  void Reject();
  // Shutdown: closes the connection now if it is between requests; else
  // the current response will be its last. Thread-safe.
  void Drain();

 private:
  enum class Phase {
    kIdle,
    kReadingHeader,
    kReadingBody,
    kHandling,
    kWriting,
    kClosing
  };

  void WaitForRequest();
  void OnFirstBytes(boost::beast::error_code ec, std::size_t bytes);
  void StartRequest();
  // Parse what is buffered; read only when the parser needs more. Together
  // they do what http::async_read_header / async_read did.
  void ParseHeader();
  void OnHeader();
  void OnContinueSent(boost::beast::error_code ec);
  void ReadBody();
  void ParseBody();
  void ReadMore();
  void OnMoreBytes(boost::beast::error_code ec, std::size_t bytes);
  void Handle();
  // Exchange::Sink: the response is ready, on whichever thread completed
  // the service call; brings the session back to its own thread.
  void OnReady() override;
  void Respond();
  void OnReadError(boost::beast::error_code ec);
  // Sends the authorizer's 401/403 and closes.
  void Refuse(Response response);
  void SendProblem(ProblemType type, std::string detail);
  void Send(Response response);
  void OnWrite(boost::beast::error_code ec);
  // Ends the request in flight, if any: counts it in the metrics when a
  // response was written (|status|) and tells the registry.
  void EndRequest(std::optional<unsigned> status);
  void Linger();
  void OnLingerRead(boost::beast::error_code ec, std::size_t bytes);
  void Close();

  // The time limit for the current phase; see deadline.h. On expiry the
  // socket is closed and the operation in progress fails with
  // beast::error::timeout, as with beast::tcp_stream.
  void SetDeadline(std::chrono::steady_clock::time_point at);
  void WaitForDeadline();
  void OnDeadline(boost::beast::error_code ec);
  // |ec| as beast::tcp_stream reported it: timeout once the deadline cut
  // the connection off.
  boost::beast::error_code Translate(boost::beast::error_code ec) const;
  std::string Peer() const;  // "ip:port", for logs

  Socket socket_;
  // The socket's, held apart so other threads can post without reading
  // socket_.
  boost::asio::io_context& ioc_;
  Deadline deadline_;
  bool timed_out_ = false;
  boost::asio::ip::tcp::endpoint peer_;
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<ServerState> state_;
  std::optional<std::uint64_t> id_;  // in the registry
  Phase phase_ = Phase::kIdle;
  bool served_one_ = false;         // idle timeout applies after the first
  bool request_in_flight_ = false;  // counted in the registry
  bool close_after_response_ = false;
  bool last_response_ = false;  // the one being written closes
  unsigned status_ = 0;         // of the response being written
  std::chrono::steady_clock::time_point request_start_;
  // The route, matched once from the header (OnHeader), and the method.
  RouteMatch match_;
  Method method_ = Method::kOther;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;
  // Who the current request runs as (auth on); shares the TokenSet.
  std::shared_ptr<const Principal> principal_;
  // What the handlers work with; its principal is the current request's.
  HandlerContext context_;
  Exchange exchange_{*this};
  // Keeps the session alive while the service works on its request: the
  // service holds only the Exchange.
  std::shared_ptr<Session> awaiting_;
  // The serialized response (or 100 Continue) being written; its capacity
  // is kept across requests.
  std::string out_;
  std::array<char, 4096> discard_{};  // bytes read and dropped at close
  std::size_t discarded_ = 0;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_SESSION_H_
