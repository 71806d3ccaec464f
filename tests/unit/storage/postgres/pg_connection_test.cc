// The libpq/Asio adapter against a scripted libpq (FakePq): sockets that
// change during PQconnectPoll, partial writes (PQflush returning 1),
// results matched to pipelined requests, and connection loss at each step.
// Readiness comes from real sockets (socketpairs) and a real reactor; the
// tests step it with io_context::poll(), which runs only what is ready.
#include "pg_connection.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "unit/storage/postgres/fake_pq.h"

namespace counterd::storage::postgres {
namespace {

using Query = PgConnection::Query;
using Poll = PqConnection::Poll;

class PgConnectionTest : public ::testing::Test {
 protected:
  // A fake that connects at the first poll, on socket |a_|.
  FakePq& AddFake(bool connects = true) {
    auto fake = std::make_unique<FakePq>(log_, &a_);
    FakePq& ref = *fake;
    if (connects) fake->ScriptPoll(Poll::kOk, &a_);
    connector_.Add(std::move(fake));
    return ref;
  }
  void Step() {
    ioc_.restart();
    ioc_.poll();
  }
  std::optional<Status> Connect() {
    std::optional<Status> got;
    conn_.Connect([&](const Status& s) { got = s; });
    Step();
    return got;
  }
  std::vector<std::string> Calls() const { return log_->calls; }
  std::size_t Count(const std::string& call) const {
    std::size_t n = 0;
    for (const auto& c : log_->calls) n += c == call ? 1u : 0u;
    return n;
  }

  boost::asio::io_context ioc_;
  SocketPair a_;
  SocketPair b_;
  std::shared_ptr<FakePq::Log> log_ = std::make_shared<FakePq::Log>();
  FakeConnector connector_;
  PgConnection conn_{ioc_, connector_, "postgresql://h1,h2/db"};
};

TEST_F(PgConnectionTest, StartsWithTheConninfoAndWaitsForWritabilityFirst) {
  AddFake();
  auto s = Connect();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->ok());
  EXPECT_TRUE(conn_.connected());
  EXPECT_EQ(connector_.conninfos(),
            std::vector<std::string>{"postgresql://h1,h2/db"});
  EXPECT_EQ(Count("poll"), 1u);
}

TEST_F(PgConnectionTest, WaitsOnTheSocketLibpqNamesAfterEachPoll) {
  auto fake = std::make_unique<FakePq>(log_, &a_);
  // The first host answers the poll by moving on to the second host's
  // socket (b_), where libpq then waits to read.
  fake->ScriptPoll(Poll::kReading, &b_);
  fake->ScriptPoll(Poll::kOk, &b_);
  connector_.Add(std::move(fake));
  std::optional<Status> got;
  conn_.Connect([&](const Status& s) { got = s; });
  Step();  // a_ is writable: the first poll runs and names b_
  EXPECT_EQ(Count("poll"), 1u);
  a_.Poke();  // the old socket turning readable must not wake it
  Step();
  EXPECT_EQ(Count("poll"), 1u);
  EXPECT_FALSE(got.has_value());
  b_.Poke();
  Step();
  EXPECT_EQ(Count("poll"), 2u);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->ok());
}

TEST_F(PgConnectionTest, ConnectFailureCarriesLibpqsReason) {
  FakePq& fake = AddFake(false);
  fake.ScriptPoll(Poll::kFailed, &a_);
  fake.set_error("connection refused");
  bool lost = false;
  conn_.SetLostHandler([&](const Status&) { lost = true; });
  auto s = Connect();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code(), StatusCode::kUnavailable);
  EXPECT_EQ(s->message(), "postgres: connect: connection refused");
  EXPECT_FALSE(conn_.connected());
  EXPECT_FALSE(lost);  // never established: nothing was lost
  EXPECT_TRUE(log_->destroyed);
}

TEST_F(PgConnectionTest, NoSocketAtAllStillAsksPollForTheReason) {
  auto fake = std::make_unique<FakePq>(log_, nullptr);
  fake->ScriptPoll(Poll::kFailed, nullptr);
  fake->set_error("could not translate host name");
  connector_.Add(std::move(fake));
  auto s = Connect();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->message(), "postgres: connect: could not translate host name");
}

TEST_F(PgConnectionTest, SetupFailureAfterPollOkFails) {
  FakePq& fake = AddFake();
  fake.FailNonblocking();
  auto s = Connect();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code(), StatusCode::kUnavailable);
  EXPECT_FALSE(conn_.connected());
}

// After a successful poll, a socket the reactor cannot take (here libpq
// names none) fails the set-up with that reason, not with whatever libpq's
// last error message happens to say.
TEST_F(PgConnectionTest, SetupFailureTakingTheSocketSaysWhy) {
  auto fake = std::make_unique<FakePq>(log_, &a_);
  fake->ScriptPoll(Poll::kOk, nullptr);
  fake->set_error("an earlier, unrelated libpq message");
  connector_.Add(std::move(fake));
  auto s = Connect();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, Status(StatusCode::kUnavailable, "postgres: no socket"));
  EXPECT_FALSE(conn_.connected());
}

