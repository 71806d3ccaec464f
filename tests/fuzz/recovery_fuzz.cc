// libFuzzer target: recovery of a whole data dir (snapshot + journal files
// + stale temp files) on the in-memory file system. The input is a list of
// files, each "<name>\n<contents>", separated by the line "@@@@"; a file
// named "state.json+" becomes state.json with the right checksum line
// appended, so the fuzzer gets past the checksum. Checked beyond "no crash,
// no sanitizer report":
//  - `counterd check` (VerifyDataDir) accepts exactly the dirs that start-up
//    (CounterStore::Open) accepts, and every refusal names a file and a
//    byte offset;
//  - recovery is idempotent: after one recovery the dir checks clean (no
//    torn tail left) and a second start-up shows the same counters;
//  - life goes on: a write acknowledged after recovery survives a power
//    loss, with everything recovered before it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "counterd/core/clock.h"
#include "counterd/core/crc32c.h"
#include "counterd/storage/counter_store.h"
#include "storage/recovery.h"
#include "support/mem_file_system.h"

namespace {

using counterd::ManualClock;
using counterd::Status;
using counterd::domain::Counter;
using counterd::domain::MutationOutcome;
using counterd::storage::CounterStore;
using counterd::storage::Plan;
using counterd::storage::PutCounter;
using counterd::storage::StateView;
using counterd::storage::StoreOptions;
using counterd::testing::MemFileSystem;

constexpr std::string_view kDir = "/data";
constexpr std::string_view kSeparator = "\n@@@@\n";

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

void Plant(MemFileSystem& fs, std::string_view input) {
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
    fs.SetContents(std::string(kDir) + "/" + name, contents);
  }
}

StoreOptions Options() {
  StoreOptions options;
  options.data_dir = std::string(kDir);
  options.start_committer = false;
  return options;
}

std::map<std::string, Counter> Counters(const CounterStore& store) {
  std::map<std::string, Counter> out;
  for (const Counter& c : store.List("", "", 1u << 20)) out[c.name] = c;
  return out;
}

void RequireNamesFileAndOffset(const Status& s) {
  if (s.code() != counterd::StatusCode::kDataLoss) return;
  Require(s.message().find(std::string(kDir) + "/") != std::string::npos &&
          s.message().find(" at byte offset ") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);  // torn-tail warnings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  MemFileSystem fs;
  Require(fs.CreateDir(std::string(kDir)).ok());
  Plant(fs, input);
  const ManualClock clock;

  auto verdict = counterd::storage::VerifyDataDir(fs, std::string(kDir));
  std::map<std::string, Counter> recovered;
  {
    auto store = CounterStore::Open(fs, clock, Options());
    Require(verdict.has_value() == store.has_value());
    if (!store) {
      RequireNamesFileAndOffset(store.error());
      RequireNamesFileAndOffset(verdict.error());
      return 0;
    }
    recovered = Counters(**store);
  }

  // Recovery left a clean dir that recovers to the same state.
  auto again = counterd::storage::VerifyDataDir(fs, std::string(kDir));
  Require(again.has_value());
  Require(again->torn_bytes_truncated == 0);
  auto store = CounterStore::Open(fs, clock, Options());
  Require(store.has_value());
  Require(Counters(**store) == recovered);
  if ((*store)->Stats().last_seq >= (std::uint64_t{1} << 62)) return 0;

  // An acknowledged write after recovery survives a power loss.
  std::optional<MutationOutcome> outcome;
  (*store)->Submit(
      [](const StateView& view) {
        const auto current = view.FindCounter("fuzz");
        Counter next{"fuzz", (current ? current->value : 0) + 1,
                     current ? current->version + 1 : 1};
        Plan plan;
        plan.effects.emplace_back(PutCounter{next});
        plan.outcome.counter = next;
        return plan;
      },
      [&](MutationOutcome o) { outcome = std::move(o); });
  (*store)->CommitPendingBatch();
  Require(outcome.has_value() && outcome->status.ok());
  recovered["fuzz"] = *outcome->counter;
  store->reset();
  fs.SimulateCrash();
  auto after = CounterStore::Open(fs, clock, Options());
  Require(after.has_value());
  Require(Counters(**after) == recovered);
  return 0;
}
