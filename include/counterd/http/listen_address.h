// ListenAddress: where the server listens or a probe connects, as given on
// the command line ("0.0.0.0:8080", "[::1]:8080", "localhost:8080"). A value
// type; thread-compatible.
#ifndef COUNTERD_HTTP_LISTEN_ADDRESS_H_
#define COUNTERD_HTTP_LISTEN_ADDRESS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "counterd/core/result.h"

namespace counterd::http {

struct ListenAddress {
  // A numeric IPv4 or IPv6 address, without brackets. Host names are not
  // resolved (a static binary has no NSS); "localhost" is the one alias.
  std::string host;
  std::uint16_t port = 0;  // 0: any free port

  // "127.0.0.1:8080" or "[::1]:8080".
  std::string ToString() const;
  // The address to connect to for reaching a server listening here: the
  // loopback address of the same family for a wildcard host.
  ListenAddress ForConnecting() const;

  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// Parses "HOST:PORT". Returns kInvalidArgument naming the problem for a
// missing or out-of-range port or a host that is not an IP address.
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_LISTEN_ADDRESS_H_
