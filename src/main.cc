// counterd's composition root: parses the command line, picks the concrete
// implementations (POSIX files, the system clock, the durable store) and
// hands them to the application. The only file that names concrete types.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include <spdlog/spdlog.h>

#include "counterd/app/config.h"
#include "counterd/app/logging.h"
#include "counterd/app/serve.h"
#include "counterd/app/shutdown_signals.h"
#include "counterd/core/clock.h"
#include "counterd/platform/fault_injection_file_system.h"
#include "counterd/platform/posix_file_system.h"
#include "counterd/storage/counter_store.h"

namespace {

// Exit codes: 0 clean shutdown (or --help/--version), 1 runtime failure
// (store or listener could not start, healthcheck failed), 2 bad usage.
constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

std::span<const char* const> Environment(char** envp) {
  std::size_t n = 0;
  while (envp != nullptr && envp[n] != nullptr) ++n;
  return {envp, n};
}

// counterd check: the recovery rules, read-only, with a report a person or
// an init container can act on.
int RunCheck(const std::string& data_dir) {
  const auto fs = counterd::platform::NewPosixFileSystem();
  const auto info = counterd::storage::CounterStore::Verify(*fs, data_dir);
  if (!info) {
    std::fprintf(stderr, "counterd check: %s: NOT SOUND: %s\n",
                 data_dir.c_str(), info.error().ToString().c_str());
    return kExitFailure;
  }
  std::printf(
      "counterd check: %s is sound: %llu counters, snapshot at seq %llu, "
      "%llu journal records after it\n",
      data_dir.c_str(), static_cast<unsigned long long>(info->counters),
      static_cast<unsigned long long>(info->snapshot_seq),
      static_cast<unsigned long long>(info->records_replayed));
  if (info->torn_bytes_truncated > 0) {
    std::printf(
        "counterd check: note: the last journal ends in a torn record of %llu "
        "bytes (an append a crash interrupted, never acknowledged); start-up "
        "cuts it\n",
        static_cast<unsigned long long>(info->torn_bytes_truncated));
  }
  return 0;
}

// The file system the store uses: POSIX, or, when COUNTERD_TEST_FAULTS is
// set (end-to-end fault tests only), POSIX behind injected failures.
struct FileSystems {
  std::unique_ptr<counterd::platform::FileSystem> posix;
  std::unique_ptr<counterd::platform::FaultInjectionFileSystem> faulty;
  counterd::platform::FileSystem& active() { return faulty ? *faulty : *posix; }
};

counterd::Result<FileSystems> MakeFileSystems() {
  FileSystems fs{counterd::platform::NewPosixFileSystem(), nullptr};
  const char* spec = std::getenv("COUNTERD_TEST_FAULTS");  // NOLINT
  if (spec == nullptr || *spec == '\0') return fs;
  auto rules = counterd::platform::ParseFaultRules(spec);
  if (!rules) return rules.error().WithContext("COUNTERD_TEST_FAULTS");
  fs.faulty =
      std::make_unique<counterd::platform::FaultInjectionFileSystem>(*fs.posix);
  for (auto& rule : *rules) fs.faulty->AddRule(std::move(rule));
  spdlog::warn(
      "COUNTERD_TEST_FAULTS={} is set: file-system failures are INJECTED "
      "(for fault tests only; never set this in production)",
      spec);
  return fs;
}

}  // namespace

int main(int argc, char** argv, char** envp) {
  using counterd::app::Command;
  const auto invocation = counterd::app::ParseCommandLine(
      std::span<const char* const>(argv, static_cast<std::size_t>(argc)),
      Environment(envp));
  if (!invocation) {
    std::fprintf(stderr, "counterd: %s\n",
                 invocation.error().message().c_str());
    return kExitUsage;
  }
  const counterd::app::Config& config = invocation->config;
  switch (invocation->command) {
    case Command::kHelp:
    case Command::kVersion:
      std::fputs(invocation->text.c_str(), stdout);
      return 0;
    case Command::kHealthcheck:
      return counterd::app::RunHealthcheck(config);
    case Command::kCheck:
      return RunCheck(config.data_dir);
    case Command::kServe:
      break;
  }

  counterd::app::SetUpLogging(config.log_format, config.log_level);
  // Before the store starts its threads, so they inherit the signal mask.
  counterd::app::ShutdownSignals signals;

  auto fs = MakeFileSystems();
  if (!fs) {
    std::fprintf(stderr, "counterd: %s\n", fs.error().message().c_str());
    return kExitUsage;
  }
  const counterd::SystemClock clock;
  auto store = counterd::storage::CounterStore::Open(
      fs->active(), clock, counterd::app::StoreOptionsFrom(config));
  if (!store) {
    spdlog::error("cannot open the store: {}", store.error().ToString());
    return kExitFailure;
  }
  return counterd::app::Serve(config, **store, signals);
}