TEST_F(PgConnectionTest, SubmitWhileDownAnswersAtOnceUnsent) {
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("SELECT 1")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(r->sent);
}

TEST_F(PgConnectionTest, RepliesMatchRequestsInOrder) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  std::vector<PgConnection::Reply> replies;
  auto keep = [&](PgConnection::Reply r) { replies.push_back(std::move(r)); };
  conn_.Submit({Query::Sql("SELECT 1"), Query::Prepared("get")}, keep);
  conn_.Submit({Query::Prepare("p", "SELECT 2")}, keep);
  EXPECT_EQ(Calls(), (std::vector<std::string>{"poll", "send:SELECT 1",
                                               "exec:get", "sync", "flush",
                                               "prepare:p", "sync", "flush"}));
  EXPECT_EQ(conn_.in_flight(), 2u);
  // The first query's result arrives alone: nothing completes yet.
  fake.Arrive(TuplesResult({"1"}));
  fake.Arrive(std::nullopt);
  a_.Poke();
  Step();
  EXPECT_TRUE(replies.empty());
  // Then the rest: an error for the second query, the sync, and the second
  // request's result and sync.
  fake.Arrive(ErrorResult("40P01", "deadlock detected"));
  fake.Arrive(std::nullopt);
  fake.Arrive(SyncResult());
  fake.Arrive(CommandOk());
  fake.Arrive(std::nullopt);
  fake.Arrive(SyncResult());
  a_.Poke();
  Step();
  ASSERT_EQ(replies.size(), 2u);
  ASSERT_TRUE(replies[0].status.ok());
  ASSERT_EQ(replies[0].results.size(), 2u);
  EXPECT_EQ(replies[0].results[0].Cell(0, 0), "1");
  EXPECT_TRUE(IsRetryable(replies[0].results[1]));
  ASSERT_EQ(replies[1].results.size(), 1u);
  EXPECT_EQ(replies[1].results[0].kind, PgResult::Kind::kCommandOk);
  EXPECT_EQ(conn_.in_flight(), 0u);
}

TEST_F(PgConnectionTest, FlushReturningOneWaitsUntilWritableThenFlushesAgain) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  a_.FillOurs();  // the socket is not writable
  fake.ScriptFlush(1);
  fake.ScriptFlush(0);
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("SELECT 1")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  Step();
  EXPECT_EQ(Count("flush"), 1u);  // waits; does not spin on PQflush
  a_.DrainPeer();                 // room again: writable
  Step();
  EXPECT_EQ(Count("flush"), 2u);
  fake.Arrive(TuplesResult({"1"}));
  fake.Arrive(std::nullopt);
  fake.Arrive(SyncResult());
  a_.Poke();
  Step();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->status.ok());
}

TEST_F(PgConnectionTest, PartialWritesAreFlushedUntilDone) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  fake.ScriptFlush(1);
  fake.ScriptFlush(1);
  fake.ScriptFlush(1);
  fake.ScriptFlush(0);
  conn_.Submit({Query::Sql("SELECT 1")}, [](PgConnection::Reply) {});
  for (int i = 0; i < 4; ++i) Step();
  EXPECT_EQ(Count("flush"), 4u);
  Step();
  EXPECT_EQ(Count("flush"), 4u);  // 0 means done: no more flushing
}

TEST_F(PgConnectionTest, ReadableWhileFlushPendingConsumesThenFlushes) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  a_.FillOurs();
  fake.ScriptFlush(1);
  fake.ScriptFlush(0);
  conn_.Submit({Query::Sql("SELECT 1")}, [](PgConnection::Reply) {});
  a_.Poke();  // the server talks while our write is stuck
  Step();
  // libpq's rule: on read-ready, PQconsumeInput, then PQflush again.
  const auto calls = Calls();
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls[calls.size() - 2], "consume");
  EXPECT_EQ(calls.back(), "flush");
}

class LossTest : public PgConnectionTest {
 protected:
  void ExpectLost(const std::optional<PgConnection::Reply>& r,
                  const std::string& message) {
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status.code(), StatusCode::kUnavailable);
    EXPECT_EQ(r->status.message(), message);
    EXPECT_TRUE(r->sent);
    EXPECT_TRUE(r->results.empty());
    EXPECT_EQ(lost_, 1);
    EXPECT_FALSE(conn_.connected());
    EXPECT_TRUE(log_->destroyed);  // PQfinish
  }
  void SetUp() override {
    conn_.SetLostHandler([this](const Status&) { ++lost_; });
  }
  int lost_ = 0;
};

