// libFuzzer target: recovery of a whole data dir (snapshot + journal files,
// version 1 or 2, + stale temp files) on the in-memory file system. The
// input is a list of files, each "<name>\n<contents>", separated by the
// line "@@@@"; a file named "state.json+" becomes state.json with the right
// checksum line appended, so the fuzzer gets past the checksum. The
// oracles, beyond "no crash, no sanitizer report":
//  - `counterd check` (Verify) accepts exactly the dirs that start-up
//    (FileRepository::Open) accepts, and every refusal names a file and a
//    byte offset;
//  - what recovery shows is the snapshot plus every journal record after
//    it, applied in seq order by a model independent of the repository;
//  - any prefix of the newest journal file (where a crash can cut) is
//    accepted too, and shows the snapshot plus the records of that prefix:
//    a prefix of the states;
//  - recovery is idempotent: after one, the dir checks clean (no torn tail
//    left) and a second start-up shows the same;
//  - a compaction changes nothing a client sees: counters and idempotency
//    records are the same read back from the version-2 snapshot it writes,
//    and no version-1 journal is left;
//  - life goes on: a write acknowledged after recovery goes to a version-2
//    journal and survives a power loss, with everything recovered before.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "counterd/core/clock.h"
#include "counterd/core/crc32c.h"
#include "counterd/storage/file_repository.h"
#include "journal.h"
#include "journal_format.h"
#include "journal_reader.h"
#include "recovery.h"
#include "snapshot_codec.h"
#include "support/mem_file_system.h"

namespace {

using counterd::ManualClock;
using counterd::Result;
using counterd::Status;
using counterd::domain::Counter;
using counterd::storage::Effect;
using counterd::storage::FileRepository;
using counterd::storage::FileRepositoryOptions;
using counterd::testing::MemFileSystem;

constexpr std::string_view kDir = "/data";
constexpr std::string_view kSeparator = "\n@@@@\n";
constexpr std::chrono::hours kRetention{24};

void Require(bool condition, const char* what) {
  if (!condition) __builtin_trap();
  (void)what;
}

using Files = std::map<std::string, std::string>;  // name -> contents

Files Parse(std::string_view input) {
  Files files;
  while (!input.empty()) {
    const std::size_t end = input.find(kSeparator);
    std::string_view part = input.substr(0, end);
    input = end == std::string_view::npos
                ? std::string_view()
                : input.substr(end + kSeparator.size());
    const std::size_t nl = part.find('\n');
    std::string name(part.substr(0, nl));
    std::string contents(nl == std::string_view::npos ? std::string_view()
                                                      : part.substr(nl + 1));
    if (name.empty() || name.find('/') != std::string::npos || name == "LOCK" ||
        name == "." || name == "..") {
      continue;
    }
    if (name == "state.json+") {
      name = "state.json";
      char line[32];
      std::snprintf(line, sizeof(line), "\"crc32c\":\"%08x\"}\n",
                    counterd::crc32c::Value(contents));
      contents += line;
    }
    files[name] = std::move(contents);
  }
  return files;
}

void Plant(MemFileSystem& fs, const Files& files) {
  Require(fs.CreateDir(std::string(kDir)).ok(), "mkdir");
  for (const auto& [name, contents] : files) {
    fs.SetContents(std::string(kDir) + "/" + name, contents);
  }
}

FileRepositoryOptions Options() {
  FileRepositoryOptions options;
  options.data_dir = std::string(kDir);
  options.start_committer = false;
  options.idempotency_retention = kRetention;
  return options;
}

class ListCapture final : public counterd::storage::Completion<
                              Result<counterd::storage::CounterList>> {
 public:
  void Complete(Result<counterd::storage::CounterList> result) override {
    result_ = std::move(result);
  }
  std::optional<Result<counterd::storage::CounterList>> result_;
};

class OutcomeCapture final : public counterd::storage::Completion<
                                 counterd::domain::TransactionOutcome> {
 public:
  void Complete(counterd::domain::TransactionOutcome outcome) override {
    outcome_ = std::move(outcome);
  }
  std::optional<counterd::domain::TransactionOutcome> outcome_;
};

std::map<std::string, Counter> Counters(FileRepository& repo) {
  ListCapture done;
  repo.List(counterd::storage::ListRequest{"", "", 1u << 20}, done);
  Require(done.result_ && done.result_->has_value(), "List failed");
  std::map<std::string, Counter> out;
  for (const Counter& c : (*done.result_)->counters) out[c.name] = c;
  return out;
}

// What a client can see, by the model: live counters and the idempotency
// records still retained, keyed by (scope, key).
struct Visible {
  std::map<std::string, Counter> counters;
  std::map<std::pair<std::string, std::string>,
           counterd::domain::IdempotencyRecord>
      idempotency;
  bool operator==(const Visible&) const = default;
};

std::int64_t NowMs(const ManualClock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock.Now().time_since_epoch())
      .count();
}

