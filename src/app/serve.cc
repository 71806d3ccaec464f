#include "counterd/app/serve.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "counterd/app/logging.h"
#include "counterd/app/version.h"
#include "counterd/http/probe.h"
#include "counterd/http/server.h"
#include "counterd/service/counter_service.h"

namespace counterd::app {
namespace {

constexpr std::chrono::milliseconds kHealthcheckTimeout{2000};

http::ServerOptions ServerOptionsFrom(const Config& config) {
  http::ServerOptions options;
  options.listen = config.listen;
  options.threads = config.threads != 0
                        ? config.threads
                        : std::max(1u, std::thread::hardware_concurrency());
  options.max_body_bytes = config.max_body_bytes;
  options.max_header_bytes = config.max_header_bytes;
  options.header_timeout = config.header_timeout;
  options.read_timeout = config.read_timeout;
  options.write_timeout = config.write_timeout;
  options.idle_timeout = config.idle_timeout;
  options.max_connections = config.max_connections;
  options.max_connections_per_client = config.max_connections_per_client;
  options.tls_cert_file = config.tls_cert_file;
  options.tls_key_file = config.tls_key_file;
  options.tls_client_ca_file = config.tls_client_ca_file;
  options.version = std::string(kVersion);
  return options;
}

// The line tests and operators look for; its shape is part of the
// interface (see README.md, "HTTP API").
void LogListening(const Config& config, const http::ListenAddress& bound,
                  const storage::RecoveryInfo& recovery) {
  const std::string data_dir = LogValue(config.data_dir);
  const auto recovery_ms = recovery.duration.count();
  if (config.log_format == LogFormat::kJson) {
    spdlog::info(
        "listening listen={} version={} data_dir={} counters={} "
        "recovery_ms={}",
        bound.ToString(), kVersion, data_dir, recovery.counters, recovery_ms);
  } else {
    spdlog::info(
        "counterd {} listening on {} data_dir={} counters={} recovery_ms={}",
        kVersion, bound.ToString(), data_dir, recovery.counters, recovery_ms);
  }
}

std::int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

storage::StoreOptions StoreOptionsFrom(const Config& config) {
  storage::StoreOptions options;
  options.data_dir = config.data_dir;
  options.compaction_threshold_bytes = config.compaction_threshold_bytes;
  options.idempotency_retention =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          config.idempotency_retention);
  return options;
}

int Serve(const Config& config, storage::CounterStore& store,
          ShutdownSignals& signals) {
  service::CounterService service(store);
  Result<std::unique_ptr<http::Server>> server =
      http::Server::Start(ServerOptionsFrom(config), service);
  if (!server) {
    spdlog::error("cannot serve: {}", server.error().message());
    if (Status closed = store.Close(); !closed.ok()) {
      spdlog::error("closing the store: {}", closed.ToString());
    }
    // A listen address or TLS file that is wrong is bad usage (2), not a
    // runtime failure.
    return server.error().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  LogListening(config, (*server)->local_address(), store.Recovery());

  const std::string_view signal = signals.Wait();
  const auto started = std::chrono::steady_clock::now();
  spdlog::info("shutdown: {} received; draining signal={} drain_timeout_ms={}",
               signal, signal, config.drain_timeout.count());

  const http::DrainReport drained = (*server)->Drain(config.drain_timeout);
  if (drained.completed) {
    spdlog::info("shutdown: requests drained connections={} took_ms={}",
                 drained.connections_open, MillisSince(started));
  } else {
    spdlog::warn(
        "shutdown: drain timeout passed with requests in flight "
        "requests_in_flight={} took_ms={}",
        drained.requests_in_flight, MillisSince(started));
  }

  // Commits what is queued and syncs the journal; completions that still
  // arrive are posted to the I/O threads, which keep running until Stop.
  const Status closed = store.Close();
  if (closed.ok()) {
    spdlog::info("shutdown: store closed took_ms={}", MillisSince(started));
  } else {
    spdlog::error("shutdown: closing the store failed: {}", closed.ToString());
  }
  (*server)->Stop();
  spdlog::info("shutdown: complete exit_code={} took_ms={}",
               closed.ok() ? 0 : 1, MillisSince(started));
  return closed.ok() ? 0 : 1;
}

int RunHealthcheck(const Config& config) {
  const http::ListenAddress target = config.listen.ForConnecting();
  const http::ProbeTls tls{config.tls_cert_file, config.tls_key_file};
  Result<unsigned> status =
      http::ProbeStatus(target, "/readyz", kHealthcheckTimeout,
                        config.probe_tls ? &tls : nullptr);
  if (!status) {
    std::fprintf(stderr, "counterd healthcheck: %s\n",
                 status.error().message().c_str());
    return 1;
  }
  if (*status != 200) {
    std::fprintf(stderr, "counterd healthcheck: GET /readyz on %s: %u\n",
                 target.ToString().c_str(), *status);
    return 1;
  }
  return 0;
}

}  // namespace counterd::app
