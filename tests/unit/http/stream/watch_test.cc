// WatchHub and WatchStream over a FakeRepository whose committed changes go
// to the hub: what a watcher is sent, in which order, with which ids; slow
// readers skipping to the latest state; resets; resuming with
// Last-Event-ID. No sockets and no threads: the test takes the output
// where a connection would.
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/service/counter_service.h"
#include "stream/watch_hub.h"
#include "stream/watch_stream.h"
#include "support/completions.h"
#include "support/fake_repository.h"

namespace counterd::http {
namespace {

using domain::OpKind;

struct Event {
  std::string id;
  std::string event;
  std::string data;
  friend bool operator==(const Event&, const Event&) = default;
  friend void PrintTo(const Event& e, std::ostream* os) {
    *os << "{id " << e.id << ", " << e.event << ", " << e.data << "}";
  }
};

// Parses SSE text into events (comments dropped).
std::vector<Event> Parse(const std::string& text) {
  std::vector<Event> out;
  Event current;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      if (!current.event.empty()) out.push_back(current);
      current = Event{};
    } else if (line.starts_with("id: ")) {
      current.id = line.substr(4);
    } else if (line.starts_with("event: ")) {
      current.event = line.substr(7);
    } else if (line.starts_with("data: ")) {
      current.data = line.substr(6);
    }
  }
  return out;
}

class WatchTest : public ::testing::Test {
 protected:
  WatchTest() : repository_(clock_), service_(repository_) {
    repository_.SetChangeSink(&hub_);
  }

  void Commit(OpKind kind, const char* name, std::int64_t operand = 0) {
    domain::Operation op;
    op.kind = kind;
    op.name = *domain::CounterName::Parse(name);
    op.operand = operand;
    counterd::testing::Captured<domain::TransactionOutcome> done;
    service_.Commit(domain::SingleOperation(std::move(op)), done);
    repository_.CommitPending();
    ASSERT_TRUE(done.done());
    ASSERT_TRUE(done.value().status.ok()) << done.value().status.ToString();
  }

  std::shared_ptr<WatchStream> Watch(WatchTarget target,
                                     std::optional<std::uint64_t> last = {},
                                     std::size_t buffer = 64) {
    auto stream = std::make_shared<WatchStream>(
        std::move(target), last, buffer, service_, hub_, [this] { ++wakes_; });
    stream->Start();
    return stream;
  }
  static WatchTarget Name(const char* name) { return {false, name, false, {}}; }
  static WatchTarget Prefix(const char* prefix) {
    return {true, prefix, false, {}};
  }

  ManualClock clock_;
  counterd::testing::FakeRepository repository_;
  service::CounterService service_;
  WatchHub hub_{1000, 0};
  int wakes_ = 0;
};

TEST_F(WatchTest, NameWatchStartsWithTheCurrentStateThenEveryChange) {
  Commit(OpKind::kSet, "a", 5);
  auto stream = Watch(Name("a"));
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"1", "counter", R"({"name":"a","value":5,"version":1})"}}));
  Commit(OpKind::kAdd, "a", 1);
  EXPECT_GE(wakes_, 1);
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"2", "counter", R"({"name":"a","value":6,"version":2})"}}));
  Commit(OpKind::kDelete, "a");
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{{"0", "deleted", R"({"name":"a"})"}}));
  EXPECT_EQ(stream->TakeOutput(), "");
  stream->Close();
  Commit(OpKind::kAdd, "a", 1);
  EXPECT_EQ(stream->TakeOutput(), "") << "nothing after Close";
}

TEST_F(WatchTest, AMissingCounterStartsAsDeleted) {
  auto stream = Watch(Name("nope"));
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{{"0", "deleted", R"({"name":"nope"})"}}));
}

TEST_F(WatchTest, ASlowReaderGetsOnlyTheLatestVersion) {
  auto stream = Watch(Name("hot"));
  stream->TakeOutput();
  for (int i = 0; i < 50; ++i) Commit(OpKind::kAdd, "hot", 1);
  EXPECT_EQ(
      Parse(stream->TakeOutput()),
      (std::vector<Event>{
          {"50", "counter", R"({"name":"hot","value":50,"version":50})"}}));
}

TEST_F(WatchTest, LastEventIdSendsNothingUntilTheVersionDiffers) {
  Commit(OpKind::kSet, "a", 1);
  Commit(OpKind::kSet, "a", 2);  // version 2
  auto stream = Watch(Name("a"), 2);
  EXPECT_EQ(stream->TakeOutput(), "");
  Commit(OpKind::kAdd, "a", 1);
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"3", "counter", R"({"name":"a","value":3,"version":3})"}}));
  auto stale = Watch(Name("a"), 2);
  EXPECT_EQ(Parse(stale->TakeOutput()).at(0).id, "3");
}

