#include "counterd/http/probe.h"

#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace counterd::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

constexpr std::uint64_t kMaxProbeBody = 64 * 1024;

}  // namespace

Result<unsigned> ProbeStatus(const ListenAddress& address,
                             std::string_view path,
                             std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  const net::ip::address ip = net::ip::make_address(address.host, ec);
  if (ec) {
    return Status::InvalidArgument("probe address " + address.ToString() +
                                   ": " + ec.message());
  }
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, std::string(path),
                                            11};
  request.set(bhttp::field::host, address.ToString());
  request.set(bhttp::field::user_agent, "counterd-healthcheck");
  request.keep_alive(false);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxProbeBody);

  // One deadline for connect, write and read together.
  stream.expires_after(timeout);
  boost::system::error_code result;
  std::string step = "connect";
  stream.async_connect(tcp::endpoint(ip, address.port), [&](auto connect_ec) {
    if (connect_ec) {
      result = connect_ec;
      return;
    }
    step = "send request";
    bhttp::async_write(stream, request, [&](auto write_ec, std::size_t) {
      if (write_ec) {
        result = write_ec;
        return;
      }
      step = "read response";
      bhttp::async_read(stream, buffer, parser,
                        [&](auto read_ec, std::size_t) { result = read_ec; });
    });
  });
  ioc.run();
  if (result) {
    return Status::Unavailable(step + " " + address.ToString() + ": " +
                               result.message());
  }
  return parser.get().result_int();
}

}  // namespace counterd::http
