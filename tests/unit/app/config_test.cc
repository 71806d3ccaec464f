#include "counterd/app/config.h"

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace counterd::app {
namespace {

using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

Result<Invocation> Parse(std::initializer_list<const char*> args,
                         std::initializer_list<const char*> env = {}) {
  std::vector<const char*> argv{"counterd"};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::vector<const char*> envp(env);
  return ParseCommandLine(argv, envp);
}

std::string Error(const Result<Invocation>& r) {
  EXPECT_FALSE(r);
  return r ? "" : r.error().message();
}

TEST(ConfigTest, DefaultsAreTheDocumentedOnes) {
  const auto r = Parse({}, {"PATH=/bin", "HOME=/root"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->command, Command::kServe);
  EXPECT_EQ(r->config, Config{});
  EXPECT_EQ(r->config.listen, (http::ListenAddress{"0.0.0.0", 8080}));
  EXPECT_EQ(r->config.data_dir, "/data");
  EXPECT_EQ(r->config.max_body_bytes, 65536u);
  EXPECT_EQ(r->config.header_timeout, 10s);
  EXPECT_EQ(r->config.idle_timeout, 60s);
  EXPECT_EQ(r->config.max_connections, 1024u);
  EXPECT_EQ(r->config.max_connections_per_client, 256u);
  EXPECT_EQ(r->config.drain_timeout, 10s);
  EXPECT_EQ(r->config.idempotency_retention, 24h);
  EXPECT_EQ(r->config.slow_fsync_warning, 100ms);
}

TEST(ConfigTest, SlowFsyncWarningThreshold) {
  auto r = Parse({"--slow-fsync-warning-ms", "250"}, {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.slow_fsync_warning, 250ms);
  r = Parse({}, {"COUNTERD_SLOW_FSYNC_WARNING_MS=7"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.slow_fsync_warning, 7ms);
  EXPECT_FALSE(Parse({"--slow-fsync-warning-ms", "0"}, {}));
  EXPECT_FALSE(Parse({"--slow-fsync-warning-ms", "-5"}, {}));
}

TEST(ConfigTest, MinFreeBytesAndOnStoreFailure) {
  auto r = Parse({}, {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.min_free_bytes, std::nullopt);  // auto
  EXPECT_EQ(r->config.on_store_failure, OnStoreFailure::kExit);
  r = Parse({"--min-free-bytes", "0", "--on-store-failure", "stay"}, {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.min_free_bytes, std::optional<std::uint64_t>(0));
  EXPECT_EQ(r->config.on_store_failure, OnStoreFailure::kStay);
  r = Parse({}, {"COUNTERD_MIN_FREE_BYTES=1048576",
                 "COUNTERD_ON_STORE_FAILURE=exit"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.min_free_bytes, std::optional<std::uint64_t>(1048576));
  EXPECT_EQ(r->config.on_store_failure, OnStoreFailure::kExit);
  r = Parse({"--min-free-bytes", "auto"}, {"COUNTERD_MIN_FREE_BYTES=5"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.min_free_bytes, std::nullopt);

  const auto bad = Parse({"--min-free-bytes", "lots"}, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "invalid value 'lots' for --min-free-bytes: expected auto or a "
            "number of bytes from 0 to 2^50");
  const auto bad_env = Parse({}, {"COUNTERD_ON_STORE_FAILURE=restart"});
  ASSERT_FALSE(bad_env);
  EXPECT_EQ(bad_env.error().message(),
            "invalid value 'restart' for COUNTERD_ON_STORE_FAILURE: expected "
            "stay or exit");
}

TEST(ConfigTest, EveryOptionFromTheCommandLine) {
  const auto r = Parse({"--listen",
                        "127.0.0.1:0",
                        "--data-dir=/tmp/d",
                        "--threads",
                        "3",
                        "--log-level",
                        "debug",
                        "--log-format",
                        "json",
                        "--max-body-bytes",
                        "100",
                        "--max-header-bytes",
                        "2048",
                        "--header-timeout-ms",
                        "1",
                        "--read-timeout-ms",
                        "2",
                        "--write-timeout-ms",
                        "3",
                        "--idle-timeout-ms",
                        "4",
                        "--max-connections",
                        "5",
                        "--max-connections-per-client",
                        "2",
                        "--drain-timeout-ms",
                        "0",
                        "--compaction-threshold-bytes",
                        "4096",
                        "--idempotency-retention-seconds",
                        "60"});
  ASSERT_TRUE(r) << r.error().ToString();
  const Config& c = r->config;
  EXPECT_EQ(c.listen, (http::ListenAddress{"127.0.0.1", 0}));
  EXPECT_EQ(c.data_dir, "/tmp/d");
  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.log_format, LogFormat::kJson);
  EXPECT_EQ(c.max_body_bytes, 100u);
  EXPECT_EQ(c.max_header_bytes, 2048u);
  EXPECT_EQ(c.header_timeout, 1ms);
  EXPECT_EQ(c.read_timeout, 2ms);
  EXPECT_EQ(c.write_timeout, 3ms);
  EXPECT_EQ(c.idle_timeout, 4ms);
  EXPECT_EQ(c.max_connections, 5u);
  EXPECT_EQ(c.max_connections_per_client, 2u);
  EXPECT_EQ(c.drain_timeout, 0ms);
  EXPECT_EQ(c.compaction_threshold_bytes, 4096u);
  EXPECT_EQ(c.idempotency_retention, 60s);
}

TEST(ConfigTest, EnvironmentFillsInAndCommandLineWins) {
  const auto r =
      Parse({"--data-dir", "/from-cli"},
            {"COUNTERD_DATA_DIR=/from-env", "COUNTERD_LISTEN=127.0.0.1:9000",
             "COUNTERD_MAX_BODY_BYTES=100", "COUNTERD_LOG_FORMAT=json"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.data_dir, "/from-cli");
  EXPECT_EQ(r->config.listen, (http::ListenAddress{"127.0.0.1", 9000}));
  EXPECT_EQ(r->config.max_body_bytes, 100u);
  EXPECT_EQ(r->config.log_format, LogFormat::kJson);
}

TEST(ConfigTest, PerClientConnectionCapFromTheEnvironment) {
  const auto r = Parse({}, {"COUNTERD_MAX_CONNECTIONS_PER_CLIENT=7"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.max_connections_per_client, 7u);
  EXPECT_NE(Error(Parse({}, {"COUNTERD_MAX_CONNECTIONS_PER_CLIENT=0"}))
                .find("COUNTERD_MAX_CONNECTIONS_PER_CLIENT"),
            std::string::npos);
}

TEST(ConfigTest, TlsFilesComeTogether) {
  auto r = Parse({"--tls-cert-file", "/c.pem", "--tls-key-file", "/k.pem",
                  "--tls-client-ca-file", "/ca.pem"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.tls_cert_file, "/c.pem");
  EXPECT_EQ(r->config.tls_key_file, "/k.pem");
  EXPECT_EQ(r->config.tls_client_ca_file, "/ca.pem");
  r = Parse({},
            {"COUNTERD_TLS_CERT_FILE=/c.pem", "COUNTERD_TLS_KEY_FILE=/k.pem"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.tls_cert_file, "/c.pem");
  EXPECT_TRUE(Parse({})->config.tls_cert_file.empty());

  EXPECT_EQ(Error(Parse({"--tls-cert-file", "/c.pem"})),
            "--tls-cert-file needs --tls-key-file too: give both TLS files or "
            "neither");
  EXPECT_EQ(Error(Parse({}, {"COUNTERD_TLS_KEY_FILE=/k.pem"})),
            "COUNTERD_TLS_KEY_FILE needs COUNTERD_TLS_CERT_FILE too: give both "
            "TLS files or neither");
  EXPECT_EQ(Error(Parse({"--tls-client-ca-file", "/ca.pem"})),
            "--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
}

TEST(ConfigTest, HealthcheckProbesOverTlsWhenTheServerDoes) {
  auto r = Parse({"healthcheck"});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->config.probe_tls);
  r = Parse({"healthcheck", "--tls"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->config.probe_tls);
  EXPECT_TRUE(r->config.tls_cert_file.empty());
  // The container's environment: the server's TLS variables, the client
  // CA among them, which the probe does not need.
  r = Parse({"healthcheck"}, {"COUNTERD_TLS_CERT_FILE=/tls/tls.crt",
                              "COUNTERD_TLS_KEY_FILE=/tls/tls.key",
                              "COUNTERD_TLS_CLIENT_CA_FILE=/tls/ca.crt"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->config.probe_tls);
  EXPECT_EQ(r->config.tls_cert_file, "/tls/tls.crt");
  EXPECT_EQ(r->config.tls_key_file, "/tls/tls.key");
}

TEST(ConfigTest, UnknownEnvironmentVariableIsNamed) {
  EXPECT_NE(Error(Parse({}, {"COUNTERD_DATADIR=/x"})).find("COUNTERD_DATADIR"),
            std::string::npos);
  EXPECT_FALSE(Parse({}, {"COUNTERD_HELP=1"}));
}

// What the kubelet injects for one Service (pkg/kubelet/envvars): |ports|
// are {port, name, protocol}; the first one also gets the unnumbered names.
struct ServicePortSpec {
  int port;
  std::string name;
  std::string protocol = "TCP";
};

std::vector<std::string> ServiceLinks(
    const std::string& prefix, const std::string& ip,
    const std::vector<ServicePortSpec>& ports) {
  const std::string host =
      ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  const auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(c));
    return s;
  };
  std::vector<std::string> env{
      prefix + "_SERVICE_HOST=" + ip,
      prefix + "_SERVICE_PORT=" + std::to_string(ports.front().port)};
  for (const ServicePortSpec& p : ports) {
    if (!p.name.empty()) {
      env.push_back(prefix + "_SERVICE_PORT_" + p.name + "=" +
                    std::to_string(p.port));
    }
  }
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const ServicePortSpec& p = ports[i];
    const std::string url =
        lower(p.protocol) + "://" + host + ":" + std::to_string(p.port);
    if (i == 0) env.push_back(prefix + "_PORT=" + url);
    const std::string base =
        prefix + "_PORT_" + std::to_string(p.port) + "_" + p.protocol;
    env.push_back(base + "=" + url);
    env.push_back(base + "_PROTO=" + lower(p.protocol));
    env.push_back(base + "_PORT=" + std::to_string(p.port));
    env.push_back(base + "_ADDR=" + ip);
  }
  return env;
}

std::vector<std::string> Names(const std::vector<std::string>& env) {
  std::vector<std::string> names;
  for (const std::string& e : env) names.push_back(e.substr(0, e.find('=')));
  return names;
}

Result<Invocation> ParseEnv(const std::vector<std::string>& env) {
  std::vector<const char*> envp;
  for (const std::string& e : env) envp.push_back(e.c_str());
  const std::vector<const char*> argv{"counterd"};
  return ParseCommandLine(argv, envp);
}

TEST(ConfigTest, KubernetesServiceLinksAreIgnoredAndListed) {
  // The base's client Service, a PostgreSQL Service next to it, a Service
  // whose name contains PORT, IPv6, UDP and SCTP, several and named ports.
  std::vector<std::vector<std::string>> cases{
      ServiceLinks("COUNTERD", "10.96.0.10", {{80, "HTTP"}}),
      ServiceLinks("COUNTERD_POSTGRES", "10.96.12.7", {{5432, "POSTGRES"}}),
      ServiceLinks("COUNTERD", "10.0.0.1", {{8080, ""}}),
      ServiceLinks("COUNTERD_METRICS", "fd00:10:96::a",
                   {{9090, "METRICS"}, {9091, "", "UDP"}}),
      ServiceLinks("COUNTERD_PORT", "10.0.0.2",
                   {{1, "A_B"}, {65535, "X9", "SCTP"}}),
      ServiceLinks("COUNTERD_SERVICE_PORT_HTTP", "10.0.0.3", {{443, "HTTPS"}}),
  };
  std::vector<std::string> all;
  for (const auto& links : cases) {
    all.insert(all.end(), links.begin(), links.end());
    const auto r = ParseEnv(links);
    ASSERT_TRUE(r) << links.front() << ": " << r.error().ToString();
    EXPECT_EQ(r->config, Config{});
    EXPECT_EQ(r->ignored_service_links, Names(links));
  }
  // Together, with real options and unrelated variables around them.
  all.push_back("COUNTERD_LISTEN=127.0.0.1:9000");
  all.push_back("KUBERNETES_SERVICE_HOST=10.96.0.1");
  const auto r = ParseEnv(all);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->config.listen, (http::ListenAddress{"127.0.0.1", 9000}));
  EXPECT_EQ(r->ignored_service_links.size(), all.size() - 2);
}

TEST(ConfigTest, LookalikesOfServiceLinksAreStillRefused) {
  for (const char* env : {
           // Right name, value of the wrong shape.
           "COUNTERD_PORT=8080",
           "COUNTERD_PORT=tcp://10.0.0.1",
           "COUNTERD_PORT=http://10.0.0.1:80",
           "COUNTERD_PORT=TCP://10.0.0.1:80",
           "COUNTERD_PORT=tcp://::1:80",
           "COUNTERD_PORT=tcp://[10.0.0.1]:80",
           "COUNTERD_PORT=tcp://localhost:80",
           "COUNTERD_PORT=tcp://10.0.0.1:0",
           "COUNTERD_PORT=tcp://10.0.0.1:080",
           "COUNTERD_PORT=tcp://10.0.0.1:80/",
           "COUNTERD_SERVICE_HOST=localhost",
           "COUNTERD_SERVICE_HOST=counterd.default.svc",
           "COUNTERD_SERVICE_HOST=",
           "COUNTERD_SERVICE_HOST=fe80::1%eth0",
           "COUNTERD_SERVICE_HOST=10.0.0.1:80",
           "COUNTERD_SERVICE_PORT=http",
           "COUNTERD_SERVICE_PORT=0",
           "COUNTERD_SERVICE_PORT=65536",
           "COUNTERD_SERVICE_PORT=08080",
           "COUNTERD_SERVICE_PORT=+80",
           "COUNTERD_SERVICE_PORT_HTTP=tcp://10.0.0.1:80",
           "COUNTERD_PORT_80_TCP=tcp://10.0.0.1:81",
           "COUNTERD_PORT_80_TCP=udp://10.0.0.1:80",
           "COUNTERD_PORT_80_TCP_PROTO=udp",
           "COUNTERD_PORT_80_TCP_PROTO=TCP",
           "COUNTERD_PORT_80_TCP_PORT=81",
           "COUNTERD_PORT_80_TCP_ADDR=counterd",
           // Wrong name, value of a right shape.
           "COUNTERD_PORT_80_HTTP=tcp://10.0.0.1:80",
           "COUNTERD_PORT_80_TCP_HOST=10.0.0.1",
           "COUNTERD_PORT_080_TCP_PORT=80",
           "COUNTERD_PORT_80=tcp://10.0.0.1:80",
           "COUNTERD_PORT_TCP=tcp://10.0.0.1:80",
           "COUNTERD_SERVICE_PORT_=80",
           "COUNTERD_SERVICE_PORT__HTTP=80",
           "COUNTERD_SERVICE_PORTS=80",
           "COUNTERD__SERVICE_HOST=10.0.0.1",
           "COUNTERD_X__SERVICE_HOST=10.0.0.1",
           "COUNTERD_SERVICE_HOSTS=10.0.0.1",
           "COUNTERD_HOST=10.0.0.1",
           "COUNTERD_ADDR=10.0.0.1",
           // Real options' neighbours (typos) stay errors.
           "COUNTERD_DATADIR=/data",
           "COUNTERD_LISTEN_PORT=8080",
       }) {
    const auto r = ParseEnv({env});
    const std::string name(env, std::string_view(env).find('='));
    EXPECT_NE(Error(r).find("unknown environment variable " + name),
              std::string::npos)
        << env;
  }
}

TEST(ConfigTest, TestFaultsVariableIsLeftToMainAndNotAServiceLink) {
  const auto r = ParseEnv({"COUNTERD_TEST_FAULTS=fsync:ENOSPC"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->ignored_service_links.empty());
}

// A future option named like a link (say --postgres-port, which a Service
// "counterd-postgres" would inject as COUNTERD_POSTGRES_PORT=tcp://...)
// would turn that Service's variables into bad option values.
TEST(ConfigTest, NoOptionIsNamedLikeAServiceLink) {
  const auto help = Parse({"--help"});
  ASSERT_TRUE(help);
  const std::regex option(R"(--([a-z][a-z0-9-]*))");
  const std::regex link(
      "COUNTERD(_[A-Z0-9_]*)?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|"
      "PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)");
  int options = 0;
  for (auto it =
           std::sregex_iterator(help->text.begin(), help->text.end(), option);
       it != std::sregex_iterator(); ++it) {
    std::string env = "COUNTERD_";
    for (const char c : (*it)[1].str()) {
      env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
    }
    EXPECT_FALSE(std::regex_match(env, link)) << env;
    ++options;
  }
  EXPECT_GT(options, 10);
}

TEST(ConfigTest, BadValuesNameTheirSource) {
  EXPECT_NE(
      Error(Parse({"--max-connections", "abc"})).find("--max-connections"),
      std::string::npos);
  EXPECT_NE(Error(Parse({}, {"COUNTERD_MAX_CONNECTIONS=many"}))
                .find("COUNTERD_MAX_CONNECTIONS"),
            std::string::npos);
}

TEST(ConfigTest, RejectsMalformedAndOutOfRangeValues) {
  for (const auto& args : std::vector<std::vector<const char*>>{
           {"--listen", "nonsense"},
           {"--listen", "127.0.0.1:99999"},
           {"--max-connections", "0"},
           {"--max-connections", "-1"},
           {"--max-connections-per-client", "0"},
           {"--max-connections-per-client", "many"},
           {"--idle-timeout-ms", "soon"},
           {"--header-timeout-ms", "1.5x"},
           {"--header-timeout-ms", "0"},
           {"--max-body-bytes", "lots"},
           {"--max-body-bytes", " 5"},
           {"--threads", "+2"},
           {"--log-format", "xml"},
           {"--log-level", "verbose"},
           {"--data-dir", ""},
           {"--no-such-option"},
           {"--listen"},
           {"unexpected-positional"},
           {"--listen", "127.0.0.1:0", "stray"},
           {"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"},
       }) {
    std::vector<const char*> argv{"counterd"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = ParseCommandLine(argv, {});
    EXPECT_FALSE(r) << args.front();
    if (!r) {
      EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
    }
  }
}

TEST(ConfigTest, HelpAndVersion) {
  auto r = Parse({"--help"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->command, Command::kHelp);
  for (const char* option :
       {"--listen", "--data-dir", "--log-format", "--header-timeout-ms",
        "--idle-timeout-ms", "--max-connections", "--drain-timeout-ms",
        "--max-connections-per-client", "--max-body-bytes", "healthcheck",
        "COUNTERD_"}) {
    EXPECT_NE(r->text.find(option), std::string::npos) << option;
  }
  r = Parse({"--version"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->command, Command::kVersion);
  EXPECT_EQ(r->text.rfind("counterd ", 0), 0u);
}

TEST(ConfigTest, HealthcheckSubcommand) {
  auto r = Parse({"healthcheck"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->command, Command::kHealthcheck);
  EXPECT_EQ(r->config.listen, (http::ListenAddress{"0.0.0.0", 8080}));
  r = Parse({"healthcheck", "--listen", "127.0.0.1:9"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->config.listen, (http::ListenAddress{"127.0.0.1", 9}));
  // COUNTERD_LISTEN counts; the server's other variables are not its
  // business (the container sets them all).
  r = Parse({"healthcheck"}, {"COUNTERD_LISTEN=127.0.0.1:7",
                              "COUNTERD_DATA_DIR=/x", "COUNTERD_WHATEVER=1"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->config.listen, (http::ListenAddress{"127.0.0.1", 7}));
  EXPECT_FALSE(Parse({"healthcheck", "--data-dir", "/x"}));
  EXPECT_EQ(Parse({"healthcheck", "--help"})->command, Command::kHelp);
}

TEST(ConfigTest, CheckTakesADataDir) {
  auto check = Parse({"check", "--data-dir", "/x"});
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_EQ(check->command, Command::kCheck);
  EXPECT_EQ(check->config.data_dir, "/x");
}

TEST(ConfigTest, AuthTokensFileFromEitherSourceAndOffByDefault) {
  EXPECT_EQ(Parse({})->config.auth_tokens_file, "");
  EXPECT_EQ(
      Parse({"--auth-tokens-file", "/etc/t.json"})->config.auth_tokens_file,
      "/etc/t.json");
  EXPECT_EQ(Parse({}, {"COUNTERD_AUTH_TOKENS_FILE=/env/t.json"})
                ->config.auth_tokens_file,
            "/env/t.json");
  EXPECT_EQ(
      Parse({"--auth-tokens-file", "/cli"}, {"COUNTERD_AUTH_TOKENS_FILE=/env"})
          ->config.auth_tokens_file,
      "/cli");
  EXPECT_NE(Parse({"--help"})->text.find("--auth-tokens-file"),
            std::string::npos);
  EXPECT_NE(Parse({"--help"})->text.find("hash-token"), std::string::npos);
}

TEST(ConfigTest, HashTokenTakesNoOptionsAndIgnoresTheEnvironment) {
  EXPECT_EQ(Parse({"hash-token"}, {"COUNTERD_NOPE=1"})->command,
            Command::kHashToken);
  EXPECT_EQ(Parse({"hash-token", "--help"})->command, Command::kHelp);
  EXPECT_EQ(Error(Parse({"hash-token", "s3cret"})),
            "hash-token reads the token on standard input and takes no "
            "arguments");
  EXPECT_FALSE(Parse({"hash-token", "--listen", "127.0.0.1:1"}));
}

TEST(ConfigTest, OtherCommandsAreRefused) {
  EXPECT_NE(Error(Parse({"serve-now"})).find("serve-now"), std::string::npos);
}

// -- the postgres backend's options ------------------------------------------

TEST(ConfigTest, BackendDefaultsToFile) {
  const auto r = Parse({});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->config.backend, Backend::kFile);
  EXPECT_EQ(r->config.postgres_url, "");
  EXPECT_EQ(r->config.postgres_pool_size, 4u);
}

TEST(ConfigTest, PostgresBackendFromCommandLineOrEnvironment) {
  const auto cli =
      Parse({"--backend", "postgres", "--postgres-url",
             "postgresql://h1,h2/db?target_session_attrs=read-write",
             "--postgres-pool-size", "8", "--data-dir", "/x"});
  ASSERT_TRUE(cli) << cli.error().ToString();
  EXPECT_EQ(cli->config.backend, Backend::kPostgres);
  EXPECT_EQ(cli->config.postgres_url,
            "postgresql://h1,h2/db?target_session_attrs=read-write");
  EXPECT_EQ(cli->config.postgres_pool_size, 8u);
  EXPECT_EQ(cli->config.data_dir, "/x");  // accepted, ignored by postgres
  const auto env = Parse({}, {"COUNTERD_BACKEND=postgres",
                              "COUNTERD_POSTGRES_URL=host=db dbname=c"});
  ASSERT_TRUE(env) << env.error().ToString();
  EXPECT_EQ(env->config.backend, Backend::kPostgres);
  EXPECT_EQ(env->config.postgres_url, "host=db dbname=c");
}

TEST(ConfigTest, PostgresBackendNeedsAUrlAndAPoolOfTwo) {
  EXPECT_EQ(Error(Parse({"--backend", "postgres"})),
            "--backend postgres needs --postgres-url (or "
            "COUNTERD_POSTGRES_URL)");
  EXPECT_EQ(Error(Parse({"--backend", "sqlite"})),
            "invalid value 'sqlite' for --backend: expected file or postgres");
  EXPECT_NE(Error(Parse({"--backend", "postgres", "--postgres-url", "x",
                         "--postgres-pool-size", "1"}))
                .find("--postgres-pool-size"),
            std::string::npos);
}

TEST(ConfigTest, MigrateTakesTheServeOptions) {
  const auto r = Parse({"migrate"}, {"COUNTERD_BACKEND=postgres",
                                     "COUNTERD_POSTGRES_URL=postgresql:///c",
                                     "COUNTERD_LISTEN=0.0.0.0:9090"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->command, Command::kMigrate);
  EXPECT_EQ(r->config.postgres_url, "postgresql:///c");
  EXPECT_EQ(Error(Parse({"migrate"})),
            "counterd migrate needs --backend postgres (the file backend has "
            "no schema to migrate)");
  const auto help = Parse({"migrate", "--help"});
  ASSERT_TRUE(help);
  EXPECT_EQ(help->command, Command::kHelp);
  EXPECT_NE(help->text.find("counterd migrate"), std::string::npos);
}

TEST(ConfigTest, RestoreIntoADataDir) {
  const auto r = Parse(
      {"restore", "--from", "/b/snap.json", "--data-dir", "/d", "--force"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->command, Command::kRestore);
  EXPECT_EQ(r->snapshot_file, "/b/snap.json");
  EXPECT_EQ(r->config.data_dir, "/d");
  EXPECT_EQ(r->config.backend, Backend::kFile);
  EXPECT_TRUE(r->force);
  // The pod's environment selects the store; --force never comes from it.
  const auto env = Parse({"restore", "--from", "/s"},
                         {"COUNTERD_DATA_DIR=/data2", "COUNTERD_LISTEN=x"});
  ASSERT_TRUE(env) << env.error().message();
  EXPECT_EQ(env->config.data_dir, "/data2");
  EXPECT_FALSE(env->force);
}

TEST(ConfigTest, RestoreIntoPostgres) {
  const auto r = Parse({"restore", "--from", "/s", "--backend", "postgres",
                        "--postgres-url", "postgresql://db/x"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->config.backend, Backend::kPostgres);
  EXPECT_EQ(r->config.postgres_url, "postgresql://db/x");
  EXPECT_EQ(Error(Parse({"restore", "--from", "/s", "--backend", "postgres"})),
            "--backend postgres needs --postgres-url (or "
            "COUNTERD_POSTGRES_URL)");
}

TEST(ConfigTest, RestoreNeedsASnapshot) {
  EXPECT_EQ(Error(Parse({"restore", "--data-dir", "/d"})),
            "counterd restore needs --from FILE");
  EXPECT_EQ(Error(Parse({"restore", "--from", "/s", "--backend", "tape"})),
            "invalid value 'tape' for --backend: expected file or postgres");
  const auto help = Parse({"restore", "--help"});
  ASSERT_TRUE(help);
  EXPECT_EQ(help->command, Command::kHelp);
  EXPECT_EQ(help->text.rfind("Usage: counterd restore --from FILE", 0), 0u);
}

TEST(ConfigTest, CheckASnapshotFile) {
  const auto r = Parse({"check", "--snapshot", "/b/snap.json"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->command, Command::kCheck);
  EXPECT_EQ(r->snapshot_file, "/b/snap.json");
  EXPECT_TRUE(Parse({"check"})->snapshot_file.empty());
}

}  // namespace
}  // namespace counterd::app
