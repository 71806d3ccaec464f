// ConnectionRegistry: the server's view of its connections: how many are
// open (capped at --max-connections, and at --max-connections-per-client
// from one client address), which ones to tell about a drain, and how many
// requests are in flight, which a drain waits for.
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

#include <boost/asio/ip/address.hpp>

#include "api/metrics.h"
#include "api/server_status.h"

namespace counterd::http {

class SessionBase;

class ConnectionRegistry final : public ConnectionGauges {
 public:
  // |max_per_client| above |max_connections| has no effect.
  ConnectionRegistry(std::size_t max_connections, std::size_t max_per_client)
      : max_connections_(max_connections),
        max_per_client_(max_per_client > 0 ? max_per_client : 1) {}
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  // Registers a new connection from |client|. nullopt, with |*refusal|
  // set, when max_connections are open, or max_per_client from |client|.
  std::optional<std::uint64_t> Add(std::weak_ptr<SessionBase> session,
                                   const boost::asio::ip::address& client,
                                   ConnectionRefusal* refusal);
  void Remove(std::uint64_t id);

  // Brackets one request, from its first byte to its response written.
  void RequestStarted();
  void RequestFinished();

  std::size_t open() const override;
  std::size_t requests_in_flight() const override;
  std::vector<std::weak_ptr<SessionBase>> Sessions() const;

  // Waits (on the calling thread; never call it on an I/O thread) until no
  // request is in flight or |deadline| passes. True if none is in flight.
  bool WaitForNoRequests(std::chrono::steady_clock::time_point deadline);

 private:
  struct Entry {
    std::weak_ptr<SessionBase> session;
    boost::asio::ip::address client;
  };

  const std::size_t max_connections_;
  const std::size_t max_per_client_;
  mutable std::mutex mu_;
  std::condition_variable no_requests_;  // signalled when requests_ hits 0
  std::uint64_t next_id_ = 0;            // GUARDED_BY(mu_)
  std::atomic<std::size_t> requests_{0};
  std::unordered_map<std::uint64_t, Entry> sessions_;  // GUARDED_BY(mu_)
  // Open connections per client address; no entry for none.
  std::unordered_map<boost::asio::ip::address, std::size_t>
      per_client_;  // GUARDED_BY(mu_)
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_CONNECTION_REGISTRY_H_
