// Power loss at every file-system step, under two models of what a crash
// keeps (docs/durability.md, "Storage assumptions"):
//
//  strict       everything not fsynced is gone: unsynced bytes and every
//               directory change not made durable by a directory fsync;
//  adversarial  what was not fsynced may or may not be there: a random
//               subset of the unsynced directory operations (creations,
//               renames, removals) survives, and each file keeps a random
//               prefix of its unsynced bytes;
//  adversarial with holes: as adversarial, and the kept bytes may read
//               back as zeros in places.
//
// A seeded random workload (increments and decrements, batches, sets and
// increments with a ttl that expire, bounded increments refused past their
// maximum, deletes, retries under idempotency keys in two scopes and keys
// reused for other requests, clock steps that expire counters and
// idempotency records, expiry sweeps, compactions with commits between
// journal rotation and snapshot write) runs until the file system "loses
// power" at its k-th mutating call, for every k. Every answer must be the
// one service::MutationRules gives on the acknowledged state (the model).
// Recovery must then give exactly the acknowledged state, as a client sees
// it: the live counters, and what a retry under each key is answered;
// every acknowledged transaction and nothing a client could have seen
// beyond it. The one thing allowed on top is the
// single record whose fdatasync never returned, whole or not at all, and
// only in the adversarial model (no client saw it: Invariant 2). Recovery
// is then itself cut at every step, and a second workload after recovery
// must be as durable as the first. The seed, the step and the model are in
// every failure message.
//
// COUNTERD_POWER_LOSS_SEEDS=N runs N seeds per model instead of the default
// (8; 1 under a sanitizer): a longer run on demand.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "counterd/core/clock.h"
#include "counterd/service/mutation_rules.h"
#include "counterd/storage/file_repository.h"
#include "store_test_util.h"
#include "support/power_cut_file_system.h"

namespace counterd::storage {
namespace {

using counterd::testing::PowerCut;

constexpr std::string_view kDataDir = "/data";
constexpr std::chrono::milliseconds kRetention{2000};

// ---------------------------------------------------------------------------
// PowerLossFileSystem: an in-memory file system that models a crash in the
// strict or the adversarial way (see the file comment). Each inode keeps
// its live contents and its durable contents (as of its last fsync); the
// namespace keeps its live entries, its durable entries (as of the last
// SyncDir) and the directory operations made since. Single-threaded: the
// stores run with start_committer=false.
// ---------------------------------------------------------------------------

enum class CrashModel {
  kStrict,
  kAdversarial,
  // As kAdversarial, and the kept unsynced bytes may have holes: 8-byte
  // blocks that read back as zeros (write-back out of order, the file size
  // already covering them). Never garbage: zeros or what was written.
  kAdversarialWithHoles,
};

struct CrashReport {
  std::uint64_t dir_ops_pending = 0;
  std::uint64_t dir_ops_kept = 0;
  std::uint64_t renames_kept = 0;  // renames that survived without SyncDir
  std::uint64_t unsynced_bytes = 0;
  std::uint64_t unsynced_bytes_kept = 0;
};

class PowerLossFileSystem final : public platform::FileSystem {
 public:
  struct Inode {
    std::string data;     // what reads see
    std::string durable;  // what certainly survives a crash
  };

  PowerLossFileSystem() = default;
  PowerLossFileSystem(const PowerLossFileSystem&) = delete;
  PowerLossFileSystem& operator=(const PowerLossFileSystem&) = delete;

  // For the negative controls: a file system that acknowledges fsync or
  // directory fsync without doing it must make the checks below fail.
  void LieAboutFsync() { lie_fsync_ = true; }
  void LieAboutDirSync() { lie_syncdir_ = true; }

  // A deep copy (the state "on disk" and in the page cache), so one crash
  // can be followed by many different recoveries.
  std::unique_ptr<PowerLossFileSystem> Clone() const {
    auto out = std::make_unique<PowerLossFileSystem>();
    std::map<const Inode*, std::shared_ptr<Inode>> copies;
    const auto copy = [&](const std::shared_ptr<Inode>& inode) {
      auto& c = copies[inode.get()];
      if (!c) c = std::make_shared<Inode>(*inode);
      return c;
    };
    for (const auto& [path, inode] : live_) out->live_[path] = copy(inode);
    for (const auto& [path, inode] : durable_) {
      out->durable_[path] = copy(inode);
    }
    for (const DirOp& op : pending_) {
      out->pending_.push_back({op.kind, op.from, op.to, copy(op.inode)});
    }
    out->lie_fsync_ = lie_fsync_;
    out->lie_syncdir_ = lie_syncdir_;
    return out;
  }

