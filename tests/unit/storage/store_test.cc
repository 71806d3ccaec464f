// The store's commit protocol: group commit, committed-only reads,
// idempotency records and their retention, close.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <latch>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/platform/posix_file_system.h"
#include "store_test_util.h"
#include "support/mem_file_system.h"

namespace counterd::storage {
namespace {

using testing::AddPlanner;
using testing::ManualOptions;
using testing::RunOne;

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<CounterStore> Open(StoreOptions options = ManualOptions()) {
    auto store = CounterStore::Open(fs_, clock_, std::move(options));
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }
  counterd::testing::MemFileSystem fs_;
  ManualClock clock_{
      std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50))};
};

TEST_F(StoreTest, ConcurrentSubmissionsShareOneFsync) {
  auto store = Open();
  constexpr int kWriters = 64;
  std::latch start(kWriters);
  std::atomic<int> acked{0};
  std::vector<std::jthread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&] {
      start.arrive_and_wait();
      store->Submit(AddPlanner("hot", 1), [&](domain::MutationOutcome o) {
        if (o.status.ok()) ++acked;
      });
    });
  }
  writers.clear();  // joins: all 64 are queued, none committed
  EXPECT_EQ(acked.load(), 0);
  EXPECT_EQ(store->CommitPendingBatch(), 64u);
  EXPECT_EQ(acked.load(), 64);
  EXPECT_EQ(store->Stats().fsyncs, 1u);
  EXPECT_EQ(store->Stats().mutations, 64u);
  EXPECT_EQ(store->Get("hot")->value, 64);
  EXPECT_EQ(store->BatchSizes().Read().count, 1u);
}

TEST_F(StoreTest, ReadsSeeOnlyCommittedState) {
  auto store = Open();
  bool done = false;
  store->Submit(AddPlanner("a", 5),
                [&](domain::MutationOutcome) { done = true; });
  EXPECT_FALSE(store->Get("a").has_value());  // queued, not durable
  store->CommitPendingBatch();
  EXPECT_TRUE(done);
  EXPECT_EQ(store->Get("a")->value, 5);
}

