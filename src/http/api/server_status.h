// ServerStatus: what the API reports about the server it runs in (GET /,
// /readyz, /metrics): its identity, the draining flag, the request metrics
// and the connection gauges. The transport room owns the one instance and
// keeps it current; handlers only read it.
//
// Thread-safety: the identity is immutable; the flag is atomic; HttpMetrics
// and the ConnectionGauges implementation are thread-safe.
#ifndef COUNTERD_HTTP_API_SERVER_STATUS_H_
#define COUNTERD_HTTP_API_SERVER_STATUS_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

#include "api/metrics.h"
#include "counterd/core/clock.h"

namespace counterd::http {

// Open connections and requests in flight, as the transport counts them.
class ConnectionGauges {
 public:
  virtual std::size_t open() const = 0;
  virtual std::size_t requests_in_flight() const = 0;

 protected:
  ~ConnectionGauges() = default;
};

// The watch streams' counts, as the transport keeps them.
class WatchGauges {
 public:
  virtual WatchCounts ReadWatch() const = 0;

 protected:
  ~WatchGauges() = default;
};

struct ServerIdentity {
  std::string version;
  std::string hostname;
  std::chrono::system_clock::time_point started_at =
      std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point started_steady =
      std::chrono::steady_clock::now();
};

struct ServerStatus {
  // |gauges| and |wall_clock| must outlive this ServerStatus.
  ServerStatus(ServerIdentity id, const ConnectionGauges& gauges,
               const Clock& wall_clock)
      : identity(std::move(id)), connections(gauges), clock(wall_clock) {}
  ServerStatus(const ServerStatus&) = delete;
  ServerStatus& operator=(const ServerStatus&) = delete;
  ~ServerStatus() = default;

  const ServerIdentity identity;
  // Set once when shutdown begins: /readyz fails and responses close
  // their connections.
  std::atomic<bool> draining{false};
  HttpMetrics metrics;
  // Counted by the authorizer (failures) and the server (token reloads).
  // Mutable: the handlers count per-operation refusals of a batch on the
  // const status they are given; the counters are atomics.
  mutable AuthMetrics auth;
  const ConnectionGauges& connections;
  // Set once by the transport before serving; null: no watch streams (a
  // ServerStatus built for tests), shown as zeros.
  const WatchGauges* watch = nullptr;
  // Wall-clock time for what a response says about expiries (Retry-After,
  // RateLimit).
  const Clock& clock;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_SERVER_STATUS_H_
