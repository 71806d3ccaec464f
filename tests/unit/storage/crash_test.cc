// Power loss at every file-system step. A seeded random workload of
// increments, deletes, batches and compactions runs on a file system that
// "loses power" at its k-th mutating call (every later call fails, as if
// the process were gone), for every k. MemFileSystem then drops whatever
// was not synced, and recovery must give exactly the acknowledged state.
#include <deque>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "store_test_util.h"
#include "support/mem_file_system.h"
#include "support/power_cut_file_system.h"

namespace counterd::storage {
namespace {

using testing::ManualOptions;

using Model = std::map<std::string, domain::Counter>;

// Runs the seeded workload until the store refuses a write; returns the
// acknowledged state.
Model RunWorkload(FileRepository& repo, std::uint32_t seed, int ops) {
  std::mt19937 rng(seed);
  Model model;
  const char* names[] = {"a", "b", "user:1", "user:2"};
  for (int i = 0; i < ops; ++i) {
    const int pick = static_cast<int>(rng() % 10);
    if (pick == 0) {
      if (!repo.CompactNow().ok()) break;
      continue;
    }
    // Groups of 1..3 transactions share a record; the last may be a batch
    // of two operations.
    const int group = 1 + static_cast<int>(rng() % 3);
    std::vector<domain::Transaction> txs;
    for (int j = 0; j < group; ++j) {
      const std::string name = names[rng() % 4];
      if (pick == 1) {
        txs.push_back(testing::Delete(name));
      } else if (pick == 2) {
        txs.push_back(testing::Batch(
            {testing::AddOp(name, 1), testing::AddOp(names[rng() % 4], -2)}));
      } else {
        txs.push_back(testing::Add(name, static_cast<int>(rng() % 100) - 30));
      }
    }
    std::deque<testing::OutcomeCapture> done(txs.size());
    for (std::size_t j = 0; j < txs.size(); ++j) repo.Commit(txs[j], done[j]);
    repo.CommitPendingBatch();
    bool refused = false;
    for (std::size_t j = 0; j < txs.size(); ++j) {
      if (!done[j].done()) return model;
      const domain::TransactionOutcome& o = done[j].result();
      if (o.status.code() == StatusCode::kNotFound) continue;
      if (!o.status.ok()) {
        refused = true;
        continue;
      }
      for (std::size_t k = 0; k < o.results.size(); ++k) {
        const std::string& name = txs[j].ops[k].name.str();
        if (o.results[k].counter) {
          model[name] = *o.results[k].counter;
        } else {
          model.erase(name);
        }
      }
    }
    if (refused) break;
  }
  return model;
}

FileRepositoryOptions CrashOptions() {
  FileRepositoryOptions options = ManualOptions();
  options.split_compaction_for_test = true;
  return options;
}

Model Recovered(counterd::testing::MemFileSystem& fs, const Clock& clock) {
  auto repo = FileRepository::Open(fs, clock, ManualOptions());
  EXPECT_TRUE(repo) << repo.error().ToString();
  Model model;
  if (!repo) return model;
  for (const auto& c : testing::List(**repo)) model[c.name] = c;
  return model;
}

TEST(CrashTest, PowerLossAtEveryFileSystemStepRecoversTheAckedState) {
  const testing::QuietLogs quiet;
  ManualClock clock;
  constexpr int kOps = 40;
  std::uint64_t crash_points = 0;
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    // How many mutating calls the whole workload makes without a crash.
    std::uint64_t total = 0;
    {
      counterd::testing::MemFileSystem mem;
      counterd::testing::PowerCut fs(mem, ~std::uint64_t{0});
      auto repo = FileRepository::Open(fs, clock, CrashOptions());
      ASSERT_TRUE(repo);
      const Model full = RunWorkload(**repo, seed, kOps);
      total = fs.steps();
      repo->reset();
      mem.SimulateCrash();
      ASSERT_EQ(Recovered(mem, clock), full) << "seed " << seed;
    }
    ASSERT_GT(total, static_cast<std::uint64_t>(kOps));
    for (std::uint64_t k = 0; k <= total; ++k) {
      SCOPED_TRACE("seed " + std::to_string(seed) + ", power lost after " +
                   std::to_string(k) + " of " + std::to_string(total) +
                   " file-system steps");
      counterd::testing::MemFileSystem mem;
      Model acked;
      {
        counterd::testing::PowerCut fs(mem, k);
        auto repo = FileRepository::Open(fs, clock, CrashOptions());
        if (repo) acked = RunWorkload(**repo, seed, kOps);
      }
      mem.SimulateCrash();
      ASSERT_EQ(Recovered(mem, clock), acked);
      ++crash_points;
    }
  }
  RecordProperty("crash_points", static_cast<int>(crash_points));
}

}  // namespace
}  // namespace counterd::storage
