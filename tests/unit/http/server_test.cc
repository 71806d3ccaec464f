// The server over a loopback socket on port 0: limits, timeouts, the
// connection cap and the drain. Timeouts are set to tens of milliseconds and
// the tests block on the server's own timers, never on sleeps.
#include "counterd/http/server.h"

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <boost/beast/http/field.hpp>
#include <gtest/gtest.h>

#include "counterd/http/auth.h"
#include "support/fake_repository.h"
#include "support/http_test_client.h"
#include "transport/server_state.h"

namespace counterd::http {
namespace {

namespace bhttp = boost::beast::http;

using counterd::testing::HttpGet;

// The loopback client of tests/support, connected to |address|.
class Client : public counterd::testing::HttpTestClient {
 public:
  explicit Client(const ListenAddress& address)
      : HttpTestClient(address.host, address.port) {}
};

std::string Get(std::string_view target, std::string_view extra = "") {
  return HttpGet(target, extra);
}

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    options.listen = {"127.0.0.1", 0};
    options.threads = 1;  // the fake store is single-threaded
    options.version = "9.9.9";
    options.hostname = "test";
    auto server = Server::Start(options, service_);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  Client Connect() { return Client(server_->local_address()); }

  // Waits until |n| requests besides the asking one are in flight, by
  // asking /metrics (bounded; no sleeping).
  void WaitForRequestsInFlight(int n) {
    const std::string want =
        "counterd_http_requests_in_flight " + std::to_string(n + 1) + "\n";
    for (int i = 0; i < 10000; ++i) {
      Client probe = Connect();
      probe.Send(Get("/metrics"));
      const auto res = probe.Read();
      ASSERT_TRUE(res);
      if (res->body().find(want) != std::string::npos) return;
    }
    FAIL() << "never saw " << n << " requests in flight";
  }

  ManualClock clock_;
  counterd::testing::FakeRepository store_{clock_};
  service::CounterService service_{store_};
  std::unique_ptr<Server> server_;
};

TEST(WatchRoomTest, SlotsUpToMaxWatchersAndTheHubStartsAtLastSeq) {
  ServerOptions options;
  options.max_watchers = 2;
  WatchRoom room(options, 7);
  EXPECT_EQ(room.hub().last_seq(), 7u);
  EXPECT_TRUE(room.TryAcquire());
  EXPECT_TRUE(room.TryAcquire());
  EXPECT_FALSE(room.TryAcquire());
  EXPECT_EQ(room.ReadWatch().watchers, 2u);
  room.Release();
  EXPECT_EQ(room.ReadWatch().watchers, 1u);
  EXPECT_TRUE(room.TryAcquire());
  EXPECT_FALSE(room.TryAcquire());
}

TEST_F(ServerTest, ReportsTheBoundPort) {
  Start();
  EXPECT_EQ(server_->local_address().host, "127.0.0.1");
  EXPECT_NE(server_->local_address().port, 0);
}

TEST_F(ServerTest, BindFailureIsUnavailable) {
  Start();
  ServerOptions options;
  options.listen = server_->local_address();
  auto again = Server::Start(options, service_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), StatusCode::kUnavailable);
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  Client c = Connect();
  for (int i = 1; i <= 20; ++i) {
    c.Send("POST /counters/a/increment HTTP/1.1\r\nHost: t\r\n\r\n");
    auto res = c.Read();
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->result_int(), 200);
    EXPECT_TRUE(res->keep_alive());
  }
  c.Send(Get("/counters/a"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"name":"a","value":20,"version":20})");
}

TEST_F(ServerTest, PipelinedRequestsAnsweredInOrder) {
  Start();
  Client c = Connect();
  c.Send("POST /counters/p/increment HTTP/1.1\r\nHost: t\r\n\r\n" +
         Get("/nope") + Get("/counters/p"));
  EXPECT_EQ(c.Read()->result_int(), 200);
  EXPECT_EQ(c.Read()->result_int(), 404);
  EXPECT_EQ(c.Read()->body(), R"({"name":"p","value":1,"version":1})");
}

