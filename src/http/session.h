// Session: one HTTP/1.1 connection, served one request at a time
// (read -> handle -> write -> read), callback style as in Beast's
// advanced_server example.
//
// Lifetime: created with make_shared and started with Run() or Reject();
// every pending operation holds a shared_ptr to it and nothing else owns
// it (the registry keeps a weak_ptr). Thread-safety: all state is touched
// only on the connection's strand; Drain() may be called from any thread.
#ifndef COUNTERD_HTTP_SESSION_H_
#define COUNTERD_HTTP_SESSION_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "message.h"
#include "problem.h"
#include "router.h"
#include "server_state.h"

namespace counterd::http {

class Session : public std::enable_shared_from_this<Session> {
 public:
  // |socket|'s executor must be a strand.
  Session(boost::asio::ip::tcp::socket&& socket,
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
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec, std::size_t bytes);
  void OnContinueSent(boost::beast::error_code ec, std::size_t bytes);
  void ReadBody();
  void OnBody(boost::beast::error_code ec, std::size_t bytes);
  void Handle();
  void OnReadError(boost::beast::error_code ec);
  void SendProblem(ProblemType type, std::string detail);
  void Send(Response response);
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  // Ends the request in flight, if any: counts it in the metrics when a
  // response was written (|status|) and tells the registry.
  void EndRequest(std::optional<unsigned> status);
  void Linger();
  void OnLingerRead(boost::beast::error_code ec, std::size_t bytes);
  void Close();

  boost::beast::tcp_stream stream_;
  // A copy, so other threads can post to the strand without reading
  // stream_.
  const boost::asio::any_io_executor executor_;
  std::string peer_;  // "ip:port", for logs
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<ServerState> state_;
  std::optional<std::uint64_t> id_;  // in the registry
  Phase phase_ = Phase::kIdle;
  bool served_one_ = false;         // idle timeout applies after the first
  bool request_in_flight_ = false;  // counted in the registry
  bool close_after_response_ = false;
  std::chrono::steady_clock::time_point request_start_;
  Route route_ = Route::kOther;
  Method method_ = Method::kOther;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;
  std::optional<Response> response_;
  bhttp::response<bhttp::empty_body> continue_;
  std::array<char, 4096> discard_{};  // bytes read and dropped at close
  std::size_t discarded_ = 0;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_SESSION_H_
