// Server: counterd's HTTP/1.1 server. It listens on one address and serves
// the REST API on a pool of I/O threads until told to drain and stop.
//
// Thread-safety: Start, Drain and Stop are called from one controlling
// thread (main); local_address() from any thread.
#ifndef COUNTERD_HTTP_SERVER_H_
#define COUNTERD_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "counterd/core/result.h"
#include "counterd/http/auth.h"
#include "counterd/http/listen_address.h"
#include "counterd/service/counter_service.h"
#include "counterd/storage/counter_repository.h"

namespace counterd::http {

// Limits and timeouts; the defaults are the documented ones.
struct ServerOptions {
  ListenAddress listen{"0.0.0.0", 8080};
  unsigned threads = 1;  // I/O threads (the caller resolves "0 = cores")
  std::uint64_t max_body_bytes = std::uint64_t{64} * 1024;
  std::uint32_t max_header_bytes = 8 * 1024;
  // Time allowed from a request's first byte to its complete header: cuts
  // off clients that trickle headers (slowloris).
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};   // for the body
  std::chrono::milliseconds write_timeout{30'000};  // for each response
  std::chrono::milliseconds idle_timeout{
      60'000};  // keep-alive, between requests
  std::size_t max_connections = 1024;
  // Open connections from one client address; more get a 503 and are
  // closed, so one client cannot hold every slot. Above max_connections it
  // has no effect.
  std::size_t max_connections_per_client = 256;
  // TLS: with a certificate and key (PEM files) the listener speaks HTTPS
  // only (TLS 1.2 and 1.3). With a client CA as well, every client must
  // present a certificate signed by it. The files are polled every
  // tls_reload_interval and reloaded when their contents change; a pair
  // that does not load is refused and the previous one kept.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::chrono::milliseconds tls_reload_interval{1000};
  // Watch streams (GET /counters/{name}/watch, /watch?prefix=): at most
  // max_watchers open at once (503 too-many-watchers beyond; they count
  // toward the connection caps too); each holds at most watch_buffer
  // counters waiting to be sent (a prefix stream is reset past that); a
  // heartbeat comment after watch_heartbeat without output; the last
  // watch_window changes are kept for resuming a prefix stream exactly.
  std::size_t max_watchers = 1000;
  std::size_t watch_buffer = 1024;
  std::chrono::milliseconds watch_heartbeat{15'000};
  std::size_t watch_window = 4096;
  // What GET / and /metrics report.
  std::string version;
  std::string hostname;  // empty: $HOSTNAME, else gethostname()
  // The bearer tokens every request but the probes must present
  // (ParseTokenFile); null: authentication is off.
  std::shared_ptr<const TokenSet> tokens;
};

// What a drain achieved.
struct DrainReport {
  bool completed = false;              // no request was left in flight
  std::size_t requests_in_flight = 0;  // when the drain ended
  std::size_t connections_open = 0;    // when the drain began
};

class Server {
 public:
  // Binds, listens and starts the I/O threads. Returns kUnavailable naming
  // the address when it cannot bind (in use, not local, no permission),
  // kInvalidArgument naming the file when the TLS files do not load.
  // |service| must outlive the Server and every mutation it submitted.
  // |changes|, if not null, is the repository under |service|: its
  // committed changes feed the watch streams (SetChangeSink before the
  // first connection is accepted, SetChangeSink(nullptr) in Stop); it must
  // outlive the Server. Without it watch streams send the current state
  // only.
  static Result<std::unique_ptr<Server>> Start(
      ServerOptions options, service::CounterService& service,
      storage::CounterRepository* changes = nullptr);
  virtual ~Server() = default;

  // The address actually bound (the real port when asked for port 0).
  virtual ListenAddress local_address() const = 0;

  // Begins shutdown and waits for it: /readyz fails at once, the listener
  // closes, idle connections close, every later response says
  // "Connection: close", and requests in flight get up to |timeout| to
  // finish. Never blocks an I/O thread. Call once.
  virtual DrainReport Drain(std::chrono::milliseconds timeout) = 0;

  // Stops the I/O threads and closes every connection. Idempotent; the
  // destructor calls it. Call it (and destroy the Server) only once the
  // store runs no more completions (CounterStore::Close returned), since a
  // completion posts its response to an I/O thread.
  virtual void Stop() = 0;

  // Token reloads (the tokens file changed, or SIGHUP). ReplaceTokens puts
  // |tokens| in force for every request whose header is read from now on
  // (requests already let through finish as they were) and counts a good
  // reload; CountFailedTokenReload counts one that failed, whose caller
  // keeps the tokens in force. Both show in counterd_auth_reloads_total.
  // Thread-safe. Ignored when the server started without tokens.
  virtual void ReplaceTokens(std::shared_ptr<const TokenSet> tokens) = 0;
  virtual void CountFailedTokenReload() = 0;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_SERVER_H_
