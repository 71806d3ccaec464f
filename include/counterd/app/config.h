// Config: every option of `counterd` with its default, and the command-line
// parser that fills it from argv and the COUNTERD_* environment
// (Boost.Program_options). A value type; the parser is a pure function.
#ifndef COUNTERD_APP_CONFIG_H_
#define COUNTERD_APP_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "counterd/http/listen_address.h"

namespace counterd::app {

enum class LogFormat { kText, kJson };
enum class Backend { kFile, kPostgres };
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
// What the server does once the store has failed closed (docs/durability.md).
enum class OnStoreFailure {
  kStay,  // stay up: reads served, writes 503, /readyz 503
  kExit,  // exit with kExitStoreFailed so that the restart replays the journal
};
// The exit code of --on-store-failure=exit.
inline constexpr int kExitStoreFailed = 3;

struct Config {
  http::ListenAddress listen{"0.0.0.0", 8080};
  std::string data_dir = "/data";
  unsigned threads = 0;  // 0: one per hardware thread
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  std::uint64_t max_body_bytes = std::uint64_t{64} * 1024;
  std::uint32_t max_header_bytes = 8 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::size_t max_connections = 1024;
  // A quarter of the default max_connections: one client (address) cannot
  // take every slot, while a proxy or load generator in front still gets
  // plenty. Values above max_connections have no effect.
  std::size_t max_connections_per_client = 256;
  std::chrono::milliseconds drain_timeout{10'000};
  // Watch streams: how many may be open, counters waiting per stream, and
  // the heartbeat interval.
  std::size_t max_watchers = 1000;
  std::size_t watch_buffer = 1024;
  std::chrono::milliseconds watch_heartbeat{15'000};
  // HTTPS only when set (PEM files; both or neither). With a client CA,
  // clients must present a certificate it signed (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // counterd healthcheck: probe over HTTPS (--tls, or a certificate set).
  bool probe_tls = false;
  std::uint64_t compaction_threshold_bytes = 64ull << 20;
  std::chrono::seconds idempotency_retention{86'400};
  std::chrono::milliseconds slow_fsync_warning{100};
  // --min-free-bytes: refuse writes (507) under this much free space in the
  // data dir; nullopt ("auto"): max(64 MiB, 2 x last snapshot + 16 MiB);
  // 0: off. File backend only.
  std::optional<std::uint64_t> min_free_bytes;
  OnStoreFailure on_store_failure = OnStoreFailure::kExit;
  // --auth-tokens-file: the tokens file; empty: authentication is off.
  std::string auth_tokens_file;
  // Where counters are kept (docs/postgres.md). With kPostgres, data_dir is
  // accepted and ignored.
  Backend backend = Backend::kFile;
  std::string postgres_url;  // libpq URI or conninfo; a secret: never logged
  std::size_t postgres_pool_size = 4;

  friend bool operator==(const Config&, const Config&) = default;
};

// What the command line asks for.
enum class Command {
  kServe,        // counterd [OPTIONS]
  kHealthcheck,  // counterd healthcheck [--listen ADDR:PORT] [--tls]
  kCheck,        // counterd check [--data-dir DIR]: offline verification
  kHashToken,    // counterd hash-token: token on stdin, sha256 line out
  kMigrate,      // counterd migrate --backend postgres --postgres-url URL
  kRestore,      // counterd restore --from FILE (--data-dir DIR | postgres)
  kHelp,         // --help: print |text|, exit 0
  kVersion,      // --version: print |text|, exit 0
};

struct Invocation {
  Command command = Command::kServe;
  Config config;
  std::string text;  // for kHelp and kVersion
  // kRestore: the snapshot document to load (--from), and whether a store
  // already there may be replaced (--force). kCheck: the snapshot file to
  // verify instead of a data dir (--snapshot), if any.
  std::string snapshot_file;
  bool force = false;
  // Kubernetes service-link variables that were recognised and ignored
  // (kServe), in environment order: main logs them at debug level.
  std::vector<std::string> ignored_service_links;
};

// Parses |args| (args[0] is the program name) and |environment| ("NAME=value"
// entries, as in environ). Every option --foo-bar may also come from
// COUNTERD_FOO_BAR; the command line wins. Returns kInvalidArgument with a
// one-line message for an unknown option, command or COUNTERD_* variable,
// a malformed value or one out of range.
//
// Kubernetes service links (COUNTERD_SERVICE_HOST, COUNTERD_PORT_8080_TCP,
// COUNTERD_POSTGRES_SERVICE_PORT, ... for any Service whose name is
// "counterd" or starts with "counterd-") are not options: a variable with
// exactly the name and value shape the kubelet injects is ignored and listed
// in |ignored_service_links|; any other unknown COUNTERD_* is still an error.
Result<Invocation> ParseCommandLine(std::span<const char* const> args,
                                    std::span<const char* const> environment);

}  // namespace counterd::app

#endif  // COUNTERD_APP_CONFIG_H_