  // Power loss. Open files and locks are gone; what survives is chosen by
  // |model| (and |rng| for the adversarial one).
  CrashReport Crash(CrashModel model, std::mt19937_64& rng) {
    CrashReport report;
    std::map<std::string, std::shared_ptr<Inode>> ns = durable_;
    report.dir_ops_pending = pending_.size();
    for (const DirOp& op : pending_) {
      if (model == CrashModel::kStrict || rng() % 2 == 0) continue;
      ++report.dir_ops_kept;
      switch (op.kind) {
        case DirOp::kCreate:
          ns[op.to] = op.inode;
          break;
        case DirOp::kRemove:
          if (auto it = ns.find(op.to);
              it != ns.end() && it->second == op.inode)
            ns.erase(it);
          break;
        case DirOp::kRename:
          // The rename names the inode, so it may survive even when the
          // creation of its source name did not.
          if (auto it = ns.find(op.from);
              it != ns.end() && it->second == op.inode) {
            ns.erase(it);
          }
          ns[op.to] = op.inode;
          ++report.renames_kept;
          break;
      }
    }
    std::set<Inode*> done;
    for (auto& [path, inode] : ns) {
      if (!done.insert(inode.get()).second) continue;
      inode->data = Survivor(*inode, model, rng, report);
      inode->durable = inode->data;  // what is on disk now stays there
    }
    live_ = ns;
    durable_ = std::move(ns);
    pending_.clear();
    locks_.clear();
    ++epoch_;
    return report;
  }

  std::string Contents(const std::string& path) const {
    const auto it = live_.find(path);
    return it == live_.end() ? "" : it->second->data;
  }
  void SetContents(const std::string& path, std::string data) {
    auto inode = std::make_shared<Inode>();
    inode->data = std::move(data);
    inode->durable = inode->data;
    live_[path] = inode;
    durable_[path] = inode;
  }

  Result<std::unique_ptr<platform::WritableFile>> NewWritableFile(
      const std::string& path) override {
    return Open(path, true);
  }
  Result<std::unique_ptr<platform::WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return Open(path, false);
  }
  Result<std::string> ReadFile(const std::string& path) override {
    const auto it = live_.find(path);
    if (it == live_.end()) return NotFound("open", path);
    return it->second->data;
  }
  Result<bool> FileExists(const std::string& path) override {
    return live_.count(path) > 0 || path == kDataDir;
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::vector<std::string> names;
    for (const auto& [path, inode] : live_) {
      if (DirOf(path) == dir) names.push_back(path.substr(dir.size() + 1));
    }
    return names;
  }
  Status Rename(const std::string& from, const std::string& to) override {
    const auto it = live_.find(from);
    if (it == live_.end()) return NotFound("rename", from);
    pending_.push_back({DirOp::kRename, from, to, it->second});
    live_[to] = it->second;
    live_.erase(from);
    return Status::Ok();
  }
  Status RemoveFile(const std::string& path) override {
    const auto it = live_.find(path);
    if (it == live_.end()) return NotFound("unlink", path);
    pending_.push_back({DirOp::kRemove, "", path, it->second});
    live_.erase(it);
    return Status::Ok();
  }
  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    const auto it = live_.find(path);
    if (it == live_.end()) return NotFound("open", path);
    it->second->data.resize(static_cast<std::size_t>(size));
    it->second->durable = it->second->data;  // ftruncate + fsync
    return Status::Ok();
  }
  Status SyncDir(const std::string& dir) override {
    if (lie_syncdir_) return Status::Ok();
    std::erase_if(durable_,
                  [&](const auto& e) { return DirOf(e.first) == dir; });
    for (const auto& [path, inode] : live_) {
      if (DirOf(path) == dir) durable_[path] = inode;
    }
    std::erase_if(pending_, [&](const DirOp& op) {
      return DirOf(op.to) == dir && (op.from.empty() || DirOf(op.from) == dir);
    });
    return Status::Ok();
  }
  Status CreateDir(const std::string& /*dir*/) override { return Status::Ok(); }
  Result<std::unique_ptr<platform::FileLock>> LockFile(
      const std::string& path) override {
    if (!locks_.insert(path).second) {
      return Status::Unavailable(path + " is locked");
    }
    return std::unique_ptr<platform::FileLock>(
        std::make_unique<Lock>(*this, path, epoch_));
  }
  Result<std::uint64_t> FreeBytes(const std::string& /*dir*/) override {
    return std::uint64_t{1} << 40;  // space is not what this test is about
  }

 private:
  struct DirOp {
    enum Kind { kCreate, kRemove, kRename } kind;
    std::string from;  // kRename only
    std::string to;    // the name created, removed or renamed onto
    std::shared_ptr<Inode> inode;
  };

  class File final : public platform::WritableFile {
   public:
    File(PowerLossFileSystem& fs, std::shared_ptr<Inode> inode)
        : fs_(fs), inode_(std::move(inode)), epoch_(fs.epoch_) {}
    Status Append(std::string_view data) override {
      COUNTERD_RETURN_IF_ERROR(Alive());
      inode_->data.append(data);
      return Status::Ok();
    }
    Status Sync() override {
      COUNTERD_RETURN_IF_ERROR(Alive());
      if (!fs_.lie_fsync_) inode_->durable = inode_->data;
      return Status::Ok();
    }
    Status Close() override { return Status::Ok(); }
    std::uint64_t Size() const override { return inode_->data.size(); }

