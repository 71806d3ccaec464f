#include "support/http_test_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

namespace counterd::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

}  // namespace

HttpTestClient::HttpTestClient(const std::string& host, std::uint16_t port)
    : socket_(ioc_) {
  socket_.connect(tcp::endpoint(net::ip::make_address(host), port));
  timeval tv{5, 0};
  setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

void HttpTestClient::Send(std::string_view data) {
  net::write(socket_, net::buffer(data));
}

std::optional<HttpTestClient::Response> HttpTestClient::Read(bool head) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.skip(head);
  beast::error_code ec;
  bhttp::read(socket_, buffer_, parser, ec);
  if (ec) return std::nullopt;
  return parser.release();
}

bool HttpTestClient::Closed() {
  char c = 0;
  beast::error_code ec;
  const std::size_t n = socket_.read_some(net::buffer(&c, 1), ec);
  return n == 0 &&
         (ec == net::error::eof || ec == net::error::connection_reset);
}

bool HttpTestClient::Refused(const std::string& host, std::uint16_t port) {
  net::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(net::ip::make_address(host), port), ec);
  return ec == net::error::connection_refused;
}

std::string HttpGet(std::string_view target, std::string_view extra) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" +
         std::string(extra) + "\r\n";
}

}  // namespace counterd::testing
