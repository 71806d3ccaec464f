// The server with TLS on, over loopback: requests over TLS, the handshake
// deadline, mutual TLS and the connection cap. Certificates are made at run
// time (test_certificates.h); the tests block on the server's own timers
// and replies, never on sleeps.
#include <sys/socket.h>
#include <sys/time.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "counterd/core/clock.h"
#include "counterd/http/server.h"
#include "support/fake_repository.h"
#include "test_certificates.h"

namespace counterd::http {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using Response = bhttp::response<bhttp::string_body>;
using counterd::testing::MakeTestCertificate;
using counterd::testing::TestCertificate;
using counterd::testing::WriteTestFile;

void SetReceiveTimeout(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

// A blocking TLS client that trusts |ca|; reads give up after 5 s.
class TlsClient {
 public:
  TlsClient(const ListenAddress& address, const TestCertificate& ca,
            const TestCertificate* identity = nullptr)
      : ctx_(ssl::context::tls_client) {
    ctx_.add_certificate_authority(net::buffer(ca.cert_pem));
    ctx_.set_verify_mode(ssl::verify_peer);
    if (identity != nullptr) {
      ctx_.use_certificate_chain(net::buffer(identity->cert_pem));
      ctx_.use_private_key(net::buffer(identity->key_pem), ssl::context::pem);
    }
    // After the context is complete: a stream copies its settings.
    stream_.emplace(ioc_, ctx_);
    stream_->next_layer().connect(
        tcp::endpoint(net::ip::make_address(address.host), address.port));
    SetReceiveTimeout(stream_->next_layer().native_handle());
  }

  beast::error_code Handshake() {
    beast::error_code ec;
    stream_->handshake(ssl::stream_base::client, ec);
    return ec;
  }

  // Sends |request| and reads one response; nullopt if that failed.
  std::optional<Response> Exchange(std::string_view request) {
    beast::error_code ec;
    net::write(*stream_, net::buffer(request), ec);
    if (ec) return std::nullopt;
    bhttp::response_parser<bhttp::string_body> parser;
    bhttp::read(*stream_, buffer_, parser, ec);
    if (ec) return std::nullopt;
    return parser.release();
  }

 private:
  net::io_context ioc_;
  ssl::context ctx_;
  std::optional<ssl::stream<tcp::socket>> stream_;
  beast::flat_buffer buffer_;
};

std::string Get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("counterd-tls-server-" +
         std::string(
             ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ca_ = MakeTestCertificate("test CA", 1);
    server_cert_ = MakeTestCertificate("localhost", 2, &ca_);
    WriteTestFile((dir_ / "tls.crt").string(), server_cert_.cert_pem);
    WriteTestFile((dir_ / "tls.key").string(), server_cert_.key_pem);
    WriteTestFile((dir_ / "ca.crt").string(), ca_.cert_pem);
  }

  void TearDown() override {
    if (server_) server_->Stop();
    fs::remove_all(dir_);
  }

  void Start(ServerOptions options = {}, bool client_ca = false) {
    options.listen = {"127.0.0.1", 0};
    options.threads = 1;  // the fake store is single-threaded
    options.version = "9.9.9";
    options.hostname = "test";
    options.tls_cert_file = (dir_ / "tls.crt").string();
    options.tls_key_file = (dir_ / "tls.key").string();
    if (client_ca) options.tls_client_ca_file = (dir_ / "ca.crt").string();
    auto server = Server::Start(options, service_);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
  }

  std::string Metrics() {
    TlsClient c(server_->local_address(), ca_);
    EXPECT_FALSE(c.Handshake());
    const auto res = c.Exchange(Get("/metrics"));
    return res ? res->body() : "";
  }

  fs::path dir_;
  TestCertificate ca_;
  TestCertificate server_cert_;
  ManualClock clock_;
  counterd::testing::FakeRepository store_{clock_};
  service::CounterService service_{store_};
  std::unique_ptr<Server> server_;
};

TEST_F(TlsServerTest, ServesRequestsOverTlsWithKeepAlive) {
  Start();
  TlsClient c(server_->local_address(), ca_);
  ASSERT_FALSE(c.Handshake());
  auto res = c.Exchange(
      "POST /counters/a/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"by\":3}");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"name":"a","value":3,"version":1})");
  res = c.Exchange(Get("/counters/a"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_TRUE(res->keep_alive());
  EXPECT_NE(Metrics().find("counterd_tls_handshake_failures_total 0\n"),
            std::string::npos);
}

TEST_F(TlsServerTest, PlainHttpOnTheTlsPortIsNotServed) {
  Start();
  net::io_context ioc;
  tcp::socket plain(ioc);
  plain.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                              server_->local_address().port));
  SetReceiveTimeout(plain.native_handle());
  net::write(plain, net::buffer(Get("/livez")));
  char c = 0;
  beast::error_code ec;
  plain.read_some(net::buffer(&c, 1), ec);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset)
      << ec.message();
  EXPECT_EQ(store_.mutations(), 0u);
  EXPECT_NE(Metrics().find("counterd_tls_handshake_failures_total 1\n"),
            std::string::npos);
}