   private:
    Status Alive() const {
      if (epoch_ == fs_.epoch_) return Status::Ok();
      return Status::Unavailable("file handle from before a crash");
    }
    PowerLossFileSystem& fs_;
    std::shared_ptr<Inode> inode_;
    std::uint64_t epoch_;
  };

  class Lock final : public platform::FileLock {
   public:
    Lock(PowerLossFileSystem& fs, std::string path, std::uint64_t epoch)
        : fs_(fs), path_(std::move(path)), epoch_(epoch) {}
    ~Lock() override {
      if (epoch_ == fs_.epoch_) fs_.locks_.erase(path_);
    }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

   private:
    PowerLossFileSystem& fs_;
    std::string path_;
    std::uint64_t epoch_;
  };

  static std::string DirOf(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
  }
  static Status NotFound(const std::string& op, const std::string& path) {
    return Status::NotFound(op + " " + path + ": No such file or directory");
  }

  Result<std::unique_ptr<platform::WritableFile>> Open(const std::string& path,
                                                       bool truncate) {
    auto& inode = live_[path];
    if (!inode) {
      inode = std::make_shared<Inode>();
      pending_.push_back({DirOp::kCreate, "", path, inode});
    } else if (truncate) {
      // O_TRUNC: until the next fsync the old contents may come back.
      inode->data.clear();
    }
    return std::unique_ptr<platform::WritableFile>(
        std::make_unique<File>(*this, inode));
  }

  // The contents of |inode| after a crash. Strict: the durable contents.
  // Adversarial: the durable contents plus a random prefix of what was
  // appended since (none, all or some), or, for a file truncated and
  // rewritten since its last fsync, the old or a prefix of the new.
  static std::string Survivor(const Inode& inode, CrashModel model,
                              std::mt19937_64& rng, CrashReport& report) {
    const std::string& durable = inode.durable;
    const std::string& data = inode.data;
    const bool appended = data.size() >= durable.size() &&
                          std::string_view(data).substr(0, durable.size()) ==
                              std::string_view(durable);
    const std::size_t unsynced =
        appended ? data.size() - durable.size() : data.size();
    report.unsynced_bytes += unsynced;
    if (model == CrashModel::kStrict || unsynced == 0) return durable;
    const auto pick = [&](std::size_t n) -> std::size_t {
      switch (rng() % 3) {
        case 0:
          return 0;
        case 1:
          return n;
        default:
          return static_cast<std::size_t>(rng() % (n + 1));
      }
    };
    if (appended) {
      const std::size_t keep = pick(unsynced);
      report.unsynced_bytes_kept += keep;
      std::string out = data.substr(0, durable.size() + keep);
      if (model == CrashModel::kAdversarialWithHoles) {
        constexpr std::size_t kBlock = 8;
        for (std::size_t at = durable.size() / kBlock * kBlock; at < out.size();
             at += kBlock) {
          if (rng() % 4 != 0) continue;
          for (std::size_t i = std::max(at, durable.size());
               i < std::min(at + kBlock, out.size()); ++i) {
            out[i] = '\0';
          }
        }
      }
      return out;
    }
    if (rng() % 2 == 0) return durable;
    const std::size_t keep = pick(data.size());
    report.unsynced_bytes_kept += keep;
    return data.substr(0, keep);
  }

  std::map<std::string, std::shared_ptr<Inode>> live_;
  std::map<std::string, std::shared_ptr<Inode>> durable_;
  std::vector<DirOp> pending_;  // directory operations since the last SyncDir
  std::set<std::string> locks_;
  std::uint64_t epoch_ = 0;
  bool lie_fsync_ = false;
  bool lie_syncdir_ = false;
};

constexpr std::uint64_t kNoCut = ~std::uint64_t{0};

// ---------------------------------------------------------------------------
// The model: what clients were told. Counters plus idempotency records,
// changed only by the writes of acknowledged records. The decisions come
// from service::MutationRules applied to the model (the reference), and the
// store's answers must equal them.
// ---------------------------------------------------------------------------

std::int64_t Millis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             t.time_since_epoch())
      .count();
}

const std::vector<std::string>& CounterNames() {
  static const std::vector<std::string> names = {"a", "b", "c", "user:1",
                                                 "user:2"};
  return names;
}