TEST_F(StoreTest, LaterMutationsInABatchSeeEarlierOnes) {
  auto store = Open();
  std::vector<std::int64_t> values;
  for (int i = 0; i < 5; ++i) {
    store->Submit(AddPlanner("a", 1), [&](domain::MutationOutcome o) {
      values.push_back(o.counter->value);
    });
  }
  store->CommitPendingBatch();
  EXPECT_EQ(values, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(store->Get("a")->version, 5u);
}

TEST_F(StoreTest, RefusalsWriteNothing) {
  auto store = Open();
  const auto outcome = RunOne(*store, testing::DeletePlanner("missing"));
  EXPECT_EQ(outcome.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Stats().fsyncs, 0u);
  EXPECT_EQ(store->Stats().journal_bytes, 0u);
}

TEST_F(StoreTest, ListIsSortedWithPrefixAfterAndLimit) {
  auto store = Open();
  for (const char* name : {"b", "a:2", "a:1", "c", "a:3"}) {
    RunOne(*store, AddPlanner(name, 1));
  }
  auto names = [&](std::string_view prefix, std::string_view after,
                   std::size_t limit) {
    std::vector<std::string> out;
    for (const auto& c : store->List(prefix, after, limit))
      out.push_back(c.name);
    return out;
  };
  EXPECT_EQ(names("", "", 10),
            (std::vector<std::string>{"a:1", "a:2", "a:3", "b", "c"}));
  EXPECT_EQ(names("a:", "", 2), (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_EQ(names("a:", "a:2", 10), (std::vector<std::string>{"a:3"}));
  EXPECT_EQ(names("", "a:3", 10), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(names("z", "", 10).empty());
}

Planner IdempotentAdd(std::string key,
                      std::chrono::system_clock::time_point now) {
  return [key = std::move(key), now](const StateView& view) {
    Plan plan = AddPlanner("a", 1)(view);
    IdempotencyRecord r;
    r.key = key;
    r.created_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          now.time_since_epoch())
                          .count();
    r.outcome = plan.outcome;
    plan.effects.emplace_back(PutIdempotency{r});
    return plan;
  };
}

TEST_F(StoreTest, IdempotencyRecordsSurviveRestartAndCompactionUntilExpiry) {
  StoreOptions options = ManualOptions();
  options.idempotency_retention = std::chrono::hours(1);
  {
    auto store = Open(options);
    RunOne(*store, IdempotentAdd("k1", clock_.Now()));
    ASSERT_TRUE(store->FindIdempotency("k1").has_value());
  }
  {
    auto store = Open(options);  // replayed from the journal
    ASSERT_TRUE(store->FindIdempotency("k1").has_value());
    EXPECT_EQ(store->FindIdempotency("k1")->outcome.counter->value, 1);
    ASSERT_TRUE(store->CompactNow().ok());
  }
  {
    auto store = Open(options);  // loaded from the snapshot
    ASSERT_TRUE(store->FindIdempotency("k1").has_value());
    clock_.Advance(std::chrono::minutes(61));
    EXPECT_FALSE(store->FindIdempotency("k1").has_value());
    ASSERT_TRUE(store->CompactNow().ok());
  }
  EXPECT_EQ(fs_.Contents("/data/state.json").find("k1"), std::string::npos);
  auto store = Open(options);
  EXPECT_FALSE(store->FindIdempotency("k1").has_value());
  EXPECT_EQ(store->Get("a")->value, 1);  // the counter itself stays
}

TEST_F(StoreTest, CloseCommitsWhatIsQueuedThenRefuses) {
  auto store = Open();
  bool ok = false;
  store->Submit(AddPlanner("a", 1),
                [&](domain::MutationOutcome o) { ok = o.status.ok(); });
  ASSERT_TRUE(store->Close().ok());
  EXPECT_TRUE(ok);
  EXPECT_EQ(store->Health().code(), StatusCode::kUnavailable);
  const auto late = RunOne(*store, AddPlanner("a", 1));
  EXPECT_EQ(late.status.code(), StatusCode::kUnavailable);
}

TEST_F(StoreTest, CompactionOnThresholdKeepsWritersGoing) {
  StoreOptions options = ManualOptions();
  options.compaction_threshold_bytes = 200;
  options.start_committer = true;
  auto store = Open(options);
  std::atomic<int> acked{0};
  std::latch all(500);
  for (int i = 0; i < 500; ++i) {
    store->Submit(AddPlanner("c" + std::to_string(i % 7), 1),
                  [&](domain::MutationOutcome o) {
                    if (o.status.ok()) ++acked;
                    all.count_down();
                  });
  }
  all.wait();
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(acked.load(), 500);
  EXPECT_GT(store->Stats().compactions, 0u);
  store.reset();
  auto reopened = Open();
  std::int64_t sum = 0;
  for (const auto& [name, value] : testing::Dump(*reopened)) sum += value;
  EXPECT_EQ(sum, 500);
}

// With fast fsyncs a submitter that finds nobody committing commits its
// own mutation: the completion runs inside Submit, on the caller's thread.
TEST_F(StoreTest, IdleStoreCommitsInlineOnTheSubmittersThread) {
  StoreOptions options = ManualOptions();
  options.start_committer = true;
  auto store = Open(options);
  std::optional<std::thread::id> ran_on;
  store->Submit(AddPlanner("a", 1), [&](domain::MutationOutcome o) {
    EXPECT_TRUE(o.status.ok());
    ran_on = std::this_thread::get_id();
  });
  ASSERT_TRUE(ran_on.has_value()) << "Submit returned before committing";
  EXPECT_EQ(*ran_on, std::this_thread::get_id());
  EXPECT_EQ(store->Get("a")->value, 1);
  EXPECT_EQ(store->Stats().fsyncs, 1u);
  ASSERT_TRUE(store->Close().ok());
}

// inline_commit_max_fsync = 0 (as when fsyncs are slow): Submit only
// queues and the committer thread commits and runs the completion.
TEST_F(StoreTest, WithoutInlineCommitTheCommitterThreadCommits) {
  StoreOptions options = ManualOptions();
  options.start_committer = true;
  options.inline_commit_max_fsync = std::chrono::microseconds(0);
  auto store = Open(options);
  std::promise<std::thread::id> ran_on;
  store->Submit(AddPlanner("a", 1), [&](domain::MutationOutcome o) {
    EXPECT_TRUE(o.status.ok());
    ran_on.set_value(std::this_thread::get_id());
  });
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
  EXPECT_EQ(store->Get("a")->value, 1);
  ASSERT_TRUE(store->Close().ok());
}

// Concurrent writers (a batch of more than one) turn inline commits off:
// then group commit amortises the hand-offs, and an I/O thread must not sit
// in fdatasync while its other connections wait. One lone writer again (a
// batch of one) turns them back on.
TEST_F(StoreTest, InlineCommitOnlyWhileWritersComeOneAtATime) {
  StoreOptions options = ManualOptions();
  options.start_committer = true;
  auto store = Open(options);
  // A planner that holds the committer's role until released, so that two
  // more mutations queue up behind it and form one batch.
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::jthread holder([&] {
    store->Submit(
        [&, planner = AddPlanner("a", 1)](const StateView& view) {
          entered.set_value();
          released.wait();
          return planner(view);
        },
        [](domain::MutationOutcome) {});
  });
  entered.get_future().wait();
  std::latch two(2);
  for (int i = 0; i < 2; ++i) {
    store->Submit(AddPlanner("a", 1),
                  [&](domain::MutationOutcome) { two.count_down(); });
  }
  release.set_value();
  two.wait();
  holder.join();
  const auto submit_and_see_thread = [&] {
    std::promise<std::thread::id> ran_on;
    store->Submit(AddPlanner("a", 1), [&](domain::MutationOutcome) {
      ran_on.set_value(std::this_thread::get_id());
    });
    return ran_on.get_future().get();
  };
  // The last batch held two: this one goes to the committer thread, as a
  // batch of one...
  EXPECT_NE(submit_and_see_thread(), std::this_thread::get_id());
  // ...after which a lone writer commits inline again, once the committer
  // thread has let go of the role (it may still hold it for a moment after
  // running the completion, and a submission meanwhile queues for it).
  int submitted = 4;
  bool inline_again = false;
  for (int attempt = 0; attempt < 1000 && !inline_again; ++attempt) {
    ++submitted;
    inline_again = submit_and_see_thread() == std::this_thread::get_id();
    if (!inline_again)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(inline_again);
  EXPECT_EQ(store->Get("a")->value, submitted);
  ASSERT_TRUE(store->Close().ok());
}

// Writers on many threads racing for the role: every mutation is committed
// exactly once, whoever commits it, and Close waits for an inline commit.
TEST_F(StoreTest, InlineAndCommitterThreadCommitsInterleave) {
  StoreOptions options = ManualOptions();
  options.start_committer = true;
  options.compaction_threshold_bytes = 4096;
  auto store = Open(options);
  constexpr int kWriters = 8;
  constexpr int kEach = 200;
  std::atomic<int> acked{0};
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < kEach; ++i) {
          store->Submit(AddPlanner("c" + std::to_string((w + i) % 5), 1),
                        [&](domain::MutationOutcome o) {
                          if (o.status.ok()) ++acked;
                        });
        }
      });
    }
  }
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(acked.load(), kWriters * kEach);
  EXPECT_GT(store->Stats().compactions, 0u);
  store.reset();
  std::int64_t sum = 0;
  for (const auto& [name, value] : testing::Dump(*Open())) sum += value;
  EXPECT_EQ(sum, kWriters * kEach);
}

