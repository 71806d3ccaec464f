// counterd's composition root: parses the command line, picks the concrete
// implementations (POSIX files, the system clock, the durable store) and
// hands them to the application. The only file that names concrete types.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "counterd/app/config.h"
#include "counterd/app/logging.h"
#include "counterd/app/serve.h"
#include "counterd/app/shutdown_signals.h"
#include "counterd/app/token_file.h"
#include "counterd/core/clock.h"
#include "counterd/core/log.h"
#include "counterd/http/auth.h"
#include "counterd/platform/fault_injection_file_system.h"
#include "counterd/platform/posix_file_system.h"
#include "counterd/storage/file_repository.h"
#if COUNTERD_WITH_POSTGRES
#include "counterd/storage/postgres_repository.h"
#endif

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

// counterd check --snapshot FILE: decodes the document whole.
int RunCheckSnapshot(const std::string& file) {
  const auto fs = counterd::platform::NewPosixFileSystem();
  auto document = fs->ReadFile(file);
  if (!document) {
    (void)std::fprintf(stderr, "counterd check: %s: %s\n", file.c_str(),
                       document.error().ToString().c_str());
    return kExitFailure;
  }
  const auto summary =
      counterd::storage::FileRepository::VerifySnapshot(*document, file);
  if (!summary) {
    (void)std::fprintf(stderr, "counterd check: %s: NOT SOUND: %s\n",
                       file.c_str(), summary.error().ToString().c_str());
    return kExitFailure;
  }
  std::printf(
      "counterd check: snapshot %s is sound: format %d, seq %llu, %llu "
      "counters, %llu idempotency records, %zu bytes\n",
      file.c_str(), summary->format,
      static_cast<unsigned long long>(summary->seq),
      static_cast<unsigned long long>(summary->counters),
      static_cast<unsigned long long>(summary->idempotency_records),
      document->size());
  return 0;
}

// counterd check: the recovery rules, read-only, with a report a person or
// an init container can act on.
int RunCheck(const std::string& data_dir) {
  const auto fs = counterd::platform::NewPosixFileSystem();
  const auto info = counterd::storage::FileRepository::Verify(*fs, data_dir);
  if (!info) {
    (void)std::fprintf(stderr, "counterd check: %s: NOT SOUND: %s\n",
                       data_dir.c_str(), info.error().ToString().c_str());
    return kExitFailure;
  }
  std::printf(
      "counterd check: %s is sound: %llu counters, snapshot at seq %llu, "
      "%llu journal records after it\n",
      data_dir.c_str(), static_cast<unsigned long long>(info->counters),
      static_cast<unsigned long long>(info->snapshot_seq),
      static_cast<unsigned long long>(info->records_replayed));
  if (info->snapshot_format == 1 || info->journal_format == 1) {
    std::printf(
        "counterd check: note: written in storage format 1 (counterd 0.1); "
        "counterd upgrades it to format 2 at start-up and first "
        "compaction\n");
  }
  if (info->torn_bytes_truncated > 0) {
    std::printf(
        "counterd check: note: the last journal ends in a torn tail of %llu "
        "bytes (zeros written ahead of its records, or an append a crash "
        "interrupted, never acknowledged); start-up cuts it\n",
        static_cast<unsigned long long>(info->torn_bytes_truncated));
  }
  return 0;
}

// counterd hash-token: the token on stdin, the line for the tokens file on
// stdout. Reads at most 64 KiB: a token is at most 4 KiB.
int RunHashToken() {
  std::string input;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), stdin)) > 0) {
    input.append(buf.data(), n);
    if (input.size() > std::size_t{64} * 1024) break;
  }
  if (std::ferror(stdin) != 0) {
    (void)std::fprintf(stderr,
                       "counterd hash-token: cannot read standard input\n");
    return kExitUsage;
  }
  const auto hex = counterd::http::HashTokenInput(input);
  if (!hex) {
    (void)std::fprintf(stderr, "counterd hash-token: %s\n",
                       hex.error().message().c_str());
    return kExitUsage;
  }
  std::printf("%s\n", hex->c_str());
  return 0;
}