TEST_F(WatchTest, PrefixWatchDumpsThenStreamsWithCommitSequenceIds) {
  Commit(OpKind::kSet, "t:a", 1);  // seq 1
  Commit(OpKind::kSet, "t:b", 2);  // seq 2
  Commit(OpKind::kSet, "u:c", 3);  // seq 3
  auto stream = Watch(Prefix("t:"));
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"3", "counter", R"({"name":"t:a","value":1,"version":1})"},
                {"3", "counter", R"({"name":"t:b","value":2,"version":1})"}}));
  Commit(OpKind::kAdd, "u:c", 1);  // seq 4: not under the prefix
  Commit(OpKind::kAdd, "t:b", 1);  // seq 5
  Commit(OpKind::kDelete, "t:a");  // seq 6
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"5", "counter", R"({"name":"t:b","value":3,"version":2})"},
                {"6", "deleted", R"({"name":"t:a"})"}}));
}

TEST_F(WatchTest, PrefixResumesExactlyWithinTheWindow) {
  Commit(OpKind::kSet, "t:a", 1);  // 1
  Commit(OpKind::kSet, "t:b", 1);  // 2
  Commit(OpKind::kAdd, "t:a", 1);  // 3
  auto stream = Watch(Prefix("t:"), 2);
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"3", "counter", R"({"name":"t:a","value":2,"version":2})"}}));
  EXPECT_EQ(hub_.Stats().resets, 0u);
}

TEST_F(WatchTest, PrefixTooOldToResumeIsReset) {
  WatchHub small(2, 0);
  repository_.SetChangeSink(&small);
  for (int i = 0; i < 5; ++i) Commit(OpKind::kAdd, "t:a", 1);  // seq 1..5
  auto stream = std::make_shared<WatchStream>(Prefix("t:"), 1, 64, service_,
                                              small, [] {});
  stream->Start();
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"5", "reset", R"({"prefix":"t:"})"},
                {"5", "counter", R"({"name":"t:a","value":5,"version":5})"}}));
  EXPECT_EQ(small.Stats().resets, 1u);
  stream->Close();
}

TEST_F(WatchTest, APrefixReaderThatFallsTooFarBehindIsReset) {
  auto stream = Watch(Prefix("m:"), std::nullopt, /*buffer=*/3);
  stream->TakeOutput();
  for (const char* name : {"m:1", "m:2", "m:3", "m:4"}) {
    Commit(OpKind::kAdd, name, 1);
  }
  const std::vector<Event> events = Parse(stream->TakeOutput());
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].event, "reset");
  EXPECT_EQ(events[4].data, R"({"name":"m:4","value":1,"version":1})");
  EXPECT_EQ(hub_.Stats().resets, 1u);
}

TEST_F(WatchTest, AGapResynchronises) {
  auto named = Watch(Name("g"));
  auto prefixed = Watch(Prefix("g"));
  named->TakeOutput();
  prefixed->TakeOutput();
  Commit(OpKind::kSet, "g", 7);
  named->TakeOutput();
  prefixed->TakeOutput();
  storage::ChangeBatch gap;
  gap.seq = 10;
  gap.gap = true;
  hub_.OnCommitted(gap);
  EXPECT_EQ(Parse(prefixed->TakeOutput()).at(0).event, "reset");
}

TEST_F(WatchTest, RestrictedPrefixWatchSeesOnlyItsRanges) {
  Commit(OpKind::kSet, "b:1", 1);
  Commit(OpKind::kSet, "c:1", 1);
  auto stream = Watch(WatchTarget{true, "", true, {"b:"}});
  const std::vector<Event> dump = Parse(stream->TakeOutput());
  ASSERT_EQ(dump.size(), 1u);
  EXPECT_EQ(dump[0].data, R"({"name":"b:1","value":1,"version":1})");
  Commit(OpKind::kAdd, "c:1", 1);
  Commit(OpKind::kAdd, "b:1", 1);
  const std::vector<Event> live = Parse(stream->TakeOutput());
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].data, R"({"name":"b:1","value":2,"version":2})");
}

// A backend whose change feed travels apart from its reads (PostgreSQL: a
// listener connection) may publish a commit after a read has shown it. The
// dump waits for the feed to reach what it read, so that the live events
// that follow it are the changes after it: the creation the dump held is
// not sent again (the PostgreSQL integration suite once saw it repeated).
TEST_F(WatchTest, ADumpAheadOfTheFeedIsNotRepeatedLive) {
  repository_.hold_changes = true;
  Commit(OpKind::kSet, "t:a", 1);  // seq 1: readable, not yet published
  auto stream = Watch(Prefix("t:"));
  std::string out = stream->TakeOutput();
  EXPECT_EQ(out, "") << "the dump waits for the feed";
  EXPECT_EQ(repository_.PublishPending(), 1u);
  out += stream->TakeOutput();
  Commit(OpKind::kAdd, "t:a", 1);  // seq 2
  EXPECT_EQ(repository_.PublishPending(), 1u);
  out += stream->TakeOutput();
  EXPECT_EQ(Parse(out),
            (std::vector<Event>{
                {"0", "counter", R"({"name":"t:a","value":1,"version":1})"},
                {"2", "counter", R"({"name":"t:a","value":2,"version":2})"}}));
}

