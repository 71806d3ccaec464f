// Session: one HTTP/1.1 connection, served one request at a time
// (read -> handle -> write -> read), callback style as in Beast's
// advanced_server example, but on a bare stream: the session parses with
// its RequestReader straight from its buffer, writes each response as one
// serialized string (response_writer.h) and keeps its time limits on a
// lazily re-armed Deadline, so a keep-alive request costs no timer system
// calls and no composed-operation machinery.
//
// A watch request (GET /counters/{name}/watch, /watch) turns the session
// into a streaming one: after the 200 header it carries what its
// WatchStream produces, chunk by chunk (HTTP/1.0: unframed, until close),
// one write in flight at a time, with a heartbeat comment when nothing was
// written for --watch-heartbeat-ms. A read stays pending to notice the
// client leaving (what it sends meanwhile is discarded). No read or idle
// timeout applies then, but each write has the write timeout. On Drain the
// stream ends after the chunk being written, with the last chunk.
//
// The stream is a plain TCP socket or a TLS stream over one: Session is a
// template on it (instantiated for both in session.cc), so the plain path
// pays nothing for TLS. A TLS session first completes the handshake, under
// the header timeout, and ends with a bounded close_notify.
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
#include <type_traits>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "api/exchange.h"
#include "api/message.h"
#include "api/metrics.h"
#include "api/principal.h"
#include "api/problem.h"
#include "api/router.h"
#include "stream/watch_stream.h"
#include "transport/deadline.h"
#include "transport/request_reader.h"
#include "transport/server_state.h"

namespace counterd::http {

using SessionExecutor = boost::asio::io_context::executor_type;
using PlainStream =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, SessionExecutor>;
using TlsStream = boost::asio::ssl::stream<PlainStream>;

// What the registry and the drain need from a session of either kind.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Shutdown: closes the connection now if it is between requests; else
  // the current response will be its last. Thread-safe.
  virtual void Drain() = 0;
};