#if COUNTERD_WITH_POSTGRES
counterd::storage::PostgresOptions PostgresOptionsFrom(
    const counterd::app::Config& config) {
  counterd::storage::PostgresOptions options;
  options.url = config.postgres_url;
  options.pool_size = config.postgres_pool_size;
  options.idempotency_retention =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          config.idempotency_retention);
  return options;
}

// counterd migrate: the schema migrations, then exit.
int RunMigrate(const counterd::app::Config& config) {
  const auto migrated = counterd::storage::MigratePostgres(
      config.postgres_url, std::chrono::seconds(60));
  if (!migrated) {
    (void)std::fprintf(stderr, "counterd migrate: %s\n",
                       migrated.error().ToString().c_str());
    return kExitFailure;
  }
  if (migrated->from_version == migrated->to_version) {
    std::printf("counterd migrate: the schema is current (version %d)\n",
                migrated->to_version);
  } else {
    std::printf("counterd migrate: schema migrated from version %d to %d\n",
                migrated->from_version, migrated->to_version);
  }
  return 0;
}
#else
int RunMigrate(const counterd::app::Config&) {
  (void)std::fprintf(stderr,
                     "counterd migrate: this counterd was built without the "
                     "postgres backend\n");
  return kExitUsage;
}
#endif

// counterd restore: the snapshot is read whole (it is decoded whole to be
// verified before anything is written).
int RunRestore(const counterd::app::Invocation& invocation) {
  const counterd::app::Config& config = invocation.config;
  const std::string& from = invocation.snapshot_file;
  const auto fs = counterd::platform::NewPosixFileSystem();
  auto document = fs->ReadFile(from);
  if (!document) {
    (void)std::fprintf(stderr, "counterd restore: %s: %s\n", from.c_str(),
                       document.error().ToString().c_str());
    return kExitFailure;
  }
  counterd::Result<counterd::storage::SnapshotSummary> restored =
      counterd::Status::Internal("no backend");
  std::string target;
  if (config.backend == counterd::app::Backend::kPostgres) {
#if COUNTERD_WITH_POSTGRES
    target = "the postgres database";
    auto contents =
        counterd::storage::FileRepository::ReadSnapshot(*document, from);
    if (!contents) {
      restored = contents.error();
    } else {
      restored = counterd::storage::RestorePostgres(config.postgres_url,
                                                    *contents, invocation.force,
                                                    std::chrono::seconds(60));
    }
#else
    (void)std::fprintf(stderr,
                       "counterd restore: this counterd was built without the "
                       "postgres backend\n");
    return kExitUsage;
#endif
  } else {
    target = config.data_dir;
    restored = counterd::storage::FileRepository::Restore(
        *fs, *document, from, config.data_dir, invocation.force);
  }
  if (!restored) {
    (void)std::fprintf(stderr, "counterd restore: %s\n",
                       restored.error().ToString().c_str());
    // A store already there is a usage matter (--force), like a bad flag.
    return restored.error().code() == counterd::StatusCode::kAlreadyExists
               ? kExitUsage
               : kExitFailure;
  }
  std::printf(
      "counterd restore: restored %s from %s: seq %llu, %llu counters, %llu "
      "idempotency records\n",
      target.c_str(), from.c_str(),
      static_cast<unsigned long long>(restored->seq),
      static_cast<unsigned long long>(restored->counters),
      static_cast<unsigned long long>(restored->idempotency_records));
  return 0;
}

// The file system the store uses: POSIX, or, when COUNTERD_TEST_FAULTS is
// set (end-to-end fault tests only), POSIX behind injected failures.
struct FileSystems {
  std::unique_ptr<counterd::platform::FileSystem> posix;
  std::unique_ptr<counterd::platform::FaultInjectionFileSystem> faulty;
  counterd::platform::FileSystem& active() const {
    return faulty ? *faulty : *posix;
  }
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
  counterd::log::Warn(
      "COUNTERD_TEST_FAULTS is set: file-system failures are INJECTED (for "
      "fault tests only; never set this in production)",
      {{"faults", spec}});
  return fs;
}

}  // namespace

