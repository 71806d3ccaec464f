// Probe: a minimal HTTP/1.1 client for `counterd healthcheck`, so the
// container image needs no curl. Blocking; thread-safe (no shared state).
#ifndef COUNTERD_HTTP_PROBE_H_
#define COUNTERD_HTTP_PROBE_H_

#include <chrono>
#include <string>
#include <string_view>

#include "counterd/core/result.h"
#include "counterd/http/listen_address.h"

namespace counterd::http {

// Probing over HTTPS. The server's certificate is not verified: the probe
// asks the local server whether it is alive, and a certificate issued for
// the service's DNS name would not match the loopback address anyway.
// With |cert_file| and |key_file| the probe presents that certificate if
// the server asks for one (mutual TLS); the server's own pair works when
// its client CA issued it and it allows client authentication.
struct ProbeTls {
  std::string cert_file;
  std::string key_file;
};

// Sends "GET |path|" to |address| (over TLS if |tls| is set) and returns
// the response's status code. Returns kUnavailable if the connection, the
// TLS handshake, the request or the response fails or takes longer than
// |timeout| in all; kInvalidArgument if the client certificate does not
// load.
Result<unsigned> ProbeStatus(const ListenAddress& address,
                             std::string_view path,
                             std::chrono::milliseconds timeout,
                             const ProbeTls* tls = nullptr);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_PROBE_H_