TEST_F(WatchTest, AChangeTheDumpDidNotSeeIsSentLive) {
  repository_.hold_changes = true;
  Commit(OpKind::kSet, "t:a", 1);  // seq 1, in the dump
  auto stream = Watch(Prefix("t:"));
  Commit(OpKind::kAdd, "t:a", 1);  // seq 2, after the dump's read
  Commit(OpKind::kSet, "t:b", 5);  // seq 3, a counter the dump did not see
  EXPECT_EQ(repository_.PublishPending(), 3u);
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"0", "counter", R"({"name":"t:a","value":1,"version":1})"},
                {"2", "counter", R"({"name":"t:a","value":2,"version":2})"},
                {"3", "counter", R"({"name":"t:b","value":5,"version":1})"}}));
}

TEST_F(WatchTest, ARestrictedDumpAheadOfTheFeedIsNotRepeatedLive) {
  repository_.hold_changes = true;
  Commit(OpKind::kSet, "b:1", 1);  // seq 1
  Commit(OpKind::kSet, "c:1", 1);  // seq 2: outside the token's ranges
  Commit(OpKind::kSet, "d:1", 1);  // seq 3
  auto stream = Watch(WatchTarget{true, "", true, {"b:", "d:"}});
  EXPECT_EQ(repository_.PublishPending(), 3u);
  std::string out = stream->TakeOutput();
  Commit(OpKind::kAdd, "d:1", 1);  // seq 4
  EXPECT_EQ(repository_.PublishPending(), 1u);
  out += stream->TakeOutput();
  EXPECT_EQ(Parse(out),
            (std::vector<Event>{
                {"0", "counter", R"({"name":"b:1","value":1,"version":1})"},
                {"0", "counter", R"({"name":"d:1","value":1,"version":1})"},
                {"4", "counter", R"({"name":"d:1","value":2,"version":2})"}}));
}

// The file backend publishes an expiry under the sequence number of the
// last commit (an expiry writes no record): a removal the feed brings with
// a sequence number the dump already covers still counts when the dump
// showed the counter alive.
TEST_F(WatchTest, ARemovalUnderTheDumpsSequenceOfALiveCounterIsSent) {
  repository_.hold_changes = true;
  Commit(OpKind::kSet, "t:a", 1);  // seq 1
  auto stream = Watch(Prefix("t:"));
  EXPECT_EQ(repository_.PublishPending(), 1u);
  storage::ChangeBatch expiry;
  expiry.seq = 1;
  expiry.changes.push_back({"t:a", std::nullopt});
  hub_.OnCommitted(expiry);
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"0", "counter", R"({"name":"t:a","value":1,"version":1})"},
                {"1", "deleted", R"({"name":"t:a"})"}}));
}

// The same for a counter watch: announcements its read already holds are
// dropped by commit sequence number, so a creation announced late never
// takes the watcher back to version 1.
TEST_F(WatchTest, ACounterWatchAheadOfTheFeedNeverGoesBack) {
  repository_.hold_changes = true;
  Commit(OpKind::kSet, "a", 1);  // seq 1, version 1
  Commit(OpKind::kAdd, "a", 1);  // seq 2, version 2
  Commit(OpKind::kAdd, "a", 1);  // seq 3, version 3
  auto stream = Watch(Name("a"));
  std::string out = stream->TakeOutput();
  while (repository_.PublishPending(1) == 1) out += stream->TakeOutput();
  Commit(OpKind::kAdd, "a", 1);  // seq 4, version 4
  EXPECT_EQ(repository_.PublishPending(), 1u);
  out += stream->TakeOutput();
  EXPECT_EQ(Parse(out),
            (std::vector<Event>{
                {"3", "counter", R"({"name":"a","value":3,"version":3})"},
                {"4", "counter", R"({"name":"a","value":4,"version":4})"}}));
}

// A counter used again after it expired starts anew at version 1, and the
// backends publish no removal before it: a lower version that is news.
TEST_F(WatchTest, ACounterWatchTakesARecreationAtVersionOne) {
  for (int i = 0; i < 5; ++i) Commit(OpKind::kAdd, "a", 1);  // seq 1..5
  auto stream = Watch(Name("a"));
  EXPECT_EQ(Parse(stream->TakeOutput()).at(0).id, "5");
  storage::ChangeBatch recreated;
  recreated.seq = 6;
  recreated.changes.push_back({"a", domain::Counter{"a", 1, 1, 0}});
  hub_.OnCommitted(recreated);
  EXPECT_EQ(Parse(stream->TakeOutput()),
            (std::vector<Event>{
                {"1", "counter", R"({"name":"a","value":1,"version":1})"}}));
}

TEST_F(WatchTest, HubCountsWatchersAndForgetsClosedOnes) {
  auto a = Watch(Name("a"));
  auto b = Watch(Prefix("x"));
  EXPECT_EQ(hub_.Stats().watchers, 2u);
  a->Close();
  b->Close();
  EXPECT_EQ(hub_.Stats().watchers, 0u);
  EXPECT_EQ(WatchStream::Heartbeat(), ": heartbeat\n\n");
}

}  // namespace
}  // namespace counterd::http