TEST_F(LossTest, WhileSending) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  fake.FailSendAt(2);
  fake.set_error("server closed the connection unexpectedly");
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("BEGIN"), Query::Sql("SELECT 1")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  ExpectLost(r, "postgres: send: server closed the connection unexpectedly");
}

TEST_F(LossTest, AtTheSyncPoint) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  fake.FailSync();
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("COMMIT")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  ExpectLost(r, "postgres: sync: fake failure");
}

TEST_F(LossTest, WhileFlushing) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  fake.ScriptFlush(1);
  fake.ScriptFlush(-1);
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("COMMIT")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  EXPECT_FALSE(r.has_value());
  Step();
  ExpectLost(r, "postgres: flush: fake failure");
}

TEST_F(LossTest, WhileReadingFailsEveryRequestInFlightInOrder) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  std::vector<int> order;
  std::optional<PgConnection::Reply> first;
  conn_.Submit({Query::Sql("SELECT 1"), Query::Sql("SELECT 2")},
               [&](PgConnection::Reply reply) {
                 order.push_back(1);
                 first = std::move(reply);
               });
  conn_.Submit({Query::Sql("COMMIT")},
               [&](PgConnection::Reply) { order.push_back(2); });
  fake.Arrive(TuplesResult({"1"}));  // half of the first request's results
  fake.Arrive(std::nullopt);
  a_.Poke();
  Step();
  fake.FailConsume();
  fake.set_error("server closed the connection unexpectedly");
  a_.Poke();
  Step();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  ExpectLost(first,
             "postgres: connection lost: server closed the connection "
             "unexpectedly");
}

TEST_F(LossTest, WhileIdleIsNoticedAtOnce) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  fake.FailConsume();
  a_.ClosePeer();  // EOF: readable
  Step();
  EXPECT_EQ(lost_, 1);
  EXPECT_FALSE(conn_.connected());
}

TEST_F(LossTest, ProtocolConfusionDropsTheConnection) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("SELECT 1")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  fake.Arrive(SyncResult());  // a sync where a result was due
  a_.Poke();
  Step();
  ExpectLost(r, "postgres: protocol: sync before results");
}

TEST_F(PgConnectionTest, DisconnectFailsInFlightWithoutCallingLost) {
  AddFake();
  ASSERT_TRUE(Connect()->ok());
  int lost = 0;
  conn_.SetLostHandler([&](const Status&) { ++lost; });
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("SELECT 1")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  conn_.Disconnect(Status::Unavailable("closing"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.message(), "closing");
  EXPECT_EQ(lost, 0);
  a_.Poke();
  Step();  // the stale read wait does nothing
  EXPECT_EQ(lost, 0);
}

TEST_F(PgConnectionTest, ReconnectsWithANewLibpqConnection) {
  AddFake();
  ASSERT_TRUE(Connect()->ok());
  auto second = std::make_unique<FakePq>(log_, &b_);
  second->ScriptPoll(Poll::kOk, &b_);
  FakePq& fake2 = *second;
  connector_.Add(std::move(second));
  ASSERT_TRUE(Connect()->ok());
  std::optional<PgConnection::Reply> r;
  conn_.Submit({Query::Sql("SELECT 1")},
               [&](PgConnection::Reply reply) { r = std::move(reply); });
  fake2.Arrive(TuplesResult({"1"}));
  fake2.Arrive(std::nullopt);
  fake2.Arrive(SyncResult());
  b_.Poke();
  Step();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->status.ok());
}

TEST_F(PgConnectionTest, HandlerMaySubmitTheNextRequest) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  std::optional<PgConnection::Reply> second;
  conn_.Submit({Query::Sql("SELECT 1")}, [&](PgConnection::Reply) {
    conn_.Submit({Query::Sql("SELECT 2")},
                 [&](PgConnection::Reply r) { second = std::move(r); });
  });
  fake.Arrive(TuplesResult({"1"}));
  fake.Arrive(std::nullopt);
  fake.Arrive(SyncResult());
  a_.Poke();
  Step();
  EXPECT_EQ(conn_.in_flight(), 1u);
  fake.Arrive(TuplesResult({"2"}));
  fake.Arrive(std::nullopt);
  fake.Arrive(SyncResult());
  a_.Poke();
  Step();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->results[0].Cell(0, 0), "2");
}

TEST_F(PgConnectionTest, NotificationsReachTheHandler) {
  FakePq& fake = AddFake();
  ASSERT_TRUE(Connect()->ok());
  std::vector<std::string> got;
  conn_.SetNotificationHandler([&](const PgNotification& n) {
    got.push_back(n.channel + "=" + n.payload);
  });
  fake.ArriveNotification({"counterd_changes", "41", 7});
  fake.ArriveNotification({"counterd_changes", "42", 7});
  a_.Poke();
  Step();
  EXPECT_EQ(got, (std::vector<std::string>{"counterd_changes=41",
                                           "counterd_changes=42"}));
}

}  // namespace
}  // namespace counterd::storage::postgres
