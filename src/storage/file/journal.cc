#include "journal.h"

#include <charconv>
#include <cstdio>

#include "counterd/core/log.h"
#include "journal_format.h"

namespace counterd::storage {

namespace {
constexpr std::string_view kPrefix = "journal-";
constexpr std::string_view kSuffix = ".log";
constexpr std::size_t kDigits = 20;
}  // namespace

Result<std::unique_ptr<Journal>> Journal::Create(
    platform::FileSystem& fs, const std::string& dir, std::uint64_t first_seq,
    std::chrono::milliseconds slow_sync) {
  const std::string path = dir + "/" + JournalFileName(first_seq);
  auto file = fs.NewWritableFile(path);
  if (!file) return file.error();
  // The header first, synced: a reader must always find it before any
  // record. A crash before the sync leaves an empty or zero-filled file,
  // which recovery recognises as a creation cut short.
  COUNTERD_RETURN_IF_ERROR((*file)->Append(EncodeJournalHeader(first_seq)));
  COUNTERD_RETURN_IF_ERROR((*file)->Sync());
  // The new directory entry must be durable before any record in the file
  // is acknowledged, or a crash could lose the whole file.
  COUNTERD_RETURN_IF_ERROR(fs.SyncDir(dir));
  return std::unique_ptr<Journal>(
      new Journal(path, std::move(*file), slow_sync));
}

Result<std::unique_ptr<Journal>> Journal::OpenForAppend(
    platform::FileSystem& fs, const std::string& path,
    std::chrono::milliseconds slow_sync) {
  auto file = fs.NewAppendableFile(path);
  if (!file) return file.error();
  return std::unique_ptr<Journal>(
      new Journal(path, std::move(*file), slow_sync));
}

Status Journal::Append(std::string_view record) {
  COUNTERD_RETURN_IF_ERROR(file_->Append(record));
  if (file_->Size() >= zeroed_end_) {
    // Written before the Sync that makes |record| durable: that Sync
    // commits the new size once, and the next kZeroFillAhead bytes of
    // records need no size change. A crash leaves zeros after the last
    // synced record (or the zeros not yet written back: a shorter file),
    // which recovery tells from a record.
    COUNTERD_RETURN_IF_ERROR(file_->ZeroFillAhead(kZeroFillAhead));
    zeroed_end_ = file_->Size() + kZeroFillAhead;
  }
  return Status::Ok();
}

Status Journal::Sync(std::chrono::nanoseconds& took) {
  const auto start = std::chrono::steady_clock::now();
  Status s = file_->Sync();
  took = std::chrono::steady_clock::now() - start;
  if (took >= slow_sync_) {
    log::Warn(
        "slow fdatasync",
        {{"file", path_},
         {"took_ms",
          std::chrono::duration_cast<std::chrono::milliseconds>(took).count()},
         {"threshold_ms", slow_sync_.count()}});
  }
  return s;
}

std::string JournalFileName(std::uint64_t first_seq) {
  char digits[kDigits + 1];
  (void)std::snprintf(digits, sizeof(digits), "%020llu",
                      static_cast<unsigned long long>(first_seq));  // NOLINT
  return std::string(kPrefix) + digits + std::string(kSuffix);
}

bool ParseJournalFileName(std::string_view name, std::uint64_t& first_seq) {
  if (name.size() != kPrefix.size() + kDigits + kSuffix.size() ||
      !name.starts_with(kPrefix) || !name.ends_with(kSuffix)) {
    return false;
  }
  const std::string_view digits = name.substr(kPrefix.size(), kDigits);
  const auto [ptr, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), first_seq);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

}  // namespace counterd::storage