// A client that opens TCP and never sends its ClientHello is cut off by
// the header timeout.
TEST_F(TlsServerTest, SilentClientIsCutOffByTheHeaderTimeout) {
  ServerOptions options;
  options.header_timeout = std::chrono::milliseconds(50);
  Start(options);
  net::io_context ioc;
  tcp::socket silent(ioc);
  silent.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                               server_->local_address().port));
  SetReceiveTimeout(silent.native_handle());
  char c = 0;
  beast::error_code ec;
  EXPECT_EQ(silent.read_some(net::buffer(&c, 1), ec), 0u);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset)
      << ec.message();
  EXPECT_NE(Metrics().find("counterd_tls_handshake_failures_total 1\n"),
            std::string::npos);
}

TEST_F(TlsServerTest, MutualTlsNeedsACertificateFromTheClientCa) {
  Start({}, /*client_ca=*/true);
  const TestCertificate client = MakeTestCertificate("client", 3, &ca_);
  TlsClient with(server_->local_address(), ca_, &client);
  ASSERT_FALSE(with.Handshake());
  auto res = with.Exchange(Get("/livez"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);

  // Without one (TLS 1.3: the client's handshake completes before the
  // server refuses, so the refusal shows as no response) ...
  TlsClient without(server_->local_address(), ca_);
  without.Handshake();
  EXPECT_FALSE(without.Exchange(Get("/livez")));
  // ... or with one another CA signed.
  const TestCertificate other_ca = MakeTestCertificate("other CA", 4);
  const TestCertificate stranger =
      MakeTestCertificate("stranger", 5, &other_ca);
  TlsClient wrong(server_->local_address(), ca_, &stranger);
  wrong.Handshake();
  EXPECT_FALSE(wrong.Exchange(Get("/livez")));

  TlsClient again(server_->local_address(), ca_, &client);
  ASSERT_FALSE(again.Handshake());
  res = again.Exchange(Get("/metrics"));
  ASSERT_TRUE(res);
  EXPECT_NE(res->body().find("counterd_tls_handshake_failures_total 2\n"),
            std::string::npos)
      << res->body();
}

TEST_F(TlsServerTest, ConnectionCapCountsTlsConnections) {
  ServerOptions options;
  options.max_connections = 1;
  Start(options);
  TlsClient held(server_->local_address(), ca_);
  ASSERT_FALSE(held.Handshake());
  ASSERT_TRUE(held.Exchange(Get("/livez")));  // registered by now

  TlsClient extra(server_->local_address(), ca_);
  ASSERT_FALSE(extra.Handshake());
  const auto res = extra.Exchange(Get("/livez"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 503);
  EXPECT_NE(res->body().find("too-many-connections"), std::string::npos);
  EXPECT_FALSE(res->keep_alive());
}

TEST_F(TlsServerTest, StartFailsNamingTheFileThatDoesNotLoad) {
  WriteTestFile((dir_ / "tls.key").string(),
                MakeTestCertificate("other", 7).key_pem);
  ServerOptions options;
  options.listen = {"127.0.0.1", 0};
  options.tls_cert_file = (dir_ / "tls.crt").string();
  options.tls_key_file = (dir_ / "tls.key").string();
  auto server = Server::Start(options, service_);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(server.error().message().find("tls.key"), std::string::npos);
}

}  // namespace
}  // namespace counterd::http
