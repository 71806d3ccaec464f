#include "transport/connection_registry.h"

#include <utility>

namespace counterd::http {

std::optional<std::uint64_t> ConnectionRegistry::Add(
    std::weak_ptr<SessionBase> session, const boost::asio::ip::address& client,
    ConnectionRefusal* refusal) {
  std::lock_guard lock(mu_);
  if (sessions_.size() >= max_connections_) {
    *refusal = ConnectionRefusal::kMaxConnections;
    return std::nullopt;
  }
  std::size_t& from_client = per_client_[client];
  if (from_client >= max_per_client_) {
    *refusal = ConnectionRefusal::kMaxConnectionsPerClient;
    return std::nullopt;  // from_client >= 1: the entry was there before
  }
  ++from_client;
  const std::uint64_t id = next_id_++;
  sessions_.emplace(id, Entry{std::move(session), client});
  return id;
}

void ConnectionRegistry::Remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  const auto client = per_client_.find(it->second.client);
  if (client != per_client_.end() && --client->second == 0) {
    per_client_.erase(client);
  }
  sessions_.erase(it);
}

void ConnectionRegistry::RequestStarted() {
  requests_.fetch_add(1, std::memory_order_relaxed);
}

void ConnectionRegistry::RequestFinished() {
  if (requests_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // A waiter checks requests_ under mu_ and then waits, atomically
  // releasing it; taking mu_ here orders this notify after that wait
  // began (or after the check that already saw zero): no lost wake-up.
  { std::lock_guard lock(mu_); }
  no_requests_.notify_all();
}

std::size_t ConnectionRegistry::open() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::size_t ConnectionRegistry::requests_in_flight() const {
  return requests_.load(std::memory_order_acquire);
}

std::vector<std::weak_ptr<SessionBase>> ConnectionRegistry::Sessions() const {
  std::lock_guard lock(mu_);
  std::vector<std::weak_ptr<SessionBase>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, entry] : sessions_) out.push_back(entry.session);
  return out;
}

bool ConnectionRegistry::WaitForNoRequests(
    std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return no_requests_.wait_until(lock, deadline,
                                 [this] { return requests_.load() == 0; });
}

}  // namespace counterd::http
