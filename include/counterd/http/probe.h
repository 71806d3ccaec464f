// Probe: a minimal HTTP/1.1 client for `counterd healthcheck`, so the
// container image needs no curl. Blocking; thread-safe (no shared state).
#ifndef COUNTERD_HTTP_PROBE_H_
#define COUNTERD_HTTP_PROBE_H_

#include <chrono>
#include <string_view>

#include "counterd/core/result.h"
#include "counterd/http/listen_address.h"

namespace counterd::http {

// Sends "GET |path|" to |address| and returns the response's status code.
// Returns kUnavailable if the connection, the request or the response fails
// or takes longer than |timeout| in all.
Result<unsigned> ProbeStatus(const ListenAddress& address,
                             std::string_view path,
                             std::chrono::milliseconds timeout);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_PROBE_H_
