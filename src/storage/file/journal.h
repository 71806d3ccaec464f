// Journal: the journal file records are appended to, and the one place they
// are made durable. Used only by whoever holds the store's committer role
// (the committer thread or an inline committer; see commit_queue.h).
// Thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_JOURNAL_H_
#define COUNTERD_STORAGE_FILE_JOURNAL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "counterd/core/result.h"
#include "counterd/platform/file_system.h"

namespace counterd::storage {

class Journal {
 public:
  // Creates (or truncates) |dir|/JournalFileName(first_seq), writes its
  // version-2 header and makes file and directory entry durable: records
  // appended to it can then be acknowledged. |fs| must outlive the Journal.
  static Result<std::unique_ptr<Journal>> Create(
      platform::FileSystem& fs, const std::string& dir, std::uint64_t first_seq,
      std::chrono::milliseconds slow_sync);
  // Opens an existing version-2 journal for appending after its last
  // record (recovery has cut any torn tail).
  static Result<std::unique_ptr<Journal>> OpenForAppend(
      platform::FileSystem& fs, const std::string& path,
      std::chrono::milliseconds slow_sync);

  // Writes |record| at the end of the file. Not durable until Sync().
  Status Append(std::string_view record) { return file_->Append(record); }
  // fdatasync: after OK, every appended record survives a crash (the
  // acknowledgement point). After an error nothing is known; never retry.
  // |took| receives the duration; one longer than the slow-sync threshold
  // is logged as a warning with it, as etcd's WAL does.
  Status Sync(std::chrono::nanoseconds& took);
  Status Close() { return file_->Close(); }

  std::uint64_t Size() const { return file_->Size(); }
  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, std::unique_ptr<platform::WritableFile> file,
          std::chrono::milliseconds slow_sync)
      : path_(std::move(path)), file_(std::move(file)), slow_sync_(slow_sync) {}

  std::string path_;
  std::unique_ptr<platform::WritableFile> file_;
  std::chrono::milliseconds slow_sync_;
};

// "journal-00000000000000000042.log" for first seq 42.
std::string JournalFileName(std::uint64_t first_seq);
// The first seq encoded in a journal file name; false if |name| is not one.
bool ParseJournalFileName(std::string_view name, std::uint64_t& first_seq);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_JOURNAL_H_
