// The two things counterd can run: the server (over a store that main
// opened) and the healthcheck probe.
#ifndef COUNTERD_APP_SERVE_H_
#define COUNTERD_APP_SERVE_H_

#include "counterd/app/config.h"
#include "counterd/app/shutdown_signals.h"
#include "counterd/app/token_file.h"
#include "counterd/http/listen_address.h"
#include "counterd/storage/counter_repository.h"
#include "counterd/storage/file_repository.h"

namespace counterd::app {

// The file backend's options |config| asks for.
storage::FileRepositoryOptions FileRepositoryOptionsFrom(const Config& config);

// What start-up found, for the "listening" line.
struct StartupReport {
  std::uint64_t counters = 0;
  std::chrono::milliseconds recovery{0};
};

// Serves |repository| over HTTP until SIGTERM/SIGINT, then drains: readiness
// off, listener closed, requests in flight finished (up to the drain
// timeout), repository closed (journal synced), I/O threads stopped. Returns
// the process exit code: 0 after a clean shutdown, 1 if the server could not
// listen or the store reported an error when closing, 2 if the TLS files do
// not load, kExitStoreFailed (3) under --on-store-failure=exit once the
// store has failed closed (noticed within about 200 ms; then the same drain
// and close). Logs each phase.
// With |tokens| (--auth-tokens-file) every request but the probes needs a
// bearer token; the file is reloaded when it changes (checked about once a
// second) and on SIGHUP. Null |tokens|: authentication is off, and a
// warning says so.
int Serve(const Config& config, storage::CounterRepository& repository,
          const StartupReport& startup, ShutdownSignals& signals,
          TokenFile* tokens);

// `counterd healthcheck`: GET /readyz on |config.listen| (a wildcard
// address probes loopback) with a 2 s timeout, over HTTPS if
// |config.probe_tls|. Returns 0 on 200, else 1 (with one line on stderr).
int RunHealthcheck(const Config& config);

}  // namespace counterd::app

#endif  // COUNTERD_APP_SERVE_H_