// The real file system, a real committer thread and 64 writers that each
// wait for their acknowledgement before the next increment.
TEST(StoreOnDiskTest, SixtyFourWritersShareFsyncs) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("counterd-store-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto fs = platform::NewPosixFileSystem();
  SystemClock clock;
  StoreOptions options;
  options.data_dir = dir.string();
  auto store = CounterStore::Open(*fs, clock, options);
  ASSERT_TRUE(store) << store.error().ToString();
  constexpr int kWriters = 64;
  constexpr int kEach = 50;
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          std::promise<void> acked;
          (*store)->Submit(AddPlanner("hot", 1),
                           [&](domain::MutationOutcome) { acked.set_value(); });
          acked.get_future().wait();
        }
      });
    }
  }
  const StoreStats stats = (*store)->Stats();
  EXPECT_EQ((*store)->Get("hot")->value, kWriters * kEach);
  EXPECT_EQ(stats.mutations, static_cast<std::uint64_t>(kWriters * kEach));
  // Each writer waits for its own fsync, so a batch forms from everyone who
  // queued during the previous one. Far fewer fsyncs than mutations:
  EXPECT_LT(stats.fsyncs * 4, stats.mutations)
      << "fsyncs=" << stats.fsyncs << " mutations=" << stats.mutations;
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace counterd::storage
