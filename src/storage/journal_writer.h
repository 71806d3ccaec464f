// JournalWriter: appends encoded records to the current journal file and
// makes them durable. Used only by whoever holds the store's committer role
// (the committer thread or an inline committer; see counter_store.h).
#ifndef COUNTERD_STORAGE_JOURNAL_WRITER_H_
#define COUNTERD_STORAGE_JOURNAL_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "counterd/core/status.h"
#include "counterd/platform/file_system.h"

namespace counterd::storage {

class JournalWriter {
 public:
  JournalWriter(std::string path, std::unique_ptr<platform::WritableFile> file)
      : path_(std::move(path)), file_(std::move(file)) {}

  // Writes |record| at the end of the file. Not durable until Sync().
  Status Append(std::string_view record) { return file_->Append(record); }
  // fdatasync: after OK, every appended record survives a crash
  // (Invariant 1). After an error nothing is known; never retry.
  Status Sync() { return file_->Sync(); }
  Status Close() { return file_->Close(); }

  std::uint64_t Size() const { return file_->Size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<platform::WritableFile> file_;
};

// "journal-00000000000000000042.log" for first seq 42.
std::string JournalFileName(std::uint64_t first_seq);
// The first seq encoded in a journal file name; false if |name| is not one.
bool ParseJournalFileName(std::string_view name, std::uint64_t& first_seq);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_JOURNAL_WRITER_H_
