#include "counterd/app/serve.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "counterd/app/logging.h"
#include "counterd/app/version.h"
#include "counterd/core/log.h"
#include "counterd/http/probe.h"
#include "counterd/http/server.h"
#include "counterd/service/counter_service.h"

namespace counterd::app {
namespace {

constexpr std::chrono::milliseconds kHealthcheckTimeout{2000};
// How often the tokens file is checked for a change. A Kubernetes Secret
// update takes up to a minute or so to reach the pod; a second more is
// nothing, and a stat(2) a second costs nothing.
constexpr std::chrono::milliseconds kTokenPollInterval{1000};
// How often --on-store-failure=exit looks whether the store failed closed.
// Stats() is a handful of atomic loads; five times a second is nothing,
// and Kubernetes takes far longer to restart the pod anyway.
constexpr std::chrono::milliseconds kStoreFailurePollInterval{200};

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
  options.max_watchers = config.max_watchers;
  options.watch_buffer = config.watch_buffer;
  options.watch_heartbeat = config.watch_heartbeat;
  options.version = std::string(kVersion);
  return options;
}

// The line tests and operators look for; its shape is part of the
// interface (see README.md, "HTTP API"). With the postgres backend it names
// the backend instead of the (ignored) data dir, and never the URL: it may
// hold a password.
void LogListening(const Config& config, const http::ListenAddress& bound,
                  const StartupReport& startup) {
  const std::string listen = bound.ToString();
  const bool postgres = config.backend == Backend::kPostgres;
  const log::Field where = postgres ? log::Field{"backend", "postgres"}
                                    : log::Field{"data_dir", config.data_dir};
  if (config.log_format == LogFormat::kJson) {
    log::Info("listening", {{"listen", listen},
                            {"version", kVersion},
                            where,
                            {"counters", startup.counters},
                            {"recovery_ms", startup.recovery.count()}});
    return;
  }
  // The text line keeps the form operators and the README know.
  log::Info("counterd " + std::string(kVersion) + " listening on " + listen,
            {where,
             {"counters", startup.counters},
             {"recovery_ms", startup.recovery.count()}});
}

void LogAuth(const Config& config, const TokenFile* tokens) {
  if (tokens == nullptr) {
    log::Warn(
        "authentication is off: anyone who can reach the listener can read, "
        "change and delete every counter; set --auth-tokens-file "
        "(docs/security.md), or listen on loopback only",
        {{"listen", config.listen.ToString()}});
    return;
  }
  log::Info("authentication on: bearer tokens required",
            {{"tokens", http::TokenCount(*tokens->tokens())},
             {"path", tokens->path()}});
}

// Reads the tokens file again and puts it in force, or keeps the tokens in
// force and says why not. The message names the file and the entry, never
// a token (the file holds only hashes).
void ReloadTokens(TokenFile& tokens, http::Server& server,
                  std::string_view reason) {
  Result<std::shared_ptr<const http::TokenSet>> loaded = tokens.Reload();
  if (!loaded) {
    server.CountFailedTokenReload();
    log::Error("auth: tokens reload failed; the previous tokens stay in force",
               {{"reason", reason}, {"error", loaded.error().message()}});
    return;
  }
  server.ReplaceTokens(*loaded);
  log::Info("auth: tokens reloaded", {{"reason", reason},
                                      {"tokens", http::TokenCount(**loaded)},
                                      {"path", tokens.path()}});
}

// Serves until SIGTERM or SIGINT, which it returns; SIGHUP and changes of
// the tokens file reload the tokens meanwhile. With |watched| (non-null),
// returns nullopt as soon as that repository has failed closed.
std::optional<Signal> ServeUntilShutdown(
    ShutdownSignals& signals, http::Server& server, TokenFile* tokens,
    const storage::CounterRepository* watched) {
  std::optional<std::chrono::milliseconds> poll;
  if (tokens != nullptr) poll = kTokenPollInterval;
  if (watched != nullptr) poll = kStoreFailurePollInterval;
  auto next_token_check = std::chrono::steady_clock::now();
  for (;;) {
    const std::optional<Signal> signal = signals.Wait(poll);
    if (!signal) {
      if (watched != nullptr && watched->Stats().failed) return std::nullopt;
      if (tokens != nullptr &&
          std::chrono::steady_clock::now() >= next_token_check) {
        next_token_check =
            std::chrono::steady_clock::now() + kTokenPollInterval;
        if (tokens->Changed()) ReloadTokens(*tokens, server, "file-changed");
      }
      continue;
    }
    if (*signal != Signal::kHangup) return *signal;
    if (tokens != nullptr) {
      ReloadTokens(*tokens, server, "SIGHUP");
    } else {
      log::Info("SIGHUP received; nothing to reload (authentication is off)");
    }
  }
}

std::int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

storage::FileRepositoryOptions FileRepositoryOptionsFrom(const Config& config) {
  storage::FileRepositoryOptions options;
  options.data_dir = config.data_dir;
  options.compaction_threshold_bytes = config.compaction_threshold_bytes;
  options.idempotency_retention =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          config.idempotency_retention);
  options.slow_fsync_warning = config.slow_fsync_warning;
  options.min_free_bytes = config.min_free_bytes;
  return options;
}