TEST_F(ServerTest, HeadHasLengthButNoBody) {
  Start();
  Client c = Connect();
  c.Send(Get("/counter"));
  const auto get = c.Read();
  c.Send("HEAD /counter HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto head = c.Read(/*head=*/true);
  ASSERT_TRUE(get && head);
  EXPECT_EQ((*head)[bhttp::field::content_length],
            std::to_string(get->body().size()));
  EXPECT_TRUE(head->body().empty());
  // The connection is still in step: nothing extra was sent.
  c.Send(Get("/livez"));
  EXPECT_EQ(c.Read()->result_int(), 200);
}

TEST_F(ServerTest, ConnectionCloseAndHttp10AreHonoured) {
  Start();
  Client c = Connect();
  c.Send(Get("/livez", "Connection: close\r\n"));
  EXPECT_FALSE(c.Read()->keep_alive());
  EXPECT_TRUE(c.Closed());
  Client old = Connect();
  old.Send("GET /livez HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.Read()->result_int(), 200);
  EXPECT_TRUE(old.Closed());
}

TEST_F(ServerTest, DeclaredBodyOverLimitIs413AndCloses) {
  ServerOptions options;
  options.max_body_bytes = 100;
  Start(options);
  Client c = Connect();
  c.Send(
      "POST /counters/a/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_EQ((*res)[bhttp::field::content_type], "application/problem+json");
  EXPECT_NE(res->body().find("payload-too-large"), std::string::npos);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.Closed());
  EXPECT_EQ(store_.mutations(), 0u);
}

TEST_F(ServerTest, ChunkedBodyOverLimitIs413) {
  ServerOptions options;
  options.max_body_bytes = 10;
  Start(options);
  Client c = Connect();
  c.Send(
      "POST /counters/a/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
      "20\r\n{\"by\":1                        }\r\n0\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413);
}

TEST_F(ServerTest, HeaderOverLimitIs431AndCloses) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  Start(options);
  Client c = Connect();
  c.Send(Get("/livez", "X-Big: " + std::string(4000, 'a') + "\r\n"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 431);
  EXPECT_NE(res->body().find("header-too-large"), std::string::npos);
  EXPECT_TRUE(c.Closed());
}

TEST_F(ServerTest, MalformedRequestIs400AndCloses) {
  Start();
  for (const std::string& bad :
       {std::string("GARBAGE\r\n\r\n"),
        std::string("GET /livez HTTP/1.1\r\nHost t\r\n\r\n"),
        std::string("GET /livez HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\x00\r\n\r\n", 11)}) {
    Client c = Connect();
    c.Send(bad);
    auto res = c.Read();
    ASSERT_TRUE(res) << bad;
    EXPECT_EQ(res->result_int(), 400) << bad;
    EXPECT_EQ((*res)[bhttp::field::content_type], "application/problem+json");
    EXPECT_TRUE(c.Closed());
  }
  Client ok = Connect();
  ok.Send(Get("/livez"));
  EXPECT_EQ(ok.Read()->result_int(), 200);
}

TEST_F(ServerTest, ExpectContinueGetsInterimResponse) {
  Start();
  Client c = Connect();
  c.Send(
      "POST /counters/e/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 8\r\n"
      "Expect: 100-continue\r\n\r\n");
  auto interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100);
  c.Send(R"({"by":4})");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"name":"e","value":4,"version":1})");
}

