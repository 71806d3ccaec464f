// HttpMetrics counts requests by route template, method and status and
// times them by route; RenderMetrics writes everything /metrics shows in the
// Prometheus text format (version 0.0.4). Record() is lock-free and
// thread-safe; rendering reads racy-but-monotonic counters, which
// Prometheus tolerates.
#ifndef COUNTERD_HTTP_API_METRICS_H_
#define COUNTERD_HTTP_API_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/router.h"
#include "counterd/core/histogram.h"
#include "counterd/service/counter_service.h"

namespace counterd::http {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Why a connection was refused (503) before its first request.
enum class ConnectionRefusal {
  kMaxConnections,           // --max-connections are open
  kMaxConnectionsPerClient,  // --max-connections-per-client from its address
};
inline constexpr std::size_t kConnectionRefusalCount = 2;

// TLS counters, kept by the transport; shown only when TLS is on.
struct TlsMetrics {
  std::atomic<bool> enabled{false};
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_error{0};
  // notAfter of the certificate being served, in Unix seconds.
  std::atomic<std::int64_t> certificate_expiry_seconds{0};
};

class HttpMetrics {
 public:
  HttpMetrics();
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;
  ~HttpMetrics() = default;

  // |status| is the HTTP status sent (100..599); |seconds| the time from
  // the complete request header to the response written.
  void Record(Route route, Method method, unsigned status, double seconds);

  std::uint64_t RequestCount(Route route, Method method, unsigned status) const;

  void RecordConnectionRefused(ConnectionRefusal reason);
  std::uint64_t ConnectionsRefused(ConnectionRefusal reason) const;

  TlsMetrics& tls() { return tls_; }
  const TlsMetrics& tls() const { return tls_; }

  // Appends counterd_http_requests_total,
  // counterd_http_request_duration_seconds,
  // counterd_http_connections_refused_total and, with TLS on,
  // counterd_tls_handshake_failures_total,
  // counterd_tls_certificate_reloads_total and
  // counterd_tls_certificate_expiry_timestamp_seconds.
  void AppendTo(std::string& out) const;

 private:
  static constexpr unsigned kMinStatus = 100;
  static constexpr unsigned kStatusSlots = 500;  // 100..599
  static std::size_t Index(Route route, Method method, unsigned status);

  std::unique_ptr<std::atomic<std::uint64_t>[]> requests_;
  std::vector<std::unique_ptr<Histogram>> durations_;  // one per route
  std::array<std::atomic<std::uint64_t>, kConnectionRefusalCount> refused_{};
  TlsMetrics tls_;
};

// Why a request was refused by authentication or authorisation: the
// label set of counterd_auth_failures_total, fixed so series stay bounded.
enum class AuthFailure {
  kMissing,    // no bearer credentials (no Authorization, another scheme)
  kMalformed,  // "Bearer" with an empty or ill-formed token, or sent twice
  kUnknown,    // a well-formed token whose hash is not in the tokens file
  kForbidden,  // a known token without the scope or prefix (403)
};
inline constexpr std::size_t kAuthFailureCount = 4;
std::string_view AuthFailureLabel(AuthFailure reason);

// A snapshot of AuthMetrics for rendering.
struct AuthCounts {
  bool enabled = false;
  std::array<std::uint64_t, kAuthFailureCount> failures{};
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_error = 0;
};

// Authentication counters; lock-free and thread-safe. Only counts and the
// fixed labels above: never a token, a hash or a token name.
class AuthMetrics {
 public:
  void set_enabled(bool enabled) { enabled_.store(enabled); }
  void CountFailure(AuthFailure reason);
  void CountReload(bool ok);
  AuthCounts Read() const;

 private:
  std::atomic<bool> enabled_{false};
  std::array<std::atomic<std::uint64_t>, kAuthFailureCount> failures_{};
  std::atomic<std::uint64_t> reloads_ok_{0};
  std::atomic<std::uint64_t> reloads_error_{0};
};

// Watch streams (src/http/stream), as the transport counts them.
struct WatchCounts {
  std::uint64_t watchers = 0;  // open streams
  std::uint64_t events = 0;    // events sent to watchers
  std::uint64_t resets = 0;    // streams that had to resynchronise
};

// Process-level gauges the server knows.
struct ServerGauges {
  std::string_view version;
  bool ready = false;
  std::uint64_t open_connections = 0;
  std::uint64_t requests_in_flight = 0;
  double uptime_seconds = 0;
  AuthCounts auth;
  WatchCounts watch;
};

// The whole /metrics page.
std::string RenderMetrics(const HttpMetrics& http,
                          const service::ServiceStats& service,
                          const ServerGauges& gauges);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_METRICS_H_
