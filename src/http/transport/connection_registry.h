// ConnectionRegistry: the server's view of its connections: how many are
// open (capped at --max-connections), which ones to tell about a drain, and
// how many requests are in flight, which a drain waits for.
// Thread-safe. Holds only weak references: sessions own themselves. The
// request count is an atomic, so the per-request calls take the lock only
// when the count drops to zero (to wake a drain).
#ifndef COUNTERD_HTTP_TRANSPORT_CONNECTION_REGISTRY_H_
#define COUNTERD_HTTP_TRANSPORT_CONNECTION_REGISTRY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "api/server_status.h"

namespace counterd::http {

class Session;

class ConnectionRegistry final : public ConnectionGauges {
 public:
  explicit ConnectionRegistry(std::size_t max_connections)
      : max_connections_(max_connections) {}
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  // Registers a new connection; nullopt when max_connections are open.
  std::optional<std::uint64_t> Add(std::weak_ptr<Session> session);
  void Remove(std::uint64_t id);

  // Brackets one request, from its first byte to its response written.
  void RequestStarted();
  void RequestFinished();

  std::size_t open() const override;
  std::size_t requests_in_flight() const override;
  std::vector<std::weak_ptr<Session>> Sessions() const;

  // Waits (on the calling thread; never call it on an I/O thread) until no
  // request is in flight or |deadline| passes. True if none is in flight.
  bool WaitForNoRequests(std::chrono::steady_clock::time_point deadline);

 private:
  const std::size_t max_connections_;
  mutable std::mutex mu_;
  std::condition_variable no_requests_;  // signalled when requests_ hits 0
  std::uint64_t next_id_ = 0;            // GUARDED_BY(mu_)
  std::atomic<std::size_t> requests_{0};
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>>
      sessions_;  // GUARDED_BY(mu_)
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_CONNECTION_REGISTRY_H_