TEST_F(ServerTest, SilentConnectionIsClosedAfterHeaderTimeout) {
  ServerOptions options;
  options.header_timeout = std::chrono::milliseconds(50);
  options.idle_timeout = std::chrono::seconds(60);
  Start(options);
  Client c = Connect();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.Closed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_F(ServerTest, TrickledHeaderIsCutOff) {
  ServerOptions options;
  options.header_timeout = std::chrono::milliseconds(50);
  Start(options);
  Client c = Connect();
  c.Send("GET /livez HTTP/1.1\r\nX-Slow: ");  // and never the rest
  EXPECT_TRUE(c.Closed());
}

TEST_F(ServerTest, IdleKeepAliveIsClosedAfterIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(50);
  Start(options);
  Client c = Connect();
  c.Send(Get("/livez"));
  EXPECT_EQ(c.Read()->result_int(), 200);
  EXPECT_TRUE(c.Closed());
}

// The header deadline runs from the next request's first byte even though
// the longer idle deadline was pending when that byte came.
TEST_F(ServerTest, TrickledHeaderAfterAnIdleWaitIsCutOff) {
  ServerOptions options;
  options.header_timeout = std::chrono::milliseconds(100);
  options.idle_timeout = std::chrono::seconds(60);
  Start(options);
  Client c = Connect();
  c.Send(Get("/livez"));
  EXPECT_EQ(c.Read()->result_int(), 200);
  c.Send("GET /livez HTTP/1.1\r\nX-Slow: ");  // and never the rest
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.Closed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

// A body sent along with its Expect header still gets the 100 first.
TEST_F(ServerTest, ExpectContinueWithTheBodyAlreadySent) {
  Start();
  Client c = Connect();
  c.Send(
      "POST /counters/e/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 8\r\n"
      "Expect: 100-continue\r\n\r\n{\"by\":4}");
  auto interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100);
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"name":"e","value":4,"version":1})");
}

// After a closing response the server lingers for unread bytes for 2 s
// (then closes), even when every other timeout is longer.
TEST_F(ServerTest, LingerIsBoundedByItsOwnLimit) {
  ServerOptions options;
  options.max_body_bytes = 100;
  options.header_timeout = std::chrono::seconds(30);
  options.read_timeout = std::chrono::seconds(30);
  options.write_timeout = std::chrono::seconds(30);
  options.idle_timeout = std::chrono::seconds(30);
  Start(options);
  Client c = Connect();
  c.Send(
      "POST /counters/a/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
  const auto start = std::chrono::steady_clock::now();
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_TRUE(c.Closed());  // the server's FIN; it still reads
  // Polls until the asking connection is the only one open.
  for (;;) {
    Client probe = Connect();
    probe.Send(Get("/metrics"));
    const auto metrics = probe.Read();
    ASSERT_TRUE(metrics);
    if (metrics->body().find("counterd_http_connections 1\n") !=
        std::string::npos) {
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now() - start,
              std::chrono::seconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto lingered = std::chrono::steady_clock::now() - start;
  EXPECT_GE(lingered, std::chrono::milliseconds(1500));
  EXPECT_LT(lingered, std::chrono::seconds(4));
}

TEST_F(ServerTest, ConnectionsOverTheCapGet503OthersUnaffected) {
  ServerOptions options;
  options.max_connections = 1;
  Start(options);
  Client held = Connect();
  held.Send(Get("/livez"));
  ASSERT_EQ(held.Read()->result_int(), 200);  // registered by now

  Client extra = Connect();
  extra.Send(Get("/livez"));
  auto res = extra.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 503);
  EXPECT_NE(res->body().find("too-many-connections"), std::string::npos);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(extra.Closed());

  held.Send(Get("/livez"));
  EXPECT_EQ(held.Read()->result_int(), 200);
}

TEST_F(ServerTest, ConnectionsOverThePerClientCapGet503WithInstance) {
  ServerOptions options;
  options.max_connections = 10;
  options.max_connections_per_client = 2;
  Start(options);
  Client a = Connect();
  a.Send(Get("/livez"));
  ASSERT_EQ(a.Read()->result_int(), 200);
  std::optional<Client> b;
  b.emplace(server_->local_address());
  b->Send(Get("/livez"));
  ASSERT_EQ(b->Read()->result_int(), 200);

  Client extra = Connect();
  auto res = extra.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 503);
  EXPECT_NE(res->body().find(R"("instance":"/")"), std::string::npos)
      << res->body();
  EXPECT_TRUE(extra.Closed());

  // The refusal is counted.
  b->Send(Get("/metrics"));
  const auto metrics = b->Read();
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body().find("counterd_http_connections_refused_total{"
                                 "reason=\"max-connections-per-client\"} 1\n"),
            std::string::npos)
      << metrics->body();
  EXPECT_NE(metrics->body().find("counterd_http_connections_refused_total{"
                                 "reason=\"max-connections\"} 0\n"),
            std::string::npos);
  // A slot freed is a slot for the same client, once the server has seen
  // the close: poll (bounded) for a 200.
  b.reset();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    Client again = Connect();
    again.Send(Get("/livez"));
    const auto r = again.Read();
    ASSERT_TRUE(r);
    if (r->result_int() == 200) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "the freed slot never came back";
  }
}

