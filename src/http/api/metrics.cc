#include "api/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace counterd::http {
namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  if (ec != std::errc()) return "NaN";
  return {buf.data(), end};
}

void AppendHeader(std::string& out, std::string_view name,
                  std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void AppendSample(std::string& out, std::string_view name,
                  std::string_view labels, std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

void AppendGauge(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help, std::string_view value) {
  AppendHeader(out, name, type, help);
  AppendSample(out, name, "", value);
}

// The _bucket/_sum/_count series of one histogram; |labels| is "" or
// 'route="/x"' (without braces).
void AppendHistogramSeries(std::string& out, std::string_view name,
                           const std::string& labels,
                           const Histogram::Snapshot& s) {
  if (s.cumulative.size() != s.bounds.size() + 1) return;  // none kept
  const std::string prefix = labels.empty() ? "" : labels + ",";
  for (std::size_t i = 0; i <= s.bounds.size(); ++i) {
    const std::string le =
        i < s.bounds.size() ? FormatDouble(s.bounds[i]) : "+Inf";
    std::string bucket(name);
    bucket += "_bucket";
    std::string le_label = prefix;
    le_label += "le=\"";
    le_label += le;
    le_label += '"';
    AppendSample(out, bucket, le_label, std::to_string(s.cumulative[i]));
  }
  AppendSample(out, std::string(name) + "_sum", labels, FormatDouble(s.sum));
  AppendSample(out, std::string(name) + "_count", labels,
               std::to_string(s.count));
}

void AppendAuth(std::string& out, const AuthCounts& auth) {
  AppendGauge(out, "counterd_auth_enabled", "gauge",
              "1 when requests need a bearer token (--auth-tokens-file).",
              auth.enabled ? "1" : "0");
  AppendHeader(out, "counterd_auth_failures_total", "counter",
               "Requests refused by authentication (401: missing, malformed, "
               "unknown) or authorisation (403: forbidden), by reason.");
  for (std::size_t i = 0; i < kAuthFailureCount; ++i) {
    AppendSample(
        out, "counterd_auth_failures_total",
        "reason=\"" +
            std::string(AuthFailureLabel(static_cast<AuthFailure>(i))) + "\"",
        std::to_string(auth.failures[i]));
  }
  AppendHeader(out, "counterd_auth_reloads_total", "counter",
               "Reloads of the tokens file (on change or SIGHUP), by result; "
               "a failed reload keeps the previous tokens.");
  AppendSample(out, "counterd_auth_reloads_total", "result=\"ok\"",
               std::to_string(auth.reloads_ok));
  AppendSample(out, "counterd_auth_reloads_total", "result=\"error\"",
               std::to_string(auth.reloads_error));
}

}  // namespace

std::string_view AuthFailureLabel(AuthFailure reason) {
  switch (reason) {
    case AuthFailure::kMissing:
      return "missing";
    case AuthFailure::kMalformed:
      return "malformed";
    case AuthFailure::kUnknown:
      return "unknown";
    case AuthFailure::kForbidden:
      return "forbidden";
  }
  return "unknown";
}

void AuthMetrics::CountFailure(AuthFailure reason) {
  failures_[static_cast<std::size_t>(reason)].fetch_add(
      1, std::memory_order_relaxed);
}

void AuthMetrics::CountReload(bool ok) {
  (ok ? reloads_ok_ : reloads_error_).fetch_add(1, std::memory_order_relaxed);
}

AuthCounts AuthMetrics::Read() const {
  AuthCounts counts;
  counts.enabled = enabled_.load();
  for (std::size_t i = 0; i < kAuthFailureCount; ++i) {
    counts.failures[i] = failures_[i].load(std::memory_order_relaxed);
  }
  counts.reloads_ok = reloads_ok_.load(std::memory_order_relaxed);
  counts.reloads_error = reloads_error_.load(std::memory_order_relaxed);
  return counts;
}

HttpMetrics::HttpMetrics()
    : requests_(std::make_unique<std::atomic<std::uint64_t>[]>(
          kRouteCount * kMethodCount * kStatusSlots)) {
  durations_.reserve(kRouteCount);
  for (std::size_t i = 0; i < kRouteCount; ++i) {
    durations_.push_back(
        std::make_unique<Histogram>(Histogram::LatencySecondsBounds()));
  }
}

std::size_t HttpMetrics::Index(Route route, Method method, unsigned status) {
  const unsigned slot =
      std::clamp(status, kMinStatus, kMinStatus + kStatusSlots - 1) -
      kMinStatus;
  return (static_cast<std::size_t>(route) * kMethodCount +
          static_cast<std::size_t>(method)) *
             kStatusSlots +
         slot;
}

void HttpMetrics::Record(Route route, Method method, unsigned status,
                         double seconds) {
  requests_[Index(route, method, status)].fetch_add(1,
                                                    std::memory_order_relaxed);
  durations_[static_cast<std::size_t>(route)]->Observe(seconds);
}

std::uint64_t HttpMetrics::RequestCount(Route route, Method method,
                                        unsigned status) const {
  return requests_[Index(route, method, status)].load(
      std::memory_order_relaxed);
}

void HttpMetrics::RecordConnectionRefused(ConnectionRefusal reason) {
  refused_[static_cast<std::size_t>(reason)].fetch_add(
      1, std::memory_order_relaxed);
}

std::uint64_t HttpMetrics::ConnectionsRefused(ConnectionRefusal reason) const {
  return refused_[static_cast<std::size_t>(reason)].load(
      std::memory_order_relaxed);
}

void HttpMetrics::AppendTo(std::string& out) const {
  AppendHeader(out, "counterd_http_requests_total", "counter",
               "HTTP requests answered, by route template, method and "
               "status code.");
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    for (std::size_t m = 0; m < kMethodCount; ++m) {
      for (unsigned s = 0; s < kStatusSlots; ++s) {
        const auto route = static_cast<Route>(r);
        const auto method = static_cast<Method>(m);
        const std::uint64_t n = RequestCount(route, method, kMinStatus + s);
        if (n == 0) continue;
        AppendSample(out, "counterd_http_requests_total",
                     "route=\"" + EscapeLabel(RouteTemplate(route)) +
                         "\",method=\"" + std::string(MethodName(method)) +
                         "\",code=\"" + std::to_string(kMinStatus + s) + "\"",
                     std::to_string(n));
      }
    }
  }
  AppendHeader(out, "counterd_http_request_duration_seconds", "histogram",
               "Time from a complete request header to the response "
               "written, by route template.");
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    const Histogram::Snapshot s = durations_[r]->Read();
    if (s.count == 0) continue;
    AppendHistogramSeries(
        out, "counterd_http_request_duration_seconds",
        "route=\"" + EscapeLabel(RouteTemplate(static_cast<Route>(r))) + "\"",
        s);
  }
  AppendHeader(out, "counterd_http_connections_refused_total", "counter",
               "Connections answered 503 and closed before their first "
               "request, by the cap they met.");
  AppendSample(
      out, "counterd_http_connections_refused_total",
      "reason=\"max-connections\"",
      std::to_string(ConnectionsRefused(ConnectionRefusal::kMaxConnections)));
  AppendSample(out, "counterd_http_connections_refused_total",
               "reason=\"max-connections-per-client\"",
               std::to_string(ConnectionsRefused(
                   ConnectionRefusal::kMaxConnectionsPerClient)));
  if (!tls_.enabled.load(std::memory_order_relaxed)) return;
  AppendGauge(out, "counterd_tls_handshake_failures_total", "counter",
              "TLS handshakes that failed or timed out.",
              std::to_string(tls_.handshake_failures.load()));
  AppendHeader(out, "counterd_tls_certificate_reloads_total", "counter",
               "Certificate and key files reloaded after they changed, by "
               "result (error: refused, the previous pair kept).");
  AppendSample(out, "counterd_tls_certificate_reloads_total", "result=\"ok\"",
               std::to_string(tls_.reloads_ok.load()));
  AppendSample(out, "counterd_tls_certificate_reloads_total",
               "result=\"error\"", std::to_string(tls_.reloads_error.load()));
  AppendGauge(out, "counterd_tls_certificate_expiry_timestamp_seconds", "gauge",
              "notAfter of the certificate being served, in Unix seconds.",
              std::to_string(tls_.certificate_expiry_seconds.load()));
}

