// HttpTestClient: a blocking HTTP/1.1 client over one loopback connection,
// for tests that talk to a real counterd::http::Server on port 0. It sends
// raw bytes (so a test can send anything, malformed or pipelined) and parses
// responses with Beast. Reads give up after 5 s, so a broken server fails
// the test instead of hanging it. Not thread-safe: one per thread.
#ifndef COUNTERD_TESTS_SUPPORT_HTTP_TEST_CLIENT_H_
#define COUNTERD_TESTS_SUPPORT_HTTP_TEST_CLIENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace counterd::testing {

class HttpTestClient {
 public:
  using Response =
      boost::beast::http::response<boost::beast::http::string_body>;

  // Connects to |host|:|port| (a numeric address); aborts the test binary
  // with an exception if the connection is refused.
  HttpTestClient(const std::string& host, std::uint16_t port);

  HttpTestClient(const HttpTestClient&) = delete;
  HttpTestClient& operator=(const HttpTestClient&) = delete;
  HttpTestClient(HttpTestClient&&) = delete;
  HttpTestClient& operator=(HttpTestClient&&) = delete;
  ~HttpTestClient() = default;

  // Writes all of |data| as it is.
  void Send(std::string_view data);

  // Reads one response (a HEAD response with |head|); nullopt if the
  // server closed, reset or timed out first.
  std::optional<Response> Read(bool head = false);

  // True if the server closes the connection (EOF or reset) before sending
  // anything more.
  bool Closed();

  // True if nothing listens on |host|:|port| (the connection is refused).
  static bool Refused(const std::string& host, std::uint16_t port);

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// "GET |target| HTTP/1.1" with Host and the |extra| header lines (each
// ending in \r\n), ready to Send.
std::string HttpGet(std::string_view target, std::string_view extra = "");

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_SUPPORT_HTTP_TEST_CLIENT_H_
