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

namespace counterd::storage {
namespace {

using testing::AddPlanner;
using testing::DeletePlanner;
using testing::ManualOptions;

// Forwards to |base| until |budget| mutating calls have been made; every
// call after that fails. Not thread-safe (the tests step the store by hand).
class DyingFileSystem final : public platform::FileSystem {
 public:
  DyingFileSystem(platform::FileSystem& base, std::int64_t budget)
      : base_(base), budget_(budget) {}

  Status Step(std::string_view what) {
    if (budget_-- > 0) return Status::Ok();
    return Status::Unavailable(std::string(what) + ": power lost");
  }
  std::int64_t used(std::int64_t initial) const { return initial - budget_; }

  Result<std::unique_ptr<platform::WritableFile>> NewWritableFile(
      const std::string& path) override {
    return Wrap(Step("open"), base_.NewWritableFile(path));
  }
  Result<std::unique_ptr<platform::WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return Wrap(Step("open"), base_.NewAppendableFile(path));
  }
  Result<std::string> ReadFile(const std::string& path) override {
    return base_.ReadFile(path);
  }
  Result<bool> FileExists(const std::string& path) override {
    return base_.FileExists(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_.ListDir(dir);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    COUNTERD_RETURN_IF_ERROR(Step("rename"));
    return base_.Rename(from, to);
  }
  Status RemoveFile(const std::string& path) override {
    COUNTERD_RETURN_IF_ERROR(Step("unlink"));
    return base_.RemoveFile(path);
  }
  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    COUNTERD_RETURN_IF_ERROR(Step("truncate"));
    return base_.TruncateFile(path, size);
  }
  Status SyncDir(const std::string& dir) override {
    COUNTERD_RETURN_IF_ERROR(Step("syncdir"));
    return base_.SyncDir(dir);
  }
  Status CreateDir(const std::string& dir) override {
    return base_.CreateDir(dir);
  }
  Result<std::unique_ptr<platform::FileLock>> LockFile(
      const std::string& path) override {
    return base_.LockFile(path);
  }

 private:
  class File final : public platform::WritableFile {
   public:
    File(DyingFileSystem& fs, std::unique_ptr<platform::WritableFile> base)
        : fs_(fs), base_(std::move(base)) {}
    Status Append(std::string_view data) override {
      COUNTERD_RETURN_IF_ERROR(fs_.Step("write"));
      return base_->Append(data);
    }
    Status Sync() override {
      COUNTERD_RETURN_IF_ERROR(fs_.Step("fdatasync"));
      return base_->Sync();
    }
    Status Close() override { return base_->Close(); }
    std::uint64_t Size() const override { return base_->Size(); }

   private:
    DyingFileSystem& fs_;
    std::unique_ptr<platform::WritableFile> base_;
  };

  Result<std::unique_ptr<platform::WritableFile>> Wrap(
      Status step, Result<std::unique_ptr<platform::WritableFile>> file) {
    if (!step.ok()) return step;
    if (!file) return file;
    return std::unique_ptr<platform::WritableFile>(
        std::make_unique<File>(*this, std::move(*file)));
  }

  platform::FileSystem& base_;
  std::int64_t budget_;
};

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
    std::int64_t total = 0;
    {
      counterd::testing::MemFileSystem mem;
      constexpr std::int64_t kUnlimited = 1'000'000;
      DyingFileSystem fs(mem, kUnlimited);
      auto store = CounterStore::Open(fs, clock, CrashOptions());
      ASSERT_TRUE(store);
      const Model full = RunWorkload(**store, seed, kOps);
      total = fs.used(kUnlimited);
      store->reset();
      mem.SimulateCrash();
      ASSERT_EQ(Recovered(mem, clock), full) << "seed " << seed;
    }
    ASSERT_GT(total, kOps);
    for (std::int64_t k = 0; k <= total; ++k) {
      SCOPED_TRACE("seed " + std::to_string(seed) + ", power lost after " +
                   std::to_string(k) + " of " + std::to_string(total) +
                   " file-system steps");
      counterd::testing::MemFileSystem mem;
      Model acked;
      {
        DyingFileSystem fs(mem, k);
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
