// ServerState: what the listener, the sessions and the handlers share: the
// options, the service, the process's identity and start time, the draining
// flag, the connection registry and the request metrics.
//
// Thread-safety: the mutable parts are an atomic and two thread-safe
// classes. Sessions hold it by shared_ptr so that a session outliving the
// Server object (its last handler still queued) never dangles.
#ifndef COUNTERD_HTTP_SERVER_STATE_H_
#define COUNTERD_HTTP_SERVER_STATE_H_

#include <atomic>
#include <chrono>
#include <utility>

#include "connection_registry.h"
#include "counterd/http/server.h"
#include "counterd/service/counter_service.h"
#include "metrics.h"

namespace counterd::http {

struct ServerState {
  // |service| must outlive this ServerState.
  ServerState(ServerOptions opts, service::CounterService& svc)
      : options(std::move(opts)),
        service(svc),
        connections(options.max_connections) {}
  ServerState(const ServerState&) = delete;
  ServerState& operator=(const ServerState&) = delete;

  const ServerOptions options;
  service::CounterService& service;
  const std::chrono::system_clock::time_point started_at =
      std::chrono::system_clock::now();
  const std::chrono::steady_clock::time_point started_steady =
      std::chrono::steady_clock::now();

  // Set once when shutdown begins: /readyz fails and responses close
  // their connections.
  std::atomic<bool> draining{false};
  ConnectionRegistry connections;
  HttpMetrics metrics;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_SERVER_STATE_H_
