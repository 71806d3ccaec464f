// ServerState: what the listener and the sessions share: the options, the
// service, the connection registry, the ServerStatus the API reports
// (identity, draining flag, request metrics), the Authorizer that holds
// the bearer tokens in force and the WatchRoom of the watch streams.
//
// Thread-safety: the mutable parts are thread-safe classes. Sessions hold
// it by shared_ptr so that a session outliving the Server object (its last
// handler still queued) never dangles.
#ifndef COUNTERD_HTTP_TRANSPORT_SERVER_STATE_H_
#define COUNTERD_HTTP_TRANSPORT_SERVER_STATE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "api/server_status.h"
#include "auth/authorizer.h"
#include "counterd/http/server.h"
#include "counterd/service/counter_service.h"
#include "stream/watch_hub.h"
#include "transport/connection_registry.h"

namespace counterd::http {

// The watch streams' shared parts: the hub the repository feeds, and the
// slots --max-watchers allows. Thread-safe.
class WatchRoom final : public WatchGauges {
 public:
  // |last_seq|: the repository's commit sequence number now.
  WatchRoom(const ServerOptions& options, std::uint64_t last_seq)
      : hub_(options.watch_window, last_seq), max_(options.max_watchers) {}

  WatchHub& hub() { return hub_; }

  // Takes a slot for one stream; false when all are taken.
  bool TryAcquire() {
    std::size_t open = open_.load();
    do {
      if (open >= max_) return false;
    } while (!open_.compare_exchange_weak(open, open + 1));
    return true;
  }
  void Release() { open_.fetch_sub(1); }

  WatchCounts ReadWatch() const override {
    const WatchHubStats stats = hub_.Stats();
    return {open_.load(), stats.events, stats.resets};
  }

 private:
  WatchHub hub_;
  const std::size_t max_;
  std::atomic<std::size_t> open_{0};
};

struct ServerState {
  // |svc| must outlive this ServerState.
  ServerState(ServerOptions opts, service::CounterService& svc)
      : options(std::move(opts)),
        service(svc),
        connections(options.max_connections,
                    options.max_connections_per_client),
        status(ServerIdentity{options.version, options.hostname}, connections,
               clock),
        authorizer(options.tokens, status.auth),
        watch(options, svc.Stats().repository.last_seq) {
    status.watch = &watch;
  }
  ServerState(const ServerState&) = delete;
  ServerState& operator=(const ServerState&) = delete;

  const ServerOptions options;
  service::CounterService& service;
  const SystemClock clock;
  ConnectionRegistry connections;
  ServerStatus status;
  Authorizer authorizer;
  WatchRoom watch;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_SERVER_STATE_H_
