// The two things counterd can run: the server (over a store that main
// opened) and the healthcheck probe.
#ifndef COUNTERD_APP_SERVE_H_
#define COUNTERD_APP_SERVE_H_

#include "counterd/app/config.h"
#include "counterd/app/shutdown_signals.h"
#include "counterd/http/listen_address.h"
#include "counterd/storage/counter_store.h"

namespace counterd::app {

// The storage options |config| asks for.
storage::StoreOptions StoreOptionsFrom(const Config& config);

// Serves |store| over HTTP until SIGTERM/SIGINT, then drains: readiness
// off, listener closed, requests in flight finished (up to the drain
// timeout), store closed (journal synced), I/O threads stopped. Returns the
// process exit code: 0 after a clean shutdown, 1 if the server could not
// listen or the store reported an error when closing, 2 if the TLS files
// do not load. Logs each phase.
int Serve(const Config& config, storage::CounterStore& store,
          ShutdownSignals& signals);

// `counterd healthcheck`: GET /readyz on |config.listen| (a wildcard
// address probes loopback) with a 2 s timeout, over HTTPS if
// |config.probe_tls|. Returns 0 on 200, else 1 (with one line on stderr).
int RunHealthcheck(const Config& config);

}  // namespace counterd::app

#endif  // COUNTERD_APP_SERVE_H_
