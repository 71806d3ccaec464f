#include "counterd/http/probe.h"

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace counterd::http {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

constexpr std::uint64_t kMaxProbeBody = std::uint64_t{64} * 1024;

struct Exchange {
  bhttp::request<bhttp::empty_body> request;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  boost::system::error_code result;
  std::string step = "connect";
};

// Writes the request and reads the response on |stream|, recording the
// step that failed, if any, in |x|.
template <class Stream>
void WriteAndRead(Stream& stream, Exchange& x) {
  x.step = "send request";
  bhttp::async_write(stream, x.request, [&](auto write_ec, std::size_t) {
    if (write_ec) {
      x.result = write_ec;
      return;
    }
    x.step = "read response";
    bhttp::async_read(stream, x.buffer, x.parser,
                      [&](auto read_ec, std::size_t) { x.result = read_ec; });
  });
}

}  // namespace

Result<unsigned> ProbeStatus(const ListenAddress& address,
                             std::string_view path,
                             std::chrono::milliseconds timeout,
                             const ProbeTls* tls) {
  boost::system::error_code ec;
  const net::ip::address ip = net::ip::make_address(address.host, ec);
  if (ec) {
    return Status::InvalidArgument("probe address " + address.ToString() +
                                   ": " + ec.message());
  }
  net::io_context ioc;
  Exchange x{{bhttp::verb::get, std::string(path), 11}, {}, {}, {}};
  x.request.set(bhttp::field::host, address.ToString());
  x.request.set(bhttp::field::user_agent, "counterd-healthcheck");
  x.request.keep_alive(false);
  x.parser.body_limit(kMaxProbeBody);
  const tcp::endpoint endpoint(ip, address.port);

  std::unique_ptr<ssl::context> context;
  if (tls != nullptr) {
    context = std::make_unique<ssl::context>(ssl::context::tls_client);
    context->set_verify_mode(ssl::verify_none, ec);
    if (!tls->cert_file.empty() && !tls->key_file.empty()) {
      if (!context->use_certificate_chain_file(tls->cert_file, ec)) {
        context->use_private_key_file(tls->key_file, ssl::context::pem, ec);
      }
      if (ec) {
        return Status::InvalidArgument("client certificate " + tls->cert_file +
                                       ": " + ec.message());
      }
    }
  }

  // One deadline for connect, handshake, write and read together.
  if (context) {
    beast::ssl_stream<beast::tcp_stream> stream(ioc, *context);
    beast::get_lowest_layer(stream).expires_after(timeout);
    beast::get_lowest_layer(stream).async_connect(
        endpoint, [&](auto connect_ec) {
          if (connect_ec) {
            x.result = connect_ec;
            return;
          }
          x.step = "TLS handshake";
          stream.async_handshake(ssl::stream_base::client, [&](auto hs_ec) {
            if (hs_ec) {
              x.result = hs_ec;
              return;
            }
            WriteAndRead(stream, x);
          });
        });
    ioc.run();
  } else {
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    stream.async_connect(endpoint, [&](auto connect_ec) {
      if (connect_ec) {
        x.result = connect_ec;
        return;
      }
      WriteAndRead(stream, x);
    });
    ioc.run();
  }
  if (x.result) {
    return Status::Unavailable(x.step + " " + address.ToString() + ": " +
                               x.result.message());
  }
  return x.parser.get().result_int();
}

}  // namespace counterd::http