// The idempotency keys the workload uses: three keys, each under two
// scopes ("" and an authenticated caller), so that the same key in two
// scopes must never meet. Each intent always comes with one request (a
// retry), or now and then with another one (refused, kAlreadyExists).
constexpr int kIntents = 6;
domain::IdempotencyIntent Intent(int i) {
  return domain::IdempotencyIntent{
      i % 2 == 0 ? "" : "tenant-1",
      *domain::IdempotencyKey::Parse("key-" + std::to_string(i / 2))};
}
domain::Transaction IntentRequest(int i) {
  domain::Transaction tx = testing::Add(
      CounterNames()[static_cast<std::size_t>(i) % CounterNames().size()],
      i + 1);
  tx.idempotency = Intent(i);
  return tx;
}
std::string IntentId(const std::string& scope, const std::string& key) {
  return scope + "/" + key;
}

struct Model {
  std::map<std::string, domain::Counter> counters;
  std::map<std::string, domain::IdempotencyRecord> idempotency;  // IntentId

  // A reference decision of |txs| as one group commit at |now_ms|: each
  // outcome, and the model after it (the writes applied).
  std::vector<domain::TransactionOutcome> Decide(
      const std::vector<domain::Transaction>& txs, std::int64_t now_ms,
      Model& after) const {
    service::WorkingSet ws;
    std::vector<domain::TransactionOutcome> outcomes;
    for (const domain::Transaction& tx : txs) {
      for (const std::string& name : ws.MissingCounters(tx)) {
        const auto it = counters.find(name);
        ws.SeedCounter(name, it == counters.end() ? std::nullopt
                                                  : std::optional(it->second));
      }
      if (ws.NeedsIdempotency(tx)) {
        const auto it = idempotency.find(
            IntentId(tx.idempotency->scope, tx.idempotency->key.str()));
        ws.SeedIdempotency(
            *tx.idempotency,
            it != idempotency.end() &&
                    it->second.created_at_ms + kRetention.count() > now_ms
                ? std::optional(it->second)
                : std::nullopt);
      }
      outcomes.push_back(service::MutationRules::Apply(tx, ws, now_ms));
    }
    after = *this;
    for (const auto& w : ws.CounterWrites()) {
      if (w.row) {
        after.counters[w.name] = *w.row;
      } else {
        after.counters.erase(w.name);
      }
    }
    for (const domain::IdempotencyRecord& r : ws.IdempotencyWrites()) {
      after.idempotency[IntentId(r.scope, r.key)] = r;
    }
    return outcomes;
  }
  bool operator==(const Model&) const = default;
};

// What a client can observe at |now|: live counters, and for each intent
// what a retry of its request is answered when that answer comes from the
// idempotency record (a replay, or a refusal because the key was used for
// another request); nothing once the record is past its retention.
struct Observed {
  std::map<std::string, domain::Counter> counters;
  std::map<std::string, domain::TransactionOutcome> retries;  // IntentId
  bool operator==(const Observed&) const = default;
};

bool FromRecord(const domain::TransactionOutcome& o) {
  return o.replayed || o.status.code() == StatusCode::kAlreadyExists;
}

Observed Expected(const Model& m, std::chrono::system_clock::time_point now) {
  Observed out;
  for (const auto& [name, c] : m.counters) {
    if (!c.ExpiredAt(Millis(now))) out.counters[name] = c;
  }
  for (int i = 0; i < kIntents; ++i) {
    Model ignored;
    const domain::TransactionOutcome o =
        m.Decide({IntentRequest(i)}, Millis(now), ignored)[0];
    if (FromRecord(o)) {
      out.retries[IntentId(Intent(i).scope, Intent(i).key.str())] = o;
    }
  }
  return out;
}

std::string Describe(const Observed& m) {
  std::ostringstream out;
  out << "{";
  for (const auto& [name, c] : m.counters) {
    out << name << "=" << c.value << "@v" << c.version;
    if (c.expires_at_ms != 0) out << "~" << c.expires_at_ms;
    out << " ";
  }
  for (const auto& [id, o] : m.retries) {
    out << id << "->" << o.status.ToString();
    if (!o.results.empty() && o.results[0].counter) {
      out << ":" << o.results[0].counter->value;
    }
    out << " ";
  }
  out << "}";
  return out.str();
}

std::map<std::string, domain::Counter> LiveCounters(FileRepository& repo) {
  std::map<std::string, domain::Counter> out;
  for (const auto& c : testing::List(repo)) out[c.name] = c;
  return out;
}

// ---------------------------------------------------------------------------
// The workload.
// ---------------------------------------------------------------------------

struct WorkloadResult {
  Model acked;
  // acked plus the record whose fdatasync never returned, if one was
  // being written when the power went: it may come back, whole or not at
  // all.
  std::optional<Model> with_in_flight;
  bool refused = false;   // a write or compaction was refused
  std::string violation;  // a read or an answer the reference disagrees with
  std::uint64_t batches = 0;
  std::uint64_t compaction_steps = 0;
};

