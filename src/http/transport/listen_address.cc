#include "counterd/http/listen_address.h"

#include <charconv>
#include <string>

#include <boost/asio/ip/address.hpp>

namespace counterd::http {

std::string ListenAddress::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress ListenAddress::ForConnecting() const {
  if (host == "0.0.0.0") return {"127.0.0.1", port};
  if (host == "::") return {"::1", port};
  return *this;
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("listen address \"" + std::string(text) +
                                   "\" must be HOST:PORT");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(
      port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() ||
      end != port_text.data() + port_text.size() || port > 65535) {
    return Status::InvalidArgument("listen address \"" + std::string(text) +
                                   "\" has no valid port (0-65535)");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("listen address \"" + std::string(text) +
                                   "\": write IPv6 addresses as [ADDR]:PORT");
  }
  std::string numeric(host == "localhost" ? "127.0.0.1" : host);
  boost::system::error_code error;
  const boost::asio::ip::address address =
      boost::asio::ip::make_address(numeric, error);
  if (error) {
    return Status::InvalidArgument("listen address \"" + std::string(text) +
                                   "\": host must be an IP address");
  }
  return ListenAddress{address.to_string(), static_cast<std::uint16_t>(port)};
}

}  // namespace counterd::http
