// PgConnection against a real PostgreSQL 15 server (label "postgres"; CTest
// runs it through tests/postgres/with_cluster.py, which sets
// COUNTERD_TEST_POSTGRES_URL).
#include "pg_connection.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace counterd::storage::postgres {
namespace {

using Query = PgConnection::Query;

std::string TestUrl() {
  const char* url = std::getenv("COUNTERD_TEST_POSTGRES_URL");  // NOLINT
  return url != nullptr ? url : "";
}

class PgConnectionRealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TestUrl().empty()) GTEST_SKIP() << "COUNTERD_TEST_POSTGRES_URL unset";
    conn_ = std::make_unique<PgConnection>(ioc_, *connector_, TestUrl());
  }
  void TearDown() override { conn_.reset(); }

  Status ConnectSync(PgConnection& c) {
    std::optional<Status> got;
    c.Connect([&](const Status& s) { got = s; });
    RunUntil([&] { return got.has_value(); });
    return *got;
  }
  PgConnection::Reply SubmitSync(PgConnection& c, std::vector<Query> q) {
    std::optional<PgConnection::Reply> got;
    c.Submit(std::move(q), [&](PgConnection::Reply r) { got = std::move(r); });
    RunUntil([&] { return got.has_value(); });
    return std::move(*got);
  }
  template <typename Pred>
  void RunUntil(Pred pred) {
    while (!pred()) {
      ioc_.restart();
      ioc_.run_one();
    }
  }

  boost::asio::io_context ioc_;
  std::unique_ptr<PqConnector> connector_ = NewLibpqConnector();
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(PgConnectionRealTest, PipelinesQueriesAndRequests) {
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  std::optional<PgConnection::Reply> first, second;
  conn_->Submit({Query::Sql("SELECT 1"),
                 Query::Sql("SELECT $1::text || 'b'", {PgParam::Text("a")})},
                [&](PgConnection::Reply r) { first = std::move(r); });
  conn_->Submit({Query::Sql("SELECT NULL::int")},
                [&](PgConnection::Reply r) { second = std::move(r); });
  EXPECT_EQ(conn_->in_flight(), 2u);
  RunUntil([&] { return second.has_value(); });
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->status.ok()) << first->status.ToString();
  ASSERT_EQ(first->results.size(), 2u);
  EXPECT_EQ(first->results[0].Cell(0, 0), "1");
  EXPECT_EQ(first->results[1].Cell(0, 0), "ab");
  ASSERT_EQ(second->results.size(), 1u);
  EXPECT_EQ(second->results[0].Cell(0, 0), std::nullopt);
}

TEST_F(PgConnectionRealTest, ErrorAbortsTheRestUpToTheSyncOnly) {
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  auto r =
      SubmitSync(*conn_, {Query::Sql("SELECT 1/0"), Query::Sql("SELECT 2")});
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.results[0].kind, PgResult::Kind::kError);
  EXPECT_EQ(r.results[0].sqlstate, "22012");
  EXPECT_EQ(r.results[1].kind, PgResult::Kind::kPipelineAborted);
  auto next = SubmitSync(*conn_, {Query::Sql("SELECT 3")});
  ASSERT_EQ(next.results.size(), 1u);
  EXPECT_EQ(next.results[0].Cell(0, 0), "3");
}

TEST_F(PgConnectionRealTest, PreparedStatementsAndBinaryParams) {
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  auto r = SubmitSync(
      *conn_,
      {Query::Prepare("len", "SELECT octet_length($1::bytea)"),
       Query::Prepared("len", {PgParam::Bytes(std::string("a\0b", 3))})});
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.results[0].kind, PgResult::Kind::kCommandOk);
  EXPECT_EQ(r.results[1].Cell(0, 0), "3");
}

TEST_F(PgConnectionRealTest, LargeRequestIsFlushedInParts) {
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  // 8 MiB of parameters: far more than a socket buffer, so PQflush returns
  // 1 and the connection waits for the socket to drain.
  std::vector<Query> q;
  for (int i = 0; i < 8; ++i) {
    q.push_back(Query::Sql("SELECT length($1)",
                           {PgParam::Text(std::string(1 << 20, 'x'))}));
  }
  auto r = SubmitSync(*conn_, std::move(q));
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.results.size(), 8u);
  EXPECT_EQ(r.results[7].Cell(0, 0), "1048576");
}

TEST_F(PgConnectionRealTest, NotificationsArrive) {
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  std::vector<std::string> payloads;
  conn_->SetNotificationHandler(
      [&](const PgNotification& n) { payloads.push_back(n.payload); });
  ASSERT_TRUE(
      SubmitSync(*conn_, {Query::Sql("LISTEN counterd_test")}).status.ok());
  PgConnection other(ioc_, *connector_, TestUrl());
  ASSERT_TRUE(ConnectSync(other).ok());
  ASSERT_TRUE(
      SubmitSync(other, {Query::Sql("SELECT pg_notify('counterd_test', '7')")})
          .status.ok());
  RunUntil([&] { return !payloads.empty(); });
  EXPECT_EQ(payloads, std::vector<std::string>{"7"});
}

TEST_F(PgConnectionRealTest, ServerSideDisconnectFailsInFlightAndCallsLost) {
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  std::optional<Status> lost;
  conn_->SetLostHandler([&](const Status& s) { lost = s; });
  auto pid = SubmitSync(*conn_, {Query::Sql("SELECT pg_backend_pid()")});
  PgConnection killer(ioc_, *connector_, TestUrl());
  ASSERT_TRUE(ConnectSync(killer).ok());
  std::optional<PgConnection::Reply> slow;
  conn_->Submit({Query::Sql("SELECT pg_sleep(30)")},
                [&](PgConnection::Reply r) { slow = std::move(r); });
  ASSERT_TRUE(
      SubmitSync(killer,
                 {Query::Sql("SELECT pg_terminate_backend($1::int)",
                             {PgParam::Text(*pid.results[0].Cell(0, 0))})})
          .status.ok());
  RunUntil([&] { return slow.has_value() && lost.has_value(); });
  EXPECT_EQ(slow->status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(slow->sent);
  EXPECT_FALSE(conn_->connected());
  // It reconnects when told to.
  ASSERT_TRUE(ConnectSync(*conn_).ok());
  EXPECT_EQ(SubmitSync(*conn_, {Query::Sql("SELECT 5")}).results[0].Cell(0, 0),
            "5");
}

TEST_F(PgConnectionRealTest, BadHostFailsToConnect) {
  PgConnection bad(ioc_, *connector_,
                   "postgresql://127.0.0.1:1/x?connect_timeout=5");
  const Status s = ConnectSync(bad);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("connect"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace counterd::storage::postgres
