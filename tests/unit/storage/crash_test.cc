// Power loss at every file-system step. A seeded random workload of
// increments, deletes and compactions runs on a file system that "loses
// power" at its k-th mutating call (every later call fails, as if the
// process were gone), for every k. MemFileSystem then drops whatever was not
// synced, and recovery must give exactly the acknowledged state.
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "store_test_util.h"
#include "support/mem_file_system.h"
#include "support/power_cut_file_system.h"

namespace counterd::storage {
namespace {

using testing::AddPlanner;
using testing::DeletePlanner;
using testing::ManualOptions;

using Model = std::map<std::string, domain::Counter>;

// Runs the seeded workload until the store refuses a write; returns the
// acknowledged state.
Model RunWorkload(CounterStore& store, std::uint32_t seed, int ops) {
  std::mt19937 rng(seed);
  Model model;
  const char* names[] = {"a", "b", "user:1", "user:2"};
  for (int i = 0; i < ops; ++i) {
    const int pick = static_cast<int>(rng() % 10);
    if (pick == 0) {
      if (!store.CompactNow().ok()) break;
      continue;
    }
    // Batches of 1..3 mutations share a record.
    const int batch = 1 + static_cast<int>(rng() % 3);
    std::vector<domain::MutationOutcome> outcomes;
    std::vector<std::string> batch_names;
    for (int j = 0; j < batch; ++j) {
      const std::string name = names[rng() % 4];
      batch_names.push_back(name);
      Planner planner =
          pick == 1 ? DeletePlanner(name)
                    : AddPlanner(name, static_cast<int>(rng() % 100) - 30);
      store.Submit(std::move(planner), [&](domain::MutationOutcome o) {
        outcomes.push_back(std::move(o));
      });
    }
    store.CommitPendingBatch();
    bool refused = false;
    for (std::size_t j = 0; j < outcomes.size(); ++j) {
      const auto& o = outcomes[j];
      if (o.status.code() == StatusCode::kNotFound) continue;
      if (!o.status.ok()) {
        refused = true;
        continue;
      }
      if (o.counter) {
        model[o.counter->name] = *o.counter;
      } else {
        model.erase(batch_names[j]);
      }
    }
    if (refused) break;
  }
  return model;
}

StoreOptions CrashOptions() {
  StoreOptions options = ManualOptions();
  options.split_compaction_for_test = true;
  return options;
}

Model Recovered(counterd::testing::MemFileSystem& fs, const Clock& clock) {
  auto store = CounterStore::Open(fs, clock, ManualOptions());
  EXPECT_TRUE(store) << store.error().ToString();
  Model model;
  if (!store) return model;
  for (const auto& c : (*store)->List("", "", 1000)) model[c.name] = c;
  return model;
}

TEST(CrashTest, PowerLossAtEveryFileSystemStepRecoversTheAckedState) {
  ManualClock clock;
  constexpr int kOps = 40;
  std::uint64_t crash_points = 0;
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    // How many mutating calls the whole workload makes without a crash.
    std::uint64_t total = 0;
    {
      counterd::testing::MemFileSystem mem;
      counterd::testing::PowerCut fs(mem, ~std::uint64_t{0});
      auto store = CounterStore::Open(fs, clock, CrashOptions());
      ASSERT_TRUE(store);
      const Model full = RunWorkload(**store, seed, kOps);
      total = fs.steps();
      store->reset();
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
        auto store = CounterStore::Open(fs, clock, CrashOptions());
        if (store) acked = RunWorkload(**store, seed, kOps);
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