// A random transaction: an increment or decrement (now and then with a
// ttl that starts a window, or bounds), a set with a ttl, a delete, a
// retry under an idempotency key, the same key with another request, or a
// batch of two of them.
domain::Transaction RandomTransaction(std::mt19937_64& rng) {
  const auto& names = CounterNames();
  const std::string& name = names[rng() % names.size()];
  const auto kind = rng() % 14;
  if (kind == 0) return testing::Delete(name);
  if (kind < 4) return IntentRequest(static_cast<int>(rng() % kIntents));
  if (kind == 4) {
    // An intent's key with another request: kAlreadyExists if recorded.
    domain::Transaction tx = testing::Add(name, 1000);
    tx.idempotency = Intent(static_cast<int>(rng() % kIntents));
    return tx;
  }
  if (kind == 5) {
    domain::Operation set = testing::SetOp(name, static_cast<int>(rng() % 50));
    set.ttl_seconds = 1 + static_cast<std::uint32_t>(rng() % 2);
    return domain::SingleOperation(set);
  }
  if (kind == 6) {
    domain::Operation add = testing::AddOp(name, 1);
    add.ttl_seconds = 1;
    add.max = 3;  // a rate limit: kLimitExceeded past 3 in the window
    return domain::SingleOperation(add);
  }
  if (kind == 7) {
    return testing::Batch({testing::AddOp(name, 1),
                           testing::SubOp(names[rng() % names.size()], 2)});
  }
  return testing::Add(name, static_cast<std::int64_t>(rng() % 200) - 60);
}

// Runs |ops| seeded operations from |start| until the store refuses one.
// The choice of operations depends only on |seed|, so runs with different
// power cuts are identical up to the cut.
WorkloadResult RunWorkload(FileRepository& repo, ManualClock& clock,
                           std::uint64_t seed, int ops, Model start,
                           std::uint64_t max_batch = 4) {
  std::mt19937_64 rng(seed);
  WorkloadResult out;
  out.acked = std::move(start);
  for (int i = 0; i < ops; ++i) {
    const auto pick = rng() % 20;
    if (pick < 2) {
      ++out.compaction_steps;
      if (!repo.CompactNow().ok()) {
        out.refused = true;
        return out;
      }
      continue;
    }
    if (pick == 2) {
      clock.Advance(std::chrono::milliseconds(rng() % 1500));
      continue;
    }
    if (pick == 3) {
      repo.RunDutiesNow();  // sweeps expired counters: no record
      continue;
    }
    // A group of 1..max_batch transactions, committed as one record.
    const auto group = 1 + rng() % max_batch;
    std::vector<domain::Transaction> txs;
    for (std::uint64_t j = 0; j < group; ++j) {
      txs.push_back(RandomTransaction(rng));
    }
    Model after;
    const std::vector<domain::TransactionOutcome> expected =
        out.acked.Decide(txs, Millis(clock.Now()), after);
    std::deque<testing::OutcomeCapture> done(txs.size());
    for (std::size_t j = 0; j < txs.size(); ++j) repo.Commit(txs[j], done[j]);
    repo.CommitPendingBatch();
    const bool refused = std::any_of(done.begin(), done.end(), [](auto& d) {
      return !d.done() ||
             d.result().status.code() == StatusCode::kUnavailable ||
             d.result().status.code() == StatusCode::kResourceExhausted;
    });
    if (refused) {
      out.refused = true;
      if (!(after == out.acked)) out.with_in_flight = std::move(after);
      return out;
    }
    for (std::size_t j = 0; j < txs.size(); ++j) {
      if (!(done[j].result() == expected[j]) && out.violation.empty()) {
        std::ostringstream what;
        what << "batch " << out.batches + 1 << " transaction " << j
             << " was answered ";
        domain::PrintTo(done[j].result(), &what);
        what << " but the rules say ";
        domain::PrintTo(expected[j], &what);
        out.violation = what.str();
      }
    }
    ++out.batches;
    out.acked = std::move(after);
    // Invariant 2: what readers see is exactly what was acknowledged.
    if (out.violation.empty()) {
      const auto seen = LiveCounters(repo);
      const Observed expected_now = Expected(out.acked, clock.Now());
      if (seen != expected_now.counters) {
        out.violation = "after batch " + std::to_string(out.batches) +
                        " a reader saw " + Describe(Observed{seen, {}}) +
                        " but the acknowledged state is " +
                        Describe(Observed{expected_now.counters, {}});
      }
    }
  }
  return out;
}

FileRepositoryOptions Options(bool split_compaction) {
  FileRepositoryOptions options = testing::ManualOptions(std::string(kDataDir));
  options.idempotency_retention = kRetention;
  options.split_compaction_for_test = split_compaction;
  return options;
}

ManualClock StartClock() {
  return ManualClock(std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1'763'683'200'000)));
}