// Issue 10: the body of a request with a Transfer-Encoding other than
// chunked was run as a second request. Now the first is refused and the
// second never parsed.
TEST_F(ServerTest, SmuggledRequestIsNeverExecuted) {
  Start();
  Client setup = Connect();
  setup.Send(
      "PUT /counters/t HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: 11\r\n\r\n{\"value\":5}");
  ASSERT_EQ(setup.Read()->result_int(), 201);
  const auto mutations = store_.mutations();

  Client c = Connect();
  c.Send(
      "POST /counters/v/increment HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: identity\r\n\r\n"
      "DELETE /counters/t HTTP/1.1\r\nHost: x\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.Closed()) << "a second response came";
  EXPECT_EQ(store_.mutations(), mutations);
  setup.Send(Get("/counters/t"));
  EXPECT_EQ(setup.Read()->body(), R"({"name":"t","value":5,"version":1})");
}

TEST_F(ServerTest, EveryResponseHasADate) {
  Start();
  Client c = Connect();
  c.Send(Get("/livez") + Get("/nope"));
  for (int i = 0; i < 2; ++i) {
    const auto res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ((*res)[bhttp::field::date].size(), 29u) << i;
    EXPECT_TRUE((*res)[bhttp::field::date].ends_with(" GMT")) << i;
  }
  Client bad = Connect();
  bad.Send("GARBAGE\r\n\r\n");
  const auto res = bad.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ((*res)[bhttp::field::date].size(), 29u);
}

TEST_F(ServerTest, UnknownMethodIs501KnownButUnservedIs405) {
  Start();
  Client c = Connect();
  c.Send("FOO /counter HTTP/1.1\r\nHost: x\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 501);
  EXPECT_NE(res->body().find("not-implemented"), std::string::npos);
  EXPECT_TRUE(res->keep_alive());
  c.Send("get /counter HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.Read()->result_int(), 501);
  c.Send("PATCH /counter HTTP/1.1\r\nHost: x\r\n\r\n");
  res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 405);
  EXPECT_EQ((*res)[bhttp::field::allow], "GET, HEAD");
}

TEST_F(ServerTest, DrainClosesIdleFinishesInFlightAndRefusesNew) {
  Start();
  Client idle = Connect();
  idle.Send(Get("/livez"));
  ASSERT_EQ(idle.Read()->result_int(), 200);

  // A request whose header is in but whose body is not: in flight.
  Client busy = Connect();
  busy.Send(
      "POST /counters/d/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"by");
  WaitForRequestsInFlight(1);

  auto drained = std::async(std::launch::async, [this] {
    return server_->Drain(std::chrono::seconds(10));
  });
  EXPECT_TRUE(idle.Closed()) << "idle keep-alive connection left open";

  busy.Send("\":5}");
  auto res = busy.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"name":"d","value":5,"version":1})");
  EXPECT_FALSE(res->keep_alive()) << "responses while draining must close";

  const DrainReport report = drained.get();
  EXPECT_TRUE(report.completed);
  EXPECT_EQ(report.requests_in_flight, 0u);

  EXPECT_TRUE(counterd::testing::HttpTestClient::Refused(
      "127.0.0.1", server_->local_address().port))
      << "listener still open after Drain";
}

TEST_F(ServerTest, DrainTimesOutOnAStuckRequest) {
  Start();
  Client stuck = Connect();
  stuck.Send(
      "POST /counters/d/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{");
  WaitForRequestsInFlight(1);
  const DrainReport report = server_->Drain(std::chrono::milliseconds(20));
  EXPECT_FALSE(report.completed);
  EXPECT_EQ(report.requests_in_flight, 1u);
}

}  // namespace
}  // namespace counterd::http