// The snapshot plus every journal record after it, in seq order, applied
// to a plain map: the model recovery must agree with. nullopt when the
// model cannot make sense of the dir (recovery must then have refused it).
std::optional<Visible> Model(const Files& files, std::int64_t now_ms) {
  std::map<std::string, Counter> counters;
  std::map<std::pair<std::string, std::string>,
           counterd::domain::IdempotencyRecord>
      idempotency;
  std::uint64_t last_seq = 0;
  if (const auto it = files.find("state.json"); it != files.end()) {
    auto snapshot = counterd::storage::DecodeSnapshot(it->second, "s");
    if (!snapshot) return std::nullopt;
    last_seq = snapshot->last_seq;
    for (const Counter& c : snapshot->counters) counters[c.name] = c;
    for (const auto& r : snapshot->idempotency) {
      idempotency[{r.scope, r.key}] = r;
    }
  }
  std::vector<std::pair<std::uint64_t, std::string>> journals;
  for (const auto& [name, contents] : files) {
    std::uint64_t first = 0;
    if (counterd::storage::ParseJournalFileName(name, first)) {
      journals.emplace_back(first, name);
    }
  }
  std::sort(journals.begin(), journals.end());
  const std::uint64_t snapshot_seq = last_seq;
  for (std::size_t i = 0; i < journals.size(); ++i) {
    // A file the snapshot covers (the next one starts within it) is not
    // read: its records are all in the snapshot.
    if (i + 1 < journals.size() && journals[i + 1].first <= snapshot_seq + 1) {
      continue;
    }
    auto scan = counterd::storage::ReadJournal(
        files.at(journals[i].second), "j", journals[i].first,
        i + 1 == journals.size(),
        [&](std::uint64_t seq, std::vector<Effect>&& effects) -> Status {
          if (seq <= last_seq) return Status::Ok();
          if (seq != last_seq + 1) return Status::DataLoss("gap");
          last_seq = seq;
          for (const Effect& e : effects) {
            if (const auto* put =
                    std::get_if<counterd::storage::PutCounter>(&e)) {
              counters[put->counter.name] = put->counter;
            } else if (const auto* del =
                           std::get_if<counterd::storage::DeleteCounter>(&e)) {
              counters.erase(del->name);
            } else {
              const auto& r =
                  std::get<counterd::storage::PutIdempotency>(e).record;
              idempotency[{r.scope, r.key}] = r;
            }
          }
          return Status::Ok();
        });
    if (!scan) return std::nullopt;
  }
  Visible out;
  for (const auto& [name, c] : counters) {
    if (!c.ExpiredAt(now_ms)) out.counters[name] = c;
  }
  for (const auto& [id, r] : idempotency) {
    if (r.created_at_ms >
        now_ms - std::chrono::milliseconds(kRetention).count()) {
      out.idempotency[id] = r;
    }
  }
  return out;
}

// What recovery holds (read through the backend's own recovery, on a dir
// already recovered once, so it changes nothing).
Visible Recovered(MemFileSystem& fs, const ManualClock& clock) {
  auto recovered = counterd::storage::Recover(fs, std::string(kDir), kRetention,
                                              clock.Now());
  Require(recovered.has_value(), "a recovered dir does not recover again");
  const counterd::storage::SnapshotData data =
      recovered->state.ToSnapshot(recovered->last_seq, NowMs(clock));
  Visible out;
  for (const Counter& c : data.counters) out.counters[c.name] = c;
  for (const auto& r : data.idempotency) out.idempotency[{r.scope, r.key}] = r;
  return out;
}

void RequireNamesFileAndOffset(const Status& s) {
  if (s.code() != counterd::StatusCode::kDataLoss) return;
  Require(s.message().find(std::string(kDir) + "/") != std::string::npos &&
              s.message().find(" at byte offset ") != std::string::npos,
          "damage report does not name file and offset");
}