// An exception escaping main is a bug: std::terminate aborts with a core
// dump, which is the report we want (there is no state left to save).
// NOLINTNEXTLINE(bugprone-exception-escape)
int main(int argc, char** argv, char** envp) {
  using counterd::app::Command;
  const auto invocation = counterd::app::ParseCommandLine(
      std::span<const char* const>(argv, static_cast<std::size_t>(argc)),
      Environment(envp));
  if (!invocation) {
    (void)std::fprintf(stderr, "counterd: %s\n",
                       invocation.error().message().c_str());
    return kExitUsage;
  }
  const counterd::app::Config& config = invocation->config;
  switch (invocation->command) {
    case Command::kHelp:
    case Command::kVersion:
      (void)std::fputs(invocation->text.c_str(), stdout);
      return 0;
    case Command::kHealthcheck:
      return counterd::app::RunHealthcheck(config);
    case Command::kCheck:
      if (!invocation->snapshot_file.empty()) {
        return RunCheckSnapshot(invocation->snapshot_file);
      }
      return RunCheck(config.data_dir);
    case Command::kRestore:
      return RunRestore(*invocation);
    case Command::kHashToken:
      return RunHashToken();
    case Command::kMigrate:
      return RunMigrate(config);
    case Command::kServe:
      break;
  }

  counterd::app::SetUpLogging(config.log_format, config.log_level);
  for (const std::string& name : invocation->ignored_service_links) {
    counterd::log::Debug("ignoring a Kubernetes service link variable",
                         {{"name", name}});
  }
  // Before the store starts its threads, so they inherit the signal mask.
  counterd::app::ShutdownSignals signals;

  auto fs = MakeFileSystems();
  if (!fs) {
    (void)std::fprintf(stderr, "counterd: %s\n", fs.error().message().c_str());
    return kExitUsage;
  }
  // An unusable tokens file is a configuration error, found before the
  // store opens: one line naming the file and the entry, exit code 2.
  std::optional<counterd::app::TokenFile> tokens;
  if (!config.auth_tokens_file.empty()) {
    auto loaded =
        counterd::app::TokenFile::Load(*fs->posix, config.auth_tokens_file);
    if (!loaded) {
      (void)std::fprintf(stderr, "counterd: %s\n",
                         loaded.error().message().c_str());
      return kExitUsage;
    }
    tokens = std::move(*loaded);
  }
  counterd::app::TokenFile* const token_file = tokens ? &*tokens : nullptr;

  if (config.backend == counterd::app::Backend::kPostgres) {
#if COUNTERD_WITH_POSTGRES
    const auto started = std::chrono::steady_clock::now();
    auto repository =
        counterd::storage::OpenPostgresRepository(PostgresOptionsFrom(config));
    if (!repository) {
      counterd::log::Error("cannot open the postgres backend",
                           {{"error", repository.error().ToString()}});
      return kExitFailure;
    }
    return counterd::app::Serve(
        config, **repository,
        counterd::app::StartupReport{
            (*repository)->Stats().counters,
            std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started)},
        signals, token_file);
#else
    (void)std::fprintf(stderr,
                       "counterd: this counterd was built without the postgres "
                       "backend (COUNTERD_WITH_POSTGRES=OFF)\n");
    return kExitUsage;
#endif
  }

  const counterd::SystemClock clock;
  auto repository = counterd::storage::FileRepository::Open(
      fs->active(), clock, counterd::app::FileRepositoryOptionsFrom(config));
  if (!repository) {
    counterd::log::Error("cannot open the store",
                         {{"error", repository.error().ToString()}});
    return kExitFailure;
  }
  const counterd::storage::RecoveryInfo& recovery = (*repository)->Recovery();
  return counterd::app::Serve(
      config, **repository,
      counterd::app::StartupReport{recovery.counters, recovery.duration},
      signals, token_file);
}