// What a client of the recovered |fs| observes: the live counters, and
// what a retry of each intent replays. The retries run on a copy of the
// file system (a retry that is not a replay would be a new write).
Result<Observed> ObserveRecovered(PowerLossFileSystem& fs, ManualClock& clock,
                                  bool split, bool* torn) {
  Observed out;
  {
    auto repo = FileRepository::Open(fs, clock, Options(split));
    if (!repo) return repo.error();
    if (torn != nullptr) *torn = (*repo)->Recovery().torn_bytes_truncated > 0;
    out.counters = LiveCounters(**repo);
  }
  auto copy = fs.Clone();
  auto repo = FileRepository::Open(*copy, clock, Options(split));
  if (!repo) return repo.error();
  for (int i = 0; i < kIntents; ++i) {
    const domain::TransactionOutcome o =
        testing::Commit(**repo, IntentRequest(i));
    if (FromRecord(o)) {
      out.retries[IntentId(Intent(i).scope, Intent(i).key.str())] = o;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// One crash scenario and its checks. Every check returns the first problem
// found, or "" (the negative controls expect problems).
// ---------------------------------------------------------------------------

struct Tally {
  std::uint64_t crash_points = 0;
  std::uint64_t recovery_cuts = 0;
  std::uint64_t in_flight_planned = 0;
  std::uint64_t in_flight_recovered = 0;
  std::uint64_t torn_tails_cut = 0;
  std::uint64_t dir_ops_dropped = 0;
  std::uint64_t dir_ops_kept = 0;
  std::uint64_t renames_kept = 0;
  std::uint64_t unsynced_bytes_kept = 0;
  std::uint64_t steps_total = 0;

  void Add(const CrashReport& r) {
    dir_ops_dropped += r.dir_ops_pending - r.dir_ops_kept;
    dir_ops_kept += r.dir_ops_kept;
    renames_kept += r.renames_kept;
    unsynced_bytes_kept += r.unsynced_bytes_kept;
  }
};

// Opens |fs| with no power cut and checks that a client observes |acked|
// (or |with_in_flight|). Returns through |shown| the model it matched.
std::string CheckRecovery(PowerLossFileSystem& fs, ManualClock& clock,
                          bool split, const WorkloadResult& run, Model* shown,
                          Tally& tally) {
  bool torn = false;
  auto seen = ObserveRecovered(fs, clock, split, &torn);
  if (!seen) return "recovery refused to start: " + seen.error().ToString();
  if (torn) ++tally.torn_tails_cut;
  const Observed acked = Expected(run.acked, clock.Now());
  if (*seen == acked) {
    if (shown != nullptr) *shown = run.acked;
    return "";
  }
  if (run.with_in_flight &&
      *seen == Expected(*run.with_in_flight, clock.Now())) {
    ++tally.in_flight_recovered;
    if (shown != nullptr) *shown = *run.with_in_flight;
    return "";
  }
  std::string what =
      "recovered " + Describe(*seen) + " but acknowledged " + Describe(acked);
  if (run.with_in_flight) {
    what += " (or with the in-flight record " +
            Describe(Expected(*run.with_in_flight, clock.Now())) + ")";
  }
  return what;
}

struct ScenarioOptions {
  CrashModel model = CrashModel::kStrict;
  bool split_compaction = true;
  int ops = 120;
  int ops_after_recovery = 25;
  std::uint64_t max_batch = 4;  // mutations per record
  bool cut_recovery = true;
  bool lie_fsync = false;
  bool lie_syncdir = false;
};

std::string ModelName(CrashModel m) {
  switch (m) {
    case CrashModel::kStrict:
      return "strict";
    case CrashModel::kAdversarial:
      return "adversarial";
    case CrashModel::kAdversarialWithHoles:
      return "adversarial-with-holes";
  }
  return "?";
}

// The power fails after |cut| file-system steps of a seeded run. Checks
// the recovery, a recovery itself cut at each of its steps, and a second
// workload (and crash) after recovery. Returns the first problem found.
std::string RunCrashPoint(std::uint64_t seed, std::uint64_t cut,
                          const ScenarioOptions& opt, Tally& tally,
                          std::uint64_t* steps_used = nullptr) {
  std::mt19937_64 crash_rng(seed * 1'000'003 + cut);
  PowerLossFileSystem fs;
  if (opt.lie_fsync) fs.LieAboutFsync();
  if (opt.lie_syncdir) fs.LieAboutDirSync();
  ManualClock clock = StartClock();
  WorkloadResult run;
  {
    PowerCut power(fs, cut);
    auto store =
        FileRepository::Open(power, clock, Options(opt.split_compaction));
    if (store) {
      run = RunWorkload(**store, clock, seed, opt.ops, Model{}, opt.max_batch);
    }
    if (steps_used != nullptr) *steps_used = power.steps();
  }
  if (!run.violation.empty()) return run.violation;
  if (run.with_in_flight) ++tally.in_flight_planned;
  tally.Add(fs.Crash(opt.model, crash_rng));
  ++tally.crash_points;

  // Recovery cut short at each of its own steps, then a full recovery.
  if (opt.cut_recovery) {
    std::uint64_t recovery_steps = 0;
    {
      auto probe = fs.Clone();
      PowerCut power(*probe, kNoCut);
      auto store =
          FileRepository::Open(power, clock, Options(opt.split_compaction));
      recovery_steps = power.steps();
    }
    for (std::uint64_t j = 0; j < recovery_steps; ++j) {
      auto copy = fs.Clone();
      {
        PowerCut power(*copy, j);
        auto store =
            FileRepository::Open(power, clock, Options(opt.split_compaction));
      }
      tally.Add(copy->Crash(opt.model, crash_rng));
      ++tally.recovery_cuts;
      if (std::string p = CheckRecovery(*copy, clock, opt.split_compaction, run,
                                        nullptr, tally);
          !p.empty()) {
        return "after a second power loss " + std::to_string(j) +
               " steps into recovery: " + p;
      }
    }
  }

  Model recovered;
  if (std::string p = CheckRecovery(fs, clock, opt.split_compaction, run,
                                    &recovered, tally);
      !p.empty()) {
    return p;
  }

  // Life goes on: a second workload on the recovered store must be as
  // durable as the first (a torn tail cut, a half-made compaction or a
  // missing journal entry must not swallow later records).
  WorkloadResult after;
  {
    auto store = FileRepository::Open(fs, clock, Options(opt.split_compaction));
    if (!store) return "second open failed: " + store.error().ToString();
    after = RunWorkload(**store, clock, seed ^ 0x5eed, opt.ops_after_recovery,
                        recovered);
  }
  if (!after.violation.empty()) return "after recovery: " + after.violation;
  if (after.refused) return "after recovery: a write was refused";
  tally.Add(fs.Crash(opt.model, crash_rng));
  if (std::string p =
          CheckRecovery(fs, clock, opt.split_compaction, after, nullptr, tally);
      !p.empty()) {
    return "after recovery, a second workload and a second power loss: " + p;
  }
  return "";
}

// Every crash point of |seeds| seeded runs; returns the first problem.
std::string RunSeeds(std::uint64_t first_seed, std::uint64_t seeds,
                     const ScenarioOptions& opt, Tally& tally) {
  const testing::QuietLogs quiet;
  for (std::uint64_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    // Alternate the compaction style: split (commits between rotation and
    // snapshot) and all at once.
    ScenarioOptions o = opt;
    o.split_compaction = opt.split_compaction && seed % 2 == 1;
    std::uint64_t total = 0;
    if (std::string p = RunCrashPoint(seed, kNoCut, o, tally, &total);
        !p.empty()) {
      return "seed " + std::to_string(seed) + ", " + ModelName(o.model) +
             ", no power cut: " + p;
    }
    tally.steps_total += total;
    for (std::uint64_t cut = 0; cut <= total; ++cut) {
      if (std::string p = RunCrashPoint(seed, cut, o, tally); !p.empty()) {
        return "seed " + std::to_string(seed) + ", " + ModelName(o.model) +
               " crash model, " + (o.split_compaction ? "split" : "whole") +
               " compaction, power lost after " + std::to_string(cut) + " of " +
               std::to_string(total) + " file-system steps: " + p;
      }
    }
  }
  return "";
}

// Sanitizer builds run everything 5-15 times slower: fewer seeds by
// default there, so the suite stays within seconds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

std::uint64_t SeedCount(std::uint64_t fallback) {
  const char* env = std::getenv("COUNTERD_POWER_LOSS_SEEDS");
  if (env == nullptr || *env == '\0') {
    return kSanitized ? 1 : fallback;
  }
  return std::strtoull(env, nullptr, 10);
}

void Report(const char* name, std::uint64_t seeds, const Tally& t) {
  std::cout << "[ power-loss ] " << name << ": " << seeds << " seeds, "
            << t.steps_total << " file-system steps, " << t.crash_points
            << " crash points, " << t.recovery_cuts
            << " recoveries cut short; in-flight records planned "
            << t.in_flight_planned << ", recovered " << t.in_flight_recovered
            << "; torn tails cut " << t.torn_tails_cut
            << "; unsynced dir ops dropped " << t.dir_ops_dropped << ", kept "
            << t.dir_ops_kept << " (renames kept " << t.renames_kept
            << "); unsynced bytes kept " << t.unsynced_bytes_kept << std::endl;
}

// ---------------------------------------------------------------------------
// The simulator itself.
// ---------------------------------------------------------------------------

TEST(PowerLossFileSystemTest, StrictCrashDropsEverythingNotSynced) {
  PowerLossFileSystem fs;
  std::mt19937_64 rng(1);
  {
    auto f = fs.NewWritableFile("/data/a");
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->Append("synced").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Append("+unsynced").ok());
  }
  fs.Crash(CrashModel::kStrict, rng);
  EXPECT_FALSE(*fs.FileExists("/data/a")) << "its entry was never dir-synced";

  {
    auto f = fs.NewWritableFile("/data/a");
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->Append("synced").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE(fs.SyncDir("/data").ok());
    ASSERT_TRUE((*f)->Append("+unsynced").ok());
    ASSERT_TRUE(fs.Rename("/data/a", "/data/b").ok());
  }
  fs.Crash(CrashModel::kStrict, rng);
  EXPECT_EQ(fs.Contents("/data/a"), "synced");
  EXPECT_FALSE(*fs.FileExists("/data/b"));
}

TEST(PowerLossFileSystemTest, AdversarialCrashKeepsAnySubsetOfUnsyncedWork) {
  // Over many crashes each unsynced rename and each unsynced byte is seen
  // both kept and dropped; synced data always survives.
  std::set<std::string> outcomes;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    PowerLossFileSystem fs;
    std::mt19937_64 rng(seed);
    fs.SetContents("/data/old", "old");
    {
      auto f = fs.NewWritableFile("/data/tmp");
      ASSERT_TRUE(f);
      ASSERT_TRUE((*f)->Append("new").ok());
      ASSERT_TRUE((*f)->Sync().ok());
      ASSERT_TRUE((*f)->Append("er").ok());
    }
    ASSERT_TRUE(fs.Rename("/data/tmp", "/data/old").ok());
    fs.Crash(CrashModel::kAdversarial, rng);
    const std::string old = fs.Contents("/data/old");
    ASSERT_TRUE(old == "old" || old.starts_with("new")) << old;
    outcomes.insert(old + (*fs.FileExists("/data/tmp") ? "+tmp" : ""));
  }
  EXPECT_TRUE(outcomes.count("old")) << "rename and creation both dropped";
  EXPECT_TRUE(outcomes.count("newer")) << "rename and every byte kept";
  EXPECT_TRUE(outcomes.count("new")) << "rename kept, unsynced bytes not";
  EXPECT_TRUE(outcomes.count("old+tmp")) << "creation kept, rename not";
}

// ---------------------------------------------------------------------------
// The power-loss tests.
// ---------------------------------------------------------------------------

TEST(PowerLossTest, StrictCrashAtEveryStepRecoversExactlyTheAckedState) {
  ScenarioOptions opt;
  opt.model = CrashModel::kStrict;
  Tally tally;
  const std::uint64_t seeds = SeedCount(8);
  const std::string problem = RunSeeds(1, seeds, opt, tally);
  Report("strict", seeds, tally);
  ASSERT_EQ(problem, "");
  EXPECT_GT(tally.in_flight_planned, 0u);
  EXPECT_EQ(tally.in_flight_recovered, 0u)
      << "strict: an unsynced record can never come back";
  EXPECT_GT(tally.recovery_cuts, 0u);
}

TEST(PowerLossTest,
     AdversarialCrashAtEveryStepKeepsAckedAndShowsNothingUnseen) {
  ScenarioOptions opt;
  opt.model = CrashModel::kAdversarial;
  Tally tally;
  const std::uint64_t seeds = SeedCount(8);
  const std::string problem = RunSeeds(101, seeds, opt, tally);
  Report("adversarial", seeds, tally);
  ASSERT_EQ(problem, "");
  // The model must have exercised what it is there for.
  EXPECT_GT(tally.in_flight_recovered, 0u) << "no unsynced record came back";
  EXPECT_GT(tally.torn_tails_cut, 0u) << "no torn tail was ever cut";
  EXPECT_GT(tally.renames_kept, 0u) << "no unsynced rename survived";
  EXPECT_GT(tally.dir_ops_dropped, 0u);
}

// A power loss during the write-back of a record that was never
// acknowledged can leave zeros in the middle of it. When the zeros hit the
// record's length field, the reader sees a shorter record with a bad
// checksum followed by non-zero bytes. No intact next record follows, so it
// is a torn tail and is cut (docs/storage-format.md): start-up goes on.
TEST(PowerLossTest, AdversarialCrashWithHolesInUnsyncedDataStillStarts) {
  ScenarioOptions opt;
  opt.model = CrashModel::kAdversarialWithHoles;
  opt.max_batch = 16;  // records of more than 256 bytes
  Tally tally;
  const std::uint64_t seeds = SeedCount(8);
  const std::string problem = RunSeeds(201, seeds, opt, tally);
  Report("adversarial-with-holes", seeds, tally);
  ASSERT_EQ(problem, "");
}

// Negative controls: the same checks catch a file system (or a storage
// engine) that does not really fsync.
TEST(PowerLossTest, CatchesAFileSystemThatSkipsFsync) {
  ScenarioOptions opt;
  opt.lie_fsync = true;
  opt.cut_recovery = false;
  Tally tally;
  EXPECT_NE(RunSeeds(1, 1, opt, tally), "");
}

TEST(PowerLossTest, CatchesAFileSystemThatSkipsDirectoryFsync) {
  ScenarioOptions opt;
  opt.lie_syncdir = true;
  opt.cut_recovery = false;
  Tally tally;
  EXPECT_NE(RunSeeds(1, 1, opt, tally), "");
}

}  // namespace
}  // namespace counterd::storage