template <class Stream>
class Session final : public SessionBase,
                      public std::enable_shared_from_this<Session<Stream>>,
                      private Exchange::Sink {
 public:
  using Socket = PlainStream;
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // |socket|'s io_context must be run by one thread only: that is what
  // serializes the session's handlers. |peer| is the address accept gave.
  // |tls| is the context of a TLS session (kept alive by it), else null.
  Session(Socket&& socket, const boost::asio::ip::tcp::endpoint& peer,
          std::shared_ptr<ServerState> state,
          std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Serves requests until the peer leaves, a timeout fires or the server
  // drains. REQUIRES: registered under |id| in state->connections.
  void Run(std::uint64_t id);
  // Answers a connection the server has no room for with a 503 problem and
  // closes it, without reading a request.
  void Reject(ConnectionRefusal reason);
  void Drain() override;

 private:
  enum class Phase {
    kHandshake,
    kIdle,
    kReadingHeader,
    kReadingBody,
    kHandling,
    kWriting,
    kStreaming,  // a watch: see StartWatch
    kClosing
  };

  // TLS: the handshake, under the header timeout; then |next| runs. A
  // failure (or a client that never sends its ClientHello) is counted and
  // closes the connection.
  void Handshake(void (Session::*next)());
  void OnHandshake(boost::beast::error_code ec, void (Session::*next)());
  void SendRefusal();
  void WaitForRequest();
  void OnFirstBytes(boost::beast::error_code ec, std::size_t bytes);
  void StartRequest();
  // Parse what is buffered; read only when the reader needs more. Together
  // they do what http::async_read_header / async_read did, plus the
  // framing rules of request_reader.h.
  void ParseHeader();
  void OnHeader();
  void OnContinueSent(boost::beast::error_code ec);
  void ReadBody();
  void ParseBody();
  void OnStep(RequestReader::Step step);
  void ReadMore();
  void OnMoreBytes(boost::beast::error_code ec, std::size_t bytes);
  void Handle();
  // Exchange::Sink: the response is ready, on whichever thread completed
  // the service call; brings the session back to its own thread.
  void OnReady() override;
  void Respond();
  // Answers a message the reader refused, then closes.
  void Refuse();
  // Sends the authorizer's 401/403 and closes.
  void Deny(Response response);
  void OnReadError(boost::beast::error_code ec);
  // Answers |type| and closes: the stream is out of step with the message
  // boundaries, so nothing after this is read. |instance| empty: the
  // request's path.
  void SendProblem(ProblemType type, std::string detail,
                   std::string instance = {});
  void Send(Response response);
  void OnWrite(boost::beast::error_code ec);
  // A response whose body is produced as it is sent (GET /admin/snapshot):
  // |head|, then |body| a piece at a time, each written before the next is
  // taken, so the session holds one piece, never the whole body. Its
  // length is not known up front: HTTP/1.1 gets it chunked, HTTP/1.0 until
  // the connection closes; no request follows it on this connection.
  // |body| null: the head alone (the answer to HEAD).
  void SendStreamed(Response head,
                    std::unique_ptr<storage::SnapshotReader> body);
  // The last piece is out: asks the reader for the next one, which comes
  // back through SendPiece on this connection's thread.
  void OnStreamedPiece(boost::beast::error_code ec);
  void SendPiece(Result<std::string> piece);

  // Watch streams. StartWatch answers a watch request: 503 when
  // --max-watchers streams are open, else the 200 header, and the stream
  // starts. The request stays in flight (and is counted in the metrics,
  // with status 200 and the stream's duration) until the stream ends.
  void StartWatch(WatchCall call);
  void OnWatchHeader(boost::beast::error_code ec);
  // Keeps one read pending: EOF or an error means the client left.
  void ReadWhileWatching();
  void OnWatchRead(boost::beast::error_code ec, std::size_t bytes);
  // Writes what the stream has, unless a write is in flight (its
  // completion pumps again). Runs on the session's thread: the stream's
  // wake-up only posts it.
  void PumpWatch();
  void WriteWatch(const std::string& data);
  void OnWatchWrite(boost::beast::error_code ec);
  void WaitForHeartbeat();
  void OnHeartbeat(boost::beast::error_code ec);
  // Drain: the last chunk once the write in flight is done, then close.
  void FinishWatch();
  void OnLastChunk(boost::beast::error_code ec);
  // Stops the stream, frees its slot and ends the request. Idempotent.
  void EndWatch();
  // Ends the request in flight, if any: counts it in the metrics when a
  // response was written (|status|) and tells the registry.
  void EndRequest(std::optional<unsigned> status);
  void Linger();
  void OnTlsShutdown(boost::beast::error_code ec);
  void LingerPlain();
  void OnLingerRead(boost::beast::error_code ec, std::size_t bytes);
  void Close();

  // The time limit for the current phase; see deadline.h. On expiry the
  // socket is closed and the operation in progress fails with
  // beast::error::timeout, as with beast::tcp_stream.
  void SetDeadline(std::chrono::steady_clock::time_point at);
  // Writes all of out_ with |deadline| as its time limit, then calls
  // |next| with the result: every write of the session goes through here.
  void WriteOut(std::chrono::steady_clock::time_point deadline,
                void (Session::*next)(boost::beast::error_code));
  void WaitForDeadline();
  void OnDeadline(boost::beast::error_code ec);
  // |ec| as beast::tcp_stream reported it: timeout once the deadline cut
  // the connection off.
  boost::beast::error_code Translate(boost::beast::error_code ec) const;
  std::string Peer() const;  // "ip:port", for logs

  static Stream MakeStream(Socket&& socket, boost::asio::ssl::context* tls);
  // The TCP socket under the stream.
  Socket& socket();

  std::shared_ptr<boost::asio::ssl::context> tls_;  // outlives stream_
  Stream stream_;
  // The socket's, held apart so other threads can post without reading
  // stream_.
  boost::asio::io_context& ioc_;
  Deadline deadline_;
  bool timed_out_ = false;
  boost::asio::ip::tcp::endpoint peer_;
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<ServerState> state_;
  std::optional<std::uint64_t> id_;           // in the registry
  std::optional<ConnectionRefusal> refusal_;  // Reject()ed: why
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
  RequestReader reader_;
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
  // The body SendStreamed is sending; null once its last piece is out.
  std::unique_ptr<storage::SnapshotReader> body_reader_;
  bool body_chunked_ = false;         // HTTP/1.1: chunked; 1.0: until close
  std::array<char, 4096> discard_{};  // bytes read and dropped at close
  std::size_t discarded_ = 0;
  // The watch being served (phase kStreaming), and its state.
  std::shared_ptr<WatchStream> watch_;
  bool watch_slot_ = false;       // holds one of --max-watchers
  bool watch_chunked_ = false;    // HTTP/1.1: chunked; 1.0: until close
  bool watch_writing_ = false;    // a write is in flight
  bool watch_reading_ = false;    // the client-close read is pending
  bool watch_finishing_ = false;  // drained: last chunk after this write
  bool watch_done_ = false;       // the stream has ended
  std::chrono::steady_clock::time_point watch_last_write_;
  std::optional<boost::asio::basic_waitable_timer<
      std::chrono::steady_clock,
      boost::asio::wait_traits<std::chrono::steady_clock>, SessionExecutor>>
      heartbeat_;
};

extern template class Session<PlainStream>;
extern template class Session<TlsStream>;

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_SESSION_H_
