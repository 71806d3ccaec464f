#include "counterd/app/config.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>

#include "counterd/app/version.h"

namespace counterd::app {
namespace {

namespace po = boost::program_options;

constexpr std::string_view kEnvPrefix = "COUNTERD_";
constexpr std::uint64_t kMaxTimeoutMs = 3'600'000;  // one hour

// Every value is taken as a string and checked here rather than by
// lexical_cast, which accepts "-1" for an unsigned option (it wraps).
std::optional<std::uint64_t> ToUnsigned(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return v;
}

std::string OptionToEnv(std::string_view option) {
  std::string env(kEnvPrefix);
  for (const char c : option) {
    env.push_back(
        c == '-' ? '_'
                 : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c));
  }
  return env;
}

std::string EnvToOption(std::string_view env) {
  env.remove_prefix(kEnvPrefix.size());
  std::string option;
  for (const char c : env) {
    option.push_back(
        c == '_' ? '-'
                 : static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  }
  return option;
}

// Kubernetes service links. With enableServiceLinks (the default) the
// kubelet gives every container, for every Service with a cluster IP in the
// namespace, Docker-link variables named after the Service (upper case, '-'
// as '_'). A Service "counterd" or "counterd-<anything>" therefore lands in
// our COUNTERD_* namespace (pkg/kubelet/envvars, for a Service P with
// cluster IP A and ports N1 [named n1, protocol p1], N2, ...):
//   P_SERVICE_HOST=A              P_SERVICE_PORT=N1
//   P_SERVICE_PORT_<n>=N          P_PORT=p1://A:N1      (IPv6: [A]:N1)
//   P_PORT_<N>_<P>=p://A:N        P_PORT_<N>_<P>_PROTO=p
//   P_PORT_<N>_<P>_PORT=N         P_PORT_<N>_<P>_ADDR=A
// They are recognised by name *and* value, so that a typo such as
// COUNTERD_PORT=8080 (meant: COUNTERD_LISTEN) is still refused.

// A port number as strconv.Itoa prints a Service port: 1-65535, no sign,
// no leading zero.
std::optional<std::uint16_t> ServicePort(std::string_view text) {
  if (text.empty() || text.size() > 5 || text.front() == '0') {
    return std::nullopt;
  }
  const std::optional<std::uint64_t> v = ToUnsigned(text);
  if (!v || *v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

// A cluster IP: a numeric IPv4 or IPv6 address without a zone.
bool IsClusterIp(std::string_view text) {
  if (text.empty() || text.find('%') != std::string_view::npos) return false;
  boost::system::error_code error;
  boost::asio::ip::make_address(std::string(text), error);
  return !error;
}

// The protocols a Service port may have, as they appear in a name.
bool IsProtocol(std::string_view upper) {
  return upper == "TCP" || upper == "UDP" || upper == "SCTP";
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// [A-Z0-9_]+ : a DNS label or port name after the kubelet's upper-casing.
bool IsLinkWord(std::string_view text) {
  if (text.empty()) return false;
  return std::ranges::all_of(text, [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// "_<NAME>" for a named Service port: an IANA service name (letters,
// digits, inner '-') after upper-casing.
bool IsPortNameLink(std::string_view rest) {
  return rest.size() >= 2 && rest.size() <= 16 && rest.front() == '_' &&
         rest[1] != '_' && rest.back() != '_' && IsLinkWord(rest.substr(1));
}

// The prefix of a Service whose name starts with "counterd": "COUNTERD",
// or "COUNTERD_" and the rest of a DNS label (ends in a letter or digit,
// at most 63 characters in all).
bool IsCounterdServicePrefix(std::string_view prefix) {
  if (prefix == "COUNTERD") return true;
  return prefix.size() <= 63 && prefix.starts_with("COUNTERD_") &&
         IsLinkWord(prefix.substr(9)) && prefix.back() != '_';
}

// "proto://A:N" (IPv6: "proto://[A]:N") with exactly |proto| and, when
// given, the port |port|.
bool IsLinkUrl(std::string_view value, std::string_view proto,
               std::optional<std::uint16_t> port) {
  const std::string scheme = Lower(proto) + "://";
  if (!value.starts_with(scheme)) return false;
  value.remove_prefix(scheme.size());
  const std::size_t colon = value.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = value.substr(0, colon);
  const std::optional<std::uint16_t> n = ServicePort(value.substr(colon + 1));
  if (!n || (port && *n != *port)) return false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    return host.find(':') != std::string_view::npos && IsClusterIp(host);
  }
  return host.find(':') == std::string_view::npos && IsClusterIp(host);
}

// P_PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR] after "P_PORT_": |rest| is
// "<N>_<PROTO>[_SUFFIX]".
bool IsDockerPortLink(std::string_view rest, std::string_view value) {
  const std::size_t sep = rest.find('_');
  if (sep == std::string_view::npos) return false;
  const std::optional<std::uint16_t> port = ServicePort(rest.substr(0, sep));
  if (!port) return false;
  rest.remove_prefix(sep + 1);
  const std::size_t end = rest.find('_');
  const std::string_view proto = rest.substr(0, end);
  if (!IsProtocol(proto)) return false;
  if (end == std::string_view::npos) return IsLinkUrl(value, proto, port);
  const std::string_view suffix = rest.substr(end + 1);
  if (suffix == "PROTO") return value == Lower(proto);
  if (suffix == "PORT") return ServicePort(value) == port;
  if (suffix == "ADDR") return IsClusterIp(value);
  return false;
}

// True if NAME=VALUE is one of the shapes above for a Service whose name
// starts with "counterd". A Service's own name may contain "_PORT" or
// "_SERVICE_PORT" ("counterd-port"), so every split is tried.
bool IsServiceLink(std::string_view name, std::string_view value) {
  if (name.ends_with("_SERVICE_HOST") &&
      IsCounterdServicePrefix(name.substr(0, name.size() - 13))) {
    return IsClusterIp(value);
  }
  constexpr std::string_view kServicePort = "_SERVICE_PORT";
  for (std::size_t at = name.find(kServicePort); at != std::string_view::npos;
       at = name.find(kServicePort, at + 1)) {
    const std::string_view rest = name.substr(at + kServicePort.size());
    if (IsCounterdServicePrefix(name.substr(0, at)) &&
        (rest.empty() || IsPortNameLink(rest)) && ServicePort(value)) {
      return true;
    }
  }
  constexpr std::string_view kPort = "_PORT";
  for (std::size_t at = name.find(kPort); at != std::string_view::npos;
       at = name.find(kPort, at + 1)) {
    if (!IsCounterdServicePrefix(name.substr(0, at))) continue;
    const std::string_view rest = name.substr(at + kPort.size());
    if (rest.empty()) {
      for (const std::string_view proto : {"TCP", "UDP", "SCTP"}) {
        if (IsLinkUrl(value, proto, std::nullopt)) return true;
      }
    } else if (rest.front() == '_' && IsDockerPortLink(rest.substr(1), value)) {
      return true;
    }
  }
  return false;
}

po::options_description ServeOptions() {
  po::options_description desc(
      "Options (each also from COUNTERD_<OPTION>, "
      "e.g. COUNTERD_DATA_DIR; the command line "
      "wins)");
  // clang-format off
  desc.add_options()
    ("help", "print this help and exit")
    ("version", "print the version and exit")
    ("listen", po::value<std::string>()->default_value("0.0.0.0:8080"),
     "address to listen on, ADDR:PORT ([ADDR]:PORT for IPv6; port 0 picks "
     "a free port)")
    ("data-dir", po::value<std::string>()->default_value("/data"),
     "directory holding the journal and snapshot (locked while running)")
    ("threads", po::value<std::string>()->default_value("0"),
     "I/O threads; 0 = one per hardware thread")
    ("log-level", po::value<std::string>()->default_value("info"),
     "trace, debug, info, warn or error")
    ("log-format", po::value<std::string>()->default_value("text"),
     "text or json (one JSON object per line)")
    ("max-body-bytes", po::value<std::string>()->default_value("65536"),
     "largest request body accepted (413 beyond)")
    ("max-header-bytes", po::value<std::string>()->default_value("8192"),
     "largest request header accepted (431 beyond)")
    ("header-timeout-ms", po::value<std::string>()->default_value("10000"),
     "time allowed from a request's first byte to its complete header")
    ("read-timeout-ms", po::value<std::string>()->default_value("30000"),
     "time allowed to receive a request body")
    ("write-timeout-ms", po::value<std::string>()->default_value("30000"),
     "time allowed to send a response")
    ("idle-timeout-ms", po::value<std::string>()->default_value("60000"),
     "keep-alive connections idle this long are closed")
    ("max-connections", po::value<std::string>()->default_value("1024"),
     "open connections; more are answered 503 and closed")
    ("max-connections-per-client",
     po::value<std::string>()->default_value("256"),
     "open connections from one client address; more are answered 503 and "
     "closed (no effect above --max-connections)")
    ("max-watchers", po::value<std::string>()->default_value("1000"),
     "open watch streams (GET .../watch); more are answered 503")
    ("watch-buffer", po::value<std::string>()->default_value("1024"),
     "counters a watch stream holds waiting for a slow client; past it a "
     "prefix stream starts over from current state (event: reset)")
    ("watch-heartbeat-ms", po::value<std::string>()->default_value("15000"),
     "a watch stream sends a comment after this long without output")
    ("drain-timeout-ms", po::value<std::string>()->default_value("10000"),
     "on SIGTERM/SIGINT, how long requests in flight may take to finish")
    ("compaction-threshold-bytes",
     po::value<std::string>()->default_value("67108864"),
     "write a snapshot and start a new journal past this journal size")
    ("idempotency-retention-seconds",
     po::value<std::string>()->default_value("86400"),
     "how long Idempotency-Key outcomes are kept")
    ("slow-fsync-warning-ms", po::value<std::string>()->default_value("100"),
     "log a warning, with its duration, for a journal fdatasync slower "
     "than this")
    ("min-free-bytes", po::value<std::string>()->default_value("auto"),
     "refuse writes with 507 (reads go on, /readyz 503) while the data "
     "dir's file system has fewer free bytes than this; they resume by "
     "themselves once space is back. auto = max(64 MiB, 2 x the last "
     "snapshot's size + 16 MiB): room for the next snapshot plus a margin; "
     "0 = never (file backend only)")
    ("on-store-failure", po::value<std::string>()->default_value("exit"),
     "after a failed journal write or fsync (the store failed closed): "
     "exit = exit with code 3 so that a restart replays the journal; "
     "stay = keep serving reads, refuse writes with 503 until restarted")
    ("auth-tokens-file", po::value<std::string>()->default_value(""),
     "JSON file of bearer-token hashes with scopes (docs/security.md); "
     "every request but GET /livez and /readyz then needs "
     "\"Authorization: Bearer <token>\". Reloaded when it changes and on "
     "SIGHUP. Unset: authentication is off")
    ("tls-cert-file", po::value<std::string>()->default_value(""),
     "PEM certificate chain: serve HTTPS only (TLS 1.2/1.3), with "
     "--tls-key-file; reloaded when the file changes")
    ("tls-key-file", po::value<std::string>()->default_value(""),
     "PEM private key of --tls-cert-file")
    ("tls-client-ca-file", po::value<std::string>()->default_value(""),
     "PEM CA certificates: require client certificates they signed "
     "(mutual TLS)")
    // The PostgreSQL backend (docs/postgres.md).
    ("backend", po::value<std::string>()->default_value("file"),
     "where counters are kept: file (--data-dir) or postgres "
     "(--postgres-url; --data-dir is then ignored)")
    ("postgres-url", po::value<std::string>()->default_value(""),
     "libpq URI or conninfo of the database for --backend postgres; "
     "several hosts with target_session_attrs=read-write follow a failover")
    ("postgres-pool-size", po::value<std::string>()->default_value("4"),
     "database connections for reads and writes per process (at least 2: "
     "one commits, the others read; one more listens for changes)");
  // clang-format on
  return desc;
}

po::options_description HealthcheckOptions() {
  po::options_description desc("Options of counterd healthcheck");
  // clang-format off
  desc.add_options()
    ("help", "print this help and exit")
    ("listen", po::value<std::string>()->default_value("0.0.0.0:8080"),
     "the server's --listen address (COUNTERD_LISTEN); a wildcard address "
     "probes loopback")
    ("tls", po::bool_switch(),
     "probe over HTTPS (implied by COUNTERD_TLS_CERT_FILE); the server's "
     "certificate is not verified: this is a local liveness probe")
    ("tls-cert-file", po::value<std::string>()->default_value(""),
     "the server's certificate (COUNTERD_TLS_CERT_FILE): implies --tls, "
     "and is presented with --tls-key-file as the client certificate when "
     "the server requires one")
    ("tls-key-file", po::value<std::string>()->default_value(""),
     "its private key (COUNTERD_TLS_KEY_FILE)");
  // clang-format on
  return desc;
}

// The options the healthcheck takes from COUNTERD_*; the server's others
// are not its business (the container sets them all).
const std::vector<std::string_view> kHealthcheckEnv = {
    "listen", "tls-cert-file", "tls-key-file"};
const std::vector<std::string_view> kCheckEnv = {"data-dir"};

std::string HelpText(const po::options_description& serve,
                     const po::options_description& healthcheck) {
  std::ostringstream out;
  out << "counterd " << kVersion
      << ": named int64 counters over HTTP, kept durably on disk.\n\n"
         "Usage:\n"
         "  counterd [OPTIONS]                      serve\n"
         "  counterd healthcheck [--listen ADDR:PORT] [--tls]\n"
         "                                          exit 0 if GET /readyz "
         "answers 200\n"
         "  counterd check [--data-dir DIR]         verify a data dir offline "
         "(exit 0 sound, 1 not)\n"
         "  counterd check --snapshot FILE          verify a snapshot file "
         "(GET /admin/snapshot)\n"
         "  counterd hash-token < TOKEN             print the sha256 of a "
         "token for --auth-tokens-file\n"
         "  counterd migrate --backend postgres --postgres-url URL\n"
         "                                          apply the database "
         "schema migrations\n"
         "  counterd restore --from FILE [--data-dir DIR | --backend "
         "postgres ...] [--force]\n"
         "                                          make a store of a "
         "snapshot (GET /admin/snapshot)\n\n"
      << serve << "\n"
      << healthcheck << "\n";
  return out.str();
}

// Where an option's value came from, for error messages.
struct Sources {
  std::set<std::string> command_line;
  std::string Name(const std::string& option) const {
    return command_line.contains(option) ? "--" + option : OptionToEnv(option);
  }
};

Status BadValue(const Sources& sources, const std::string& option,
                std::string_view value, std::string_view expected) {
  return Status::InvalidArgument("invalid value '" + std::string(value) +
                                 "' for " + sources.Name(option) +
                                 ": expected " + std::string(expected));
}

// Reads an integer option within [min, max].
template <typename T>
Status ReadInteger(const po::variables_map& vm, const Sources& sources,
                   const std::string& option, std::uint64_t min,
                   std::uint64_t max, T& out) {
  const auto& text = vm[option].as<std::string>();
  const std::optional<std::uint64_t> v = ToUnsigned(text);
  if (!v || *v < min || *v > max) {
    return BadValue(sources, option, text,
                    "an integer from " + std::to_string(min) + " to " +
                        std::to_string(max));
  }
  out = static_cast<T>(*v);
  return Status::Ok();
}

Status ReadMillis(const po::variables_map& vm, const Sources& sources,
                  const std::string& option, std::uint64_t min,
                  std::chrono::milliseconds& out) {
  std::uint64_t ms = 0;
  COUNTERD_RETURN_IF_ERROR(
      ReadInteger(vm, sources, option, min, kMaxTimeoutMs, ms));
  out = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  return Status::Ok();
}

Status ReadListen(const po::variables_map& vm, const Sources& sources,
                  http::ListenAddress& out) {
  const auto& text = vm["listen"].as<std::string>();
  Result<http::ListenAddress> listen = http::ParseListenAddress(text);
  if (!listen) {
    return BadValue(sources, "listen", text,
                    "ADDR:PORT with a numeric address and a port from 0 to "
                    "65535");
  }
  out = std::move(*listen);
  return Status::Ok();
}

// --backend and --postgres-url: which store (serve, migrate, restore).
Status ReadStoreChoice(const po::variables_map& vm, const Sources& sources,
                       Config& c) {
  const auto& backend = vm["backend"].as<std::string>();
  if (backend == "file") {
    c.backend = Backend::kFile;
  } else if (backend == "postgres") {
    c.backend = Backend::kPostgres;
  } else {
    return BadValue(sources, "backend", backend, "file or postgres");
  }
  c.postgres_url = vm["postgres-url"].as<std::string>();
  if (c.backend == Backend::kPostgres && c.postgres_url.empty()) {
    return Status::InvalidArgument(sources.Name("backend") +
                                   " postgres needs --postgres-url (or " +
                                   OptionToEnv("postgres-url") + ")");
  }
  return Status::Ok();
}

// --backend, --postgres-url, --postgres-pool-size.
Status ReadBackend(const po::variables_map& vm, const Sources& sources,
                   Config& c) {
  COUNTERD_RETURN_IF_ERROR(ReadStoreChoice(vm, sources, c));
  return ReadInteger(vm, sources, "postgres-pool-size", 2, 1000,
                     c.postgres_pool_size);
}

Status ReadServeConfig(const po::variables_map& vm, const Sources& sources,
                       Config& c) {
  COUNTERD_RETURN_IF_ERROR(ReadListen(vm, sources, c.listen));
  c.data_dir = vm["data-dir"].as<std::string>();
  if (c.data_dir.empty()) {
    return BadValue(sources, "data-dir", "", "a directory path");
  }
  COUNTERD_RETURN_IF_ERROR(
      ReadInteger(vm, sources, "threads", 0, 1024, c.threads));

  const auto& level = vm["log-level"].as<std::string>();
  static constexpr std::array<std::pair<std::string_view, LogLevel>, 5>
      kLevels = {{{"trace", LogLevel::kTrace},
                  {"debug", LogLevel::kDebug},
                  {"info", LogLevel::kInfo},
                  {"warn", LogLevel::kWarn},
                  {"error", LogLevel::kError}}};
  bool level_ok = false;
  for (const auto& [name, value] : kLevels) {
    if (level == name) {
      c.log_level = value;
      level_ok = true;
    }
  }
  if (!level_ok) {
    return BadValue(sources, "log-level", level,
                    "trace, debug, info, warn or error");
  }
  const auto& format = vm["log-format"].as<std::string>();
  if (format == "text") {
    c.log_format = LogFormat::kText;
  } else if (format == "json") {
    c.log_format = LogFormat::kJson;
  } else {
    return BadValue(sources, "log-format", format, "text or json");
  }

  COUNTERD_RETURN_IF_ERROR(ReadInteger(vm, sources, "max-body-bytes", 1,
                                       64ull << 20, c.max_body_bytes));
  COUNTERD_RETURN_IF_ERROR(ReadInteger(vm, sources, "max-header-bytes", 1024,
                                       1u << 20, c.max_header_bytes));
  COUNTERD_RETURN_IF_ERROR(
      ReadMillis(vm, sources, "header-timeout-ms", 1, c.header_timeout));
  COUNTERD_RETURN_IF_ERROR(
      ReadMillis(vm, sources, "read-timeout-ms", 1, c.read_timeout));
  COUNTERD_RETURN_IF_ERROR(
      ReadMillis(vm, sources, "write-timeout-ms", 1, c.write_timeout));
  COUNTERD_RETURN_IF_ERROR(
      ReadMillis(vm, sources, "idle-timeout-ms", 1, c.idle_timeout));
  COUNTERD_RETURN_IF_ERROR(ReadInteger(vm, sources, "max-connections", 1,
                                       1'000'000, c.max_connections));
  COUNTERD_RETURN_IF_ERROR(
      ReadInteger(vm, sources, "max-connections-per-client", 1, 1'000'000,
                  c.max_connections_per_client));
  COUNTERD_RETURN_IF_ERROR(
      ReadInteger(vm, sources, "max-watchers", 1, 1'000'000, c.max_watchers));
  COUNTERD_RETURN_IF_ERROR(
      ReadInteger(vm, sources, "watch-buffer", 1, 1'000'000, c.watch_buffer));
  COUNTERD_RETURN_IF_ERROR(
      ReadMillis(vm, sources, "watch-heartbeat-ms", 1, c.watch_heartbeat));
  COUNTERD_RETURN_IF_ERROR(
      ReadMillis(vm, sources, "drain-timeout-ms", 0, c.drain_timeout));
  COUNTERD_RETURN_IF_ERROR(
      ReadInteger(vm, sources, "compaction-threshold-bytes", 4096, 1ull << 40,
                  c.compaction_threshold_bytes));
  c.tls_cert_file = vm["tls-cert-file"].as<std::string>();
  c.tls_key_file = vm["tls-key-file"].as<std::string>();
  c.tls_client_ca_file = vm["tls-client-ca-file"].as<std::string>();
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    const std::string given =
        c.tls_cert_file.empty() ? "tls-key-file" : "tls-cert-file";
    const std::string missing =
        c.tls_cert_file.empty() ? "tls-cert-file" : "tls-key-file";
    // The missing one is named the way the given one was spelled.
    return Status::InvalidArgument(sources.Name(given) + " needs " +
                                   (sources.command_line.contains(given)
                                        ? "--" + missing
                                        : OptionToEnv(missing)) +
                                   " too: give both TLS files or neither");
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    return Status::InvalidArgument(sources.Name("tls-client-ca-file") +
                                   " needs --tls-cert-file and --tls-key-file");
  }
  std::uint64_t retention = 0;
  COUNTERD_RETURN_IF_ERROR(ReadInteger(vm, sources,
                                       "idempotency-retention-seconds", 1,
                                       366ull * 86'400, retention));
  c.idempotency_retention =
      std::chrono::seconds(static_cast<std::int64_t>(retention));
  COUNTERD_RETURN_IF_ERROR(ReadMillis(vm, sources, "slow-fsync-warning-ms", 1,
                                      c.slow_fsync_warning));
  if (vm["min-free-bytes"].as<std::string>() == "auto") {
    c.min_free_bytes.reset();
  } else {
    std::uint64_t min_free = 0;
    if (!ReadInteger(vm, sources, "min-free-bytes", 0, 1ull << 50, min_free)
             .ok()) {
      return BadValue(sources, "min-free-bytes",
                      vm["min-free-bytes"].as<std::string>(),
                      "auto or a number of bytes from 0 to 2^50");
    }
    c.min_free_bytes = min_free;
  }
  const std::string& on_failure = vm["on-store-failure"].as<std::string>();
  if (on_failure == "exit") {
    c.on_store_failure = OnStoreFailure::kExit;
  } else if (on_failure == "stay") {
    c.on_store_failure = OnStoreFailure::kStay;
  } else {
    return BadValue(sources, "on-store-failure", on_failure, "stay or exit");
  }
  c.auth_tokens_file = vm["auth-tokens-file"].as<std::string>();
  return ReadBackend(vm, sources, c);
}

// COUNTERD_* variables as options of |desc|. With |only|, just those
// options are read and every other variable ignored (healthcheck, check);
// without it an unknown variable is an error, so a typo in a ConfigMap
// fails fast.
Result<po::parsed_options> ParseEnvironment(
    const po::options_description& desc,
    std::span<const char* const> environment,
    const std::vector<std::string_view>* only,
    std::vector<std::string>* service_links) {
  po::parsed_options parsed(&desc);
  for (const char* entry : environment) {
    if (entry == nullptr) continue;
    const std::string_view text(entry);
    const std::size_t eq = text.find('=');
    const std::string_view name = text.substr(0, eq);
    if (!name.starts_with(kEnvPrefix) || eq == std::string_view::npos) {
      continue;
    }
    const std::string option = EnvToOption(name);
    const bool known = option != "help" && option != "version" &&
                       desc.find_nothrow(option, false) != nullptr;
    if (only != nullptr) {
      if (std::find(only->begin(), only->end(), option) == only->end()) {
        continue;
      }
    } else if (!known) {
      if (name == "COUNTERD_TEST_FAULTS") continue;  // read by main (tests)
      if (IsServiceLink(name, text.substr(eq + 1))) {
        if (service_links != nullptr) service_links->emplace_back(name);
        continue;
      }
      return Status::InvalidArgument("unknown environment variable " +
                                     std::string(name) +
                                     " (see counterd --help)");
    }
    po::option o;
    o.string_key = option;
    o.value.emplace_back(text.substr(eq + 1));
    o.original_tokens.emplace_back(name);
    parsed.options.push_back(std::move(o));
  }
  return parsed;
}

// Runs Program_options over argv and the environment into |vm|; records
// which options came from the command line.
Status ParseInto(const po::options_description& desc,
                 std::span<const char* const> argv,
                 std::span<const char* const> environment,
                 const std::vector<std::string_view>* env_only,
                 po::variables_map& vm, Sources& sources,
                 std::vector<std::string>* service_links = nullptr) {
  std::vector<std::string> tokens(argv.begin(), argv.end());
  try {
    po::parsed_options cli = po::command_line_parser(tokens)
                                 .options(desc)
                                 .style(po::command_line_style::unix_style &
                                        ~po::command_line_style::allow_guessing)
                                 .run();
    for (const po::option& o : cli.options) {
      if (o.position_key >= 0 || o.unregistered) {
        return Status::InvalidArgument("unexpected argument '" +
                                       o.original_tokens.front() + "'");
      }
      sources.command_line.insert(o.string_key);
    }
    // Stored first, so it wins over the environment.
    po::store(cli, vm);
    Result<po::parsed_options> env =
        ParseEnvironment(desc, environment, env_only, service_links);
    if (!env) return env.error();
    po::store(*env, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Status::InvalidArgument(e.what());
  }
  return Status::Ok();
}

// counterd check [--data-dir DIR].
Result<Invocation> ParseCheck(std::span<const char* const> rest,
                              std::span<const char* const> environment) {
  Invocation invocation;
  po::variables_map vm;
  Sources sources;
  po::options_description check("Options of counterd check");
  check.add_options()("help", "print this help and exit")(
      "data-dir", po::value<std::string>()->default_value("/data"),
      "the data dir to verify (COUNTERD_DATA_DIR)")(
      "snapshot", po::value<std::string>()->default_value(""),
      "verify this snapshot file (GET /admin/snapshot's document) instead "
      "of a data dir");
  COUNTERD_RETURN_IF_ERROR(
      ParseInto(check, rest, environment, &kCheckEnv, vm, sources));
  if (vm.contains("help")) {
    std::ostringstream text;
    text << "Usage: counterd check [--data-dir DIR | --snapshot FILE]\n"
            "Verifies the snapshot and journal of a data dir without "
            "changing it.\nExit 0 when sound, 1 with the file and byte "
            "offset when not.\n\n"
         << check;
    invocation.command = Command::kHelp;
    invocation.text = text.str();
    return invocation;
  }
  invocation.command = Command::kCheck;
  invocation.config.data_dir = vm["data-dir"].as<std::string>();
  invocation.snapshot_file = vm["snapshot"].as<std::string>();
  return invocation;
}

// counterd hash-token [--help] (the token on standard input).
Result<Invocation> ParseHashToken(std::span<const char* const> rest) {
  // A token given as an argument would sit in the shell history and in
  // ps; it is refused without being repeated.
  for (const char* arg : rest) {
    if (arg != nullptr && arg[0] != '-') {
      return Status::InvalidArgument(
          "hash-token reads the token on standard input and takes no "
          "arguments");
    }
  }
  Invocation invocation;
  po::variables_map vm;
  Sources sources;
  po::options_description hash("Options of counterd hash-token");
  hash.add_options()("help", "print this help and exit");
  COUNTERD_RETURN_IF_ERROR(ParseInto(hash, rest, {}, nullptr, vm, sources));
  invocation.command = Command::kHashToken;
  if (vm.contains("help")) {
    std::ostringstream text;
    text << "Usage: counterd hash-token < TOKEN\n"
            "Reads one bearer token on standard input (one trailing "
            "newline is not part of it)\nand prints the 64-hex SHA-256 "
            "to paste as \"sha256\" in --auth-tokens-file.\n\n"
         << hash;
    invocation.command = Command::kHelp;
    invocation.text = text.str();
  }
  return invocation;
}

// counterd migrate with the serve options and their environment, so that a
// Deployment's settings run `counterd migrate` as they are.
Result<Invocation> ParseMigrate(const po::options_description& serve,
                                std::span<const char* const> rest,
                                std::span<const char* const> environment) {
  Invocation invocation;
  po::variables_map vm;
  Sources sources;
  COUNTERD_RETURN_IF_ERROR(
      ParseInto(serve, rest, environment, nullptr, vm, sources));
  if (vm.contains("help")) {
    invocation.command = Command::kHelp;
    invocation.text =
        "Usage: counterd migrate --backend postgres --postgres-url URL\n"
        "Applies counterd's schema migrations to the database and exits "
        "(start-up\napplies them too). Exit 0 when the schema is current, "
        "1 when it could not be.\n";
    return invocation;
  }
  COUNTERD_RETURN_IF_ERROR(ReadServeConfig(vm, sources, invocation.config));
  if (invocation.config.backend != Backend::kPostgres) {
    return Status::InvalidArgument(
        "counterd migrate needs --backend postgres (the file backend has "
        "no schema to migrate)");
  }
  invocation.command = Command::kMigrate;
  return invocation;
}

// counterd healthcheck [--listen ADDR:PORT] [--tls ...].
Result<Invocation> ParseHealthcheck(const po::options_description& serve,
                                    const po::options_description& healthcheck,
                                    std::span<const char* const> rest,
                                    std::span<const char* const> environment) {
  Invocation invocation;
  po::variables_map vm;
  Sources sources;
  COUNTERD_RETURN_IF_ERROR(
      ParseInto(healthcheck, rest, environment, &kHealthcheckEnv, vm, sources));
  if (vm.contains("help")) {
    invocation.command = Command::kHelp;
    invocation.text = HelpText(serve, healthcheck);
    return invocation;
  }
  invocation.command = Command::kHealthcheck;
  Config& c = invocation.config;
  COUNTERD_RETURN_IF_ERROR(ReadListen(vm, sources, c.listen));
  c.tls_cert_file = vm["tls-cert-file"].as<std::string>();
  c.tls_key_file = vm["tls-key-file"].as<std::string>();
  c.probe_tls = vm["tls"].as<bool>() || !c.tls_cert_file.empty();
  return invocation;
}

// counterd restore --from FILE [--data-dir DIR | --backend postgres
// --postgres-url URL] [--force]. Only the options it names come from the
// environment: a pod's COUNTERD_* settings select the same store.
Status ParseRestore(std::span<const char* const> rest,
                    std::span<const char* const> environment,
                    Invocation& invocation) {
  static const std::vector<std::string_view> kRestoreEnv = {
      "data-dir", "backend", "postgres-url"};
  po::options_description restore("Options of counterd restore");
  // clang-format off
  restore.add_options()
    ("help", "print this help and exit")
    ("from", po::value<std::string>()->default_value(""),
     "the snapshot file to restore (from GET /admin/snapshot, or a data "
     "dir's state.json)")
    ("data-dir", po::value<std::string>()->default_value("/data"),
     "the data dir to build (file backend; COUNTERD_DATA_DIR)")
    ("backend", po::value<std::string>()->default_value("file"),
     "file or postgres (COUNTERD_BACKEND)")
    ("postgres-url", po::value<std::string>()->default_value(""),
     "the database to load (COUNTERD_POSTGRES_URL)")
    ("force", po::bool_switch()->default_value(false),
     "replace a store that is already there");
  // clang-format on
  po::variables_map vm;
  Sources sources;
  COUNTERD_RETURN_IF_ERROR(
      ParseInto(restore, rest, environment, &kRestoreEnv, vm, sources));
  if (vm.contains("help")) {
    std::ostringstream text;
    text << "Usage: counterd restore --from FILE [--data-dir DIR] [--force]\n"
            "       counterd restore --from FILE --backend postgres "
            "--postgres-url URL [--force]\n"
            "Verifies a snapshot and makes a store of it: a data dir built "
            "atomically, or\nthe database loaded in one transaction. Exit 0 "
            "when done, 1 when the snapshot\nis damaged or the store could "
            "not be written, 2 for bad usage or a store\nthat is not empty "
            "(without --force).\n\n"
         << restore;
    invocation.command = Command::kHelp;
    invocation.text = text.str();
    return Status::Ok();
  }
  invocation.command = Command::kRestore;
  invocation.snapshot_file = vm["from"].as<std::string>();
  if (invocation.snapshot_file.empty()) {
    return Status::InvalidArgument("counterd restore needs --from FILE");
  }
  invocation.force = vm["force"].as<bool>();
  Config& c = invocation.config;
  COUNTERD_RETURN_IF_ERROR(ReadStoreChoice(vm, sources, c));
  c.data_dir = vm["data-dir"].as<std::string>();
  if (c.data_dir.empty()) {
    return BadValue(sources, "data-dir", "", "a directory path");
  }
  return Status::Ok();
}

}  // namespace

Result<Invocation> ParseCommandLine(std::span<const char* const> args,
                                    std::span<const char* const> environment) {
  const po::options_description serve = ServeOptions();
  const po::options_description healthcheck = HealthcheckOptions();
  std::span<const char* const> rest =
      args.empty() ? args : args.subspan(1);  // past the program name

  if (!rest.empty() && rest.front() != nullptr && rest.front()[0] != '-') {
    const std::string_view command = rest.front();
    rest = rest.subspan(1);
    if (command == "restore") {
      Invocation invocation;
      COUNTERD_RETURN_IF_ERROR(ParseRestore(rest, environment, invocation));
      return invocation;
    }
    if (command == "check") return ParseCheck(rest, environment);
    if (command == "hash-token") return ParseHashToken(rest);
    if (command == "migrate") return ParseMigrate(serve, rest, environment);
    if (command != "healthcheck") {
      return Status::InvalidArgument("unknown command '" +
                                     std::string(command) +
                                     "' (see counterd --help)");
    }
    return ParseHealthcheck(serve, healthcheck, rest, environment);
  }

  Invocation invocation;
  po::variables_map vm;
  Sources sources;
  COUNTERD_RETURN_IF_ERROR(ParseInto(serve, rest, environment, nullptr, vm,
                                     sources,
                                     &invocation.ignored_service_links));
  if (vm.contains("help")) {
    invocation.command = Command::kHelp;
    invocation.text = HelpText(serve, healthcheck);
    return invocation;
  }
  if (vm.contains("version")) {
    invocation.command = Command::kVersion;
    invocation.text = "counterd " + std::string(kVersion) + "\n";
    return invocation;
  }
  COUNTERD_RETURN_IF_ERROR(ReadServeConfig(vm, sources, invocation.config));
  return invocation;
}

}  // namespace counterd::app
