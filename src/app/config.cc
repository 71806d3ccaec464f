#include "counterd/app/config.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

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

// Variables Kubernetes injects for a Service named "counterd" (service
// links): not options, and must not stop the pod from starting.
bool IsServiceLink(std::string_view env) {
  return env == "COUNTERD_TEST_FAULTS" ||  // read by main, for fault tests
         env == "COUNTERD_SERVICE_HOST" ||
         env.starts_with("COUNTERD_SERVICE_PORT") || env == "COUNTERD_PORT" ||
         env.starts_with("COUNTERD_PORT_");
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
    ("drain-timeout-ms", po::value<std::string>()->default_value("10000"),
     "on SIGTERM/SIGINT, how long requests in flight may take to finish")
    ("compaction-threshold-bytes",
     po::value<std::string>()->default_value("67108864"),
     "write a snapshot and start a new journal past this journal size")
    ("idempotency-retention-seconds",
     po::value<std::string>()->default_value("86400"),
     "how long Idempotency-Key outcomes are kept")
    ("tls-cert-file", po::value<std::string>()->default_value(""),
     "PEM certificate chain: serve HTTPS only (TLS 1.2/1.3), with "
     "--tls-key-file; reloaded when the file changes")
    ("tls-key-file", po::value<std::string>()->default_value(""),
     "PEM private key of --tls-cert-file")
    ("tls-client-ca-file", po::value<std::string>()->default_value(""),
     "PEM CA certificates: require client certificates they signed "
     "(mutual TLS)");
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
         "(exit 0 sound, 1 not)\n\n"
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
  const std::string& text = vm[option].as<std::string>();
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
  const std::string& text = vm["listen"].as<std::string>();
  Result<http::ListenAddress> listen = http::ParseListenAddress(text);
  if (!listen) {
    return BadValue(sources, "listen", text,
                    "ADDR:PORT with a numeric address and a port from 0 to "
                    "65535");
  }
  out = std::move(*listen);
  return Status::Ok();
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

  const std::string& level = vm["log-level"].as<std::string>();
  static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
      {"trace", LogLevel::kTrace},
      {"debug", LogLevel::kDebug},
      {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},
      {"error", LogLevel::kError}};
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
  const std::string& format = vm["log-format"].as<std::string>();
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
  return Status::Ok();
}

// COUNTERD_* variables as options of |desc|. With |only|, just those
// options are read and every other variable ignored (healthcheck, check);
// without it an unknown variable is an error, so a typo in a ConfigMap
// fails fast.
Result<po::parsed_options> ParseEnvironment(
    const po::options_description& desc,
    std::span<const char* const> environment,
    const std::vector<std::string_view>* only) {
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
    if (only != nullptr) {
      if (std::find(only->begin(), only->end(), option) == only->end()) {
        continue;
      }
    } else if (IsServiceLink(name)) {
      continue;
    } else if (option == "help" || option == "version" ||
               desc.find_nothrow(option, false) == nullptr) {
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
                 po::variables_map& vm, Sources& sources) {
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
        ParseEnvironment(desc, environment, env_only);
    if (!env) return env.error();
    po::store(*env, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Status::InvalidArgument(e.what());
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

  Invocation invocation;
  po::variables_map vm;
  Sources sources;
  if (!rest.empty() && rest.front() != nullptr && rest.front()[0] != '-') {
    const std::string_view command = rest.front();
    rest = rest.subspan(1);
    if (command == "check") {
      po::options_description check("Options of counterd check");
      check.add_options()("help", "print this help and exit")(
          "data-dir", po::value<std::string>()->default_value("/data"),
          "the data dir to verify (COUNTERD_DATA_DIR)");
      COUNTERD_RETURN_IF_ERROR(
          ParseInto(check, rest, environment, &kCheckEnv, vm, sources));
      if (vm.count("help")) {
        std::ostringstream text;
        text << "Usage: counterd check [--data-dir DIR]\n"
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
      return invocation;
    }
    if (command != "healthcheck") {
      return Status::InvalidArgument("unknown command '" +
                                     std::string(command) +
                                     "' (see counterd --help)");
    }
    COUNTERD_RETURN_IF_ERROR(ParseInto(healthcheck, rest, environment,
                                       &kHealthcheckEnv, vm, sources));
    if (vm.count("help")) {
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

  COUNTERD_RETURN_IF_ERROR(
      ParseInto(serve, rest, environment, nullptr, vm, sources));
  if (vm.count("help")) {
    invocation.command = Command::kHelp;
    invocation.text = HelpText(serve, healthcheck);
    return invocation;
  }
  if (vm.count("version")) {
    invocation.command = Command::kVersion;
    invocation.text = "counterd " + std::string(kVersion) + "\n";
    return invocation;
  }
  COUNTERD_RETURN_IF_ERROR(ReadServeConfig(vm, sources, invocation.config));
  return invocation;
}

}  // namespace counterd::app