std::string RenderMetrics(const HttpMetrics& http,
                          const service::ServiceStats& service,
                          const ServerGauges& gauges) {
  std::string out;
  out.reserve(std::size_t{16} * 1024);
  http.AppendTo(out);

  const storage::RepositoryStats& stats = service.repository;

  AppendHeader(out, "counterd_commit_batch_size", "histogram",
               "Transactions per group commit that wrote (one journal "
               "record and one fdatasync, or one database transaction).");
  AppendHistogramSeries(out, "counterd_commit_batch_size", "",
                        stats.batch_sizes);
  AppendHeader(out, "counterd_fsync_duration_seconds", "histogram",
               "Duration of each journal fdatasync (file backend) or "
               "COMMIT (postgres backend).");
  AppendHistogramSeries(out, "counterd_fsync_duration_seconds", "",
                        stats.commit_seconds);

  AppendGauge(out, "counterd_fsyncs_total", "counter",
              "Journal fdatasyncs (file backend) or COMMITs (postgres).",
              std::to_string(stats.fsyncs));
  AppendGauge(out, "counterd_mutations_total", "counter",
              "Transactions acknowledged durable that changed state.",
              std::to_string(stats.mutations));
  AppendGauge(out, "counterd_commits_total", "counter",
              "Group commits written (journal records or database "
              "transactions).",
              std::to_string(stats.commits));
  AppendGauge(out, "counterd_counters", "gauge", "Counters in the store.",
              std::to_string(stats.counters));
  AppendGauge(out, "counterd_journal_bytes", "gauge",
              "Size of the current journal file in bytes.",
              std::to_string(stats.journal_bytes));
  AppendGauge(out, "counterd_idempotency_keys", "gauge",
              "Retained idempotency records.",
              std::to_string(stats.idempotency_keys));
  AppendGauge(out, "counterd_expired_total", "counter",
              "Counters removed after their expiry.",
              std::to_string(stats.expired));
  AppendGauge(out, "counterd_snapshot_bytes", "gauge",
              "Size of the last snapshot written or read (file backend).",
              std::to_string(stats.snapshot_bytes));
  if (stats.backend == "file") {
    AppendGauge(out, "counterd_data_dir_free_bytes", "gauge",
                "Bytes free for counterd on the data dir's file system "
                "(statvfs, at most about a second old).",
                std::to_string(stats.data_dir_free_bytes));
    AppendGauge(out, "counterd_data_dir_size_bytes", "gauge",
                "Bytes counterd keeps in its data dir: the current journal "
                "and the last snapshot.",
                std::to_string(stats.data_dir_size_bytes));
    AppendGauge(out, "counterd_min_free_bytes", "gauge",
                "Free bytes under which writes are refused (507); 0: off.",
                std::to_string(stats.min_free_bytes));
  }
  AppendGauge(out, "counterd_low_disk", "gauge",
              "1 while the data dir's free space is under --min-free-bytes "
              "and writes are refused with 507.",
              stats.low_disk ? "1" : "0");
  AppendHeader(out, "counterd_writes_refused_total", "counter",
               "Writes refused before they reached the store, by reason.");
  AppendSample(out, "counterd_writes_refused_total", "reason=\"low-disk\"",
               std::to_string(stats.writes_refused_low_disk));
  AppendGauge(out, "counterd_recovery_duration_seconds", "gauge",
              "How long start-up recovery took.",
              FormatDouble(stats.recovery_seconds));
  AppendHeader(out, "counterd_backend_info", "gauge",
               "The storage backend; the value is always 1.");
  AppendSample(out, "counterd_backend_info",
               "backend=\"" + EscapeLabel(stats.backend) + "\"", "1");
  if (stats.backend == "postgres") {
    AppendGauge(out, "counterd_postgres_reconnects_total", "counter",
                "Database connections re-established after a loss.",
                std::to_string(stats.reconnects));
  }
  AppendGauge(out, "counterd_backend_up", "gauge",
              "1 while the backend can write (postgres: connected to a "
              "writable primary).",
              stats.up && !stats.failed ? "1" : "0");
  AppendGauge(out, "counterd_store_failed", "gauge",
              "1 if the store failed closed and refuses writes.",
              stats.failed ? "1" : "0");
  AppendGauge(out, "counterd_ready", "gauge", "1 while /readyz answers 200.",
              gauges.ready ? "1" : "0");
  AppendGauge(out, "counterd_http_connections", "gauge",
              "Open HTTP connections.",
              std::to_string(gauges.open_connections));
  AppendGauge(out, "counterd_http_requests_in_flight", "gauge",
              "Requests received (first byte) but not yet answered.",
              std::to_string(gauges.requests_in_flight));
  AppendHeader(out, "counterd_build_info", "gauge",
               "Build information; the value is always 1.");
  AppendSample(out, "counterd_build_info",
               "version=\"" + EscapeLabel(gauges.version) + "\"", "1");
  AppendGauge(out, "counterd_uptime_seconds", "gauge",
              "Seconds since the process started serving.",
              FormatDouble(gauges.uptime_seconds));
  AppendGauge(out, "counterd_watchers", "gauge",
              "Open watch streams (Server-Sent Events).",
              std::to_string(gauges.watch.watchers));
  AppendGauge(out, "counterd_watch_events_total", "counter",
              "Events sent to watch streams (counter states and deletes).",
              std::to_string(gauges.watch.events));
  AppendGauge(out, "counterd_watch_resets_total", "counter",
              "Watch streams that had to start over from current state "
              "(fell behind their buffer, a gap, or an unknown "
              "Last-Event-ID).",
              std::to_string(gauges.watch.resets));
  AppendAuth(out, gauges.auth);
  return out;
}

}  // namespace counterd::http