std::optional<std::string> NewestJournal(const Files& files) {
  std::optional<std::pair<std::uint64_t, std::string>> newest;
  for (const auto& [name, contents] : files) {
    std::uint64_t first = 0;
    if (counterd::storage::ParseJournalFileName(name, first) &&
        (!newest || first > newest->first)) {
      newest.emplace(first, name);
    }
  }
  if (!newest) return std::nullopt;
  return newest->second;
}

// Opens |files|; checks that Verify agrees and that what it shows is the
// model's. Returns whether it was accepted.
bool CheckRecovery(const Files& files, const ManualClock& clock,
                   MemFileSystem& fs) {
  Plant(fs, files);
  auto verdict = FileRepository::Verify(fs, std::string(kDir));
  auto repo = FileRepository::Open(fs, clock, Options());
  Require(verdict.has_value() == repo.has_value(),
          "counterd check and start-up disagree");
  if (!repo) {
    RequireNamesFileAndOffset(repo.error());
    RequireNamesFileAndOffset(verdict.error());
    return false;
  }
  const std::optional<Visible> model = Model(files, NowMs(clock));
  Require(model.has_value(), "recovery accepted what the model cannot read");
  Require(Counters(**repo) == model->counters,
          "recovered counters differ from snapshot + records");
  repo->reset();
  Require(Recovered(fs, clock) == *model,
          "recovered state differs from snapshot + records");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);  // torn-tail warnings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  const Files files =
      Parse(std::string_view(reinterpret_cast<const char*>(bytes), size));
  const ManualClock clock;
  MemFileSystem fs;
  if (!CheckRecovery(files, clock, fs)) return 0;
  const Visible recovered = *Model(files, NowMs(clock));

  // A crash can cut the newest journal anywhere: every prefix is accepted
  // and shows a prefix of the states.
  if (const auto newest = NewestJournal(files)) {
    const std::size_t length = files.at(*newest).size();
    for (const std::size_t cut :
         {length / 2, length > 0 ? length - 1 : 0,
          length > 0 ? static_cast<std::size_t>(bytes[size - 1]) % length
                     : 0}) {
      Files cut_files = files;
      cut_files[*newest].resize(cut);
      MemFileSystem cut_fs;
      Require(CheckRecovery(cut_files, clock, cut_fs),
              "a prefix of the newest journal is refused");
    }
  }

  // Recovery left a clean dir that recovers to the same state.
  auto again = FileRepository::Verify(fs, std::string(kDir));
  Require(again.has_value(), "a recovered dir does not check");
  Require(again->torn_bytes_truncated == 0, "a torn tail is left");
  {
    auto repo = FileRepository::Open(fs, clock, Options());
    Require(repo.has_value(), "a recovered dir does not open");
    Require(Counters(**repo) == recovered.counters, "second start differs");
    if ((*repo)->Stats().last_seq >= (std::uint64_t{1} << 62)) return 0;
    // A compaction rewrites everything in version 2 and changes nothing.
    Require((*repo)->CompactNow().ok(), "compaction failed");
  }
  Require(Recovered(fs, clock) == recovered, "a compaction changed the state");
  const std::string snapshot = fs.Contents(std::string(kDir) + "/state.json");
  Require(snapshot.starts_with("{\"format\":2,"), "snapshot not in format 2");
  auto names = fs.ListDir(std::string(kDir));
  Require(names.has_value(), "list");
  for (const std::string& name : *names) {
    std::uint64_t first = 0;
    if (counterd::storage::ParseJournalFileName(name, first)) {
      Require(fs.Contents(std::string(kDir) + "/" + name)
                  .starts_with(counterd::storage::EncodeJournalHeader(first)),
              "a journal without a version-2 header is left");
    }
  }

  // An acknowledged write after recovery survives a power loss.
  Visible expected = recovered;
  {
    auto repo = FileRepository::Open(fs, clock, Options());
    Require(repo.has_value(), "open after compaction");
    counterd::domain::Operation op;
    op.kind = counterd::domain::OpKind::kAdd;
    op.name = *counterd::domain::CounterName::Parse("fuzz");
    op.operand = 1;
    OutcomeCapture done;
    (*repo)->Commit(counterd::domain::SingleOperation(op), done);
    (*repo)->CommitPendingBatch();
    Require(done.outcome_ && done.outcome_->status.ok(), "write refused");
    expected.counters["fuzz"] = *done.outcome_->results[0].counter;
  }
  fs.SimulateCrash();
  auto after = FileRepository::Open(fs, clock, Options());
  Require(after.has_value(), "open after a power loss");
  Require(Counters(**after) == expected.counters, "acknowledged write lost");
  return 0;
}