int Serve(const Config& config, storage::CounterRepository& repository,
          const StartupReport& startup, ShutdownSignals& signals,
          TokenFile* tokens) {
  service::CounterService service(repository);
  http::ServerOptions options = ServerOptionsFrom(config);
  if (tokens != nullptr) options.tokens = tokens->tokens();
  LogAuth(config, tokens);
  Result<std::unique_ptr<http::Server>> server =
      http::Server::Start(std::move(options), service, &repository);
  if (!server) {
    log::Error("cannot serve", {{"error", server.error().message()}});
    if (Status closed = repository.Close(); !closed.ok()) {
      log::Error("closing the repository failed",
                 {{"error", closed.ToString()}});
    }
    // A listen address or TLS file that is wrong is bad usage (2), not a
    // runtime failure.
    return server.error().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  LogListening(config, (*server)->local_address(), startup);

  const std::optional<Signal> stop = ServeUntilShutdown(
      signals, **server, tokens,
      config.on_store_failure == OnStoreFailure::kExit ? &repository : nullptr);
  const auto started = std::chrono::steady_clock::now();
  if (!stop) {
    // PostgreSQL's answer to a failed fsync: never retry it in place. The
    // restart recovers from what is durable, replaying the journal.
    log::Error(
        "store failed closed; exiting (--on-store-failure=exit) so that a "
        "restart recovers from the journal; draining first",
        {{"exit_code", kExitStoreFailed},
         {"drain_timeout_ms", config.drain_timeout.count()}});
  } else {
    const std::string_view signal = SignalName(*stop);
    log::Info("shutdown: " + std::string(signal) + " received; draining",
              {{"signal", signal},
               {"drain_timeout_ms", config.drain_timeout.count()}});
  }

  const http::DrainReport drained = (*server)->Drain(config.drain_timeout);
  if (drained.completed) {
    log::Info("shutdown: requests drained",
              {{"connections", drained.connections_open},
               {"took_ms", MillisSince(started)}});
  } else {
    log::Warn("shutdown: drain timeout passed with requests in flight",
              {{"requests_in_flight", drained.requests_in_flight},
               {"took_ms", MillisSince(started)}});
  }

  // Commits what is queued and syncs the journal; completions that still
  // arrive are posted to the I/O threads, which keep running until Stop.
  const Status closed = repository.Close();
  if (closed.ok()) {
    log::Info("shutdown: store closed", {{"took_ms", MillisSince(started)}});
  } else {
    log::Error("shutdown: closing the store failed",
               {{"error", closed.ToString()}});
  }
  (*server)->Stop();
  const int code = !stop ? kExitStoreFailed : closed.ok() ? 0 : 1;
  log::Info("shutdown: complete",
            {{"exit_code", code}, {"took_ms", MillisSince(started)}});
  return code;
}

int RunHealthcheck(const Config& config) {
  const http::ListenAddress target = config.listen.ForConnecting();
  const http::ProbeTls tls{config.tls_cert_file, config.tls_key_file};
  Result<unsigned> status =
      http::ProbeStatus(target, "/readyz", kHealthcheckTimeout,
                        config.probe_tls ? &tls : nullptr);
  if (!status) {
    (void)std::fprintf(stderr, "counterd healthcheck: %s\n",
                       status.error().message().c_str());
    return 1;
  }
  if (*status != 200) {
    (void)std::fprintf(stderr, "counterd healthcheck: GET /readyz on %s: %u\n",
                       target.ToString().c_str(), *status);
    return 1;
  }
  return 0;
}

}  // namespace counterd::app
