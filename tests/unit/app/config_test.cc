#include "counterd/app/config.h"

#include <initializer_list>
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

TEST(ConfigTest, KubernetesServiceLinksAreIgnored) {
  EXPECT_TRUE(Parse(
      {},
      {"COUNTERD_SERVICE_HOST=10.0.0.1", "COUNTERD_SERVICE_PORT=8080",
       "COUNTERD_SERVICE_PORT_HTTP=8080", "COUNTERD_PORT=tcp://10.0.0.1:8080",
       "COUNTERD_PORT_8080_TCP_ADDR=10.0.0.1"}));
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

TEST(ConfigTest, OtherCommandsAreRefused) {
  EXPECT_NE(Error(Parse({"serve-now"})).find("serve-now"), std::string::npos);
}

}  // namespace
}  // namespace counterd::app