namespace counterd::http {
namespace {

// A tokens file with one token per line of |entries|: name, scopes JSON.
std::shared_ptr<const TokenSet> Tokens(
    std::initializer_list<std::pair<const char*, const char*>> entries) {
  std::string text = R"({"tokens":[)";
  const char* comma = "";
  for (const auto& [name, scopes] : entries) {
    text += comma;
    text += R"({"name":")" + std::string(name) + R"(","sha256":")" +
            *HashTokenInput(std::string(name) + "-token") + R"(","scopes":)" +
            scopes + "}";
    comma = ",";
  }
  text += "]}";
  auto parsed = ParseTokenFile("t.json", text);
  EXPECT_TRUE(parsed) << parsed.error().message();
  return parsed ? *parsed : nullptr;
}

// The session asks the authorizer as soon as the header is parsed: a
// refusal comes before 100 Continue and before any body byte, and closes.
TEST_F(ServerTest, AuthRefusesFromTheHeaderAloneAndCloses) {
  ServerOptions options;
  options.tokens = Tokens({{"reader", R"(["read"])"}});
  Start(options);
  Client c = Connect();
  c.Send(
      "POST /counters/a/increment HTTP/1.1\r\nHost: t\r\n"
      "Content-Type: application/json\r\nContent-Length: 1000\r\n"
      "Expect: 100-continue\r\nAuthorization: Bearer reader-token\r\n\r\n");
  const auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 403u) << res->body();
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.Closed());
  EXPECT_EQ(store_.mutations(), 0u);

  Client anonymous = Connect();
  anonymous.Send(Get("/counters"));
  const auto denied = anonymous.Read();
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->result_int(), 401u);
  EXPECT_EQ((*denied)[bhttp::field::www_authenticate],
            "Bearer realm=\"counterd\"");
  EXPECT_TRUE(anonymous.Closed());
}

TEST_F(ServerTest, AuthProbesStayOpenOnAKeptAliveConnection) {
  ServerOptions options;
  options.tokens = Tokens({{"reader", R"(["read"])"}});
  Start(options);
  Client c = Connect();
  for (const char* target : {"/livez", "/readyz", "/livez"}) {
    c.Send(Get(target));
    const auto res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u) << target;
  }
  c.Send(Get("/counter", "Authorization: Bearer reader-token\r\n"));
  const auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_TRUE(res->keep_alive());
}

TEST_F(ServerTest, ReplaceTokensAppliesToTheNextRequestAndIsCounted) {
  ServerOptions options;
  options.tokens = Tokens({{"old", R"(["read","metrics"])"}});
  Start(options);
  server_->ReplaceTokens(Tokens({{"new", R"(["read","metrics"])"}}));
  server_->CountFailedTokenReload();
  Client c = Connect();
  c.Send(Get("/counter", "Authorization: Bearer old-token\r\n"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 401u);
  Client d = Connect();
  d.Send(Get("/metrics", "Authorization: Bearer new-token\r\n"));
  res = d.Read();
  ASSERT_TRUE(res);
  ASSERT_EQ(res->result_int(), 200u);
  EXPECT_NE(res->body().find("counterd_auth_reloads_total{result=\"ok\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      res->body().find("counterd_auth_reloads_total{result=\"error\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      res->body().find("counterd_auth_failures_total{reason=\"unknown\"} 1\n"),
      std::string::npos);
  EXPECT_NE(res->body().find("counterd_auth_enabled 1\n"), std::string::npos);
}

}  // namespace
}  // namespace counterd::http
