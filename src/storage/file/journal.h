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
  // Keeps zeros written ahead of the end (see WritableFile::ZeroFillAhead),
  // kZeroFillAhead bytes at a time, so that most Syncs find the file's size
  // already durable and flush the record alone. The file on disk therefore
  // ends in up to that many zeros after the last record: recovery takes
  // them for an unused tail, and Finish() cuts them off.
  Status Append(std::string_view record);
  // fdatasync: after OK, every appended record survives a crash (the
  // acknowledgement point). After an error nothing is known; never retry.
  // |took| receives the duration; one longer than the slow-sync threshold
  // is logged as a warning with it, as etcd's WAL does.
  Status Sync(std::chrono::nanoseconds& took);
  // Cuts the zeros written ahead and syncs the cut, so that the file ends
  // at its last record: for a journal that stops being the newest (a
  // rotation; recovery reads only the newest one's tail as unused) and at a
  // clean close. A crash before it leaves the zeros, which recovery of the
  // newest file cuts itself.
  Status Finish(platform::FileSystem& fs) {
    return fs.TruncateFile(path_, file_->Size());
  }
  Status Close() { return file_->Close(); }

  // Zeros are written this far ahead when they run out: one Sync in about
  // every this many bytes of records commits a new file size.
  static constexpr std::uint64_t kZeroFillAhead = 1 << 20;

  std::uint64_t Size() const { return file_->Size(); }
  const std::string& path() const { return path_; }

 private:
  Journal(std::string path, std::unique_ptr<platform::WritableFile> file,
          std::chrono::milliseconds slow_sync)
      : path_(std::move(path)), file_(std::move(file)), slow_sync_(slow_sync) {}

  std::string path_;
  std::unique_ptr<platform::WritableFile> file_;
  std::chrono::milliseconds slow_sync_;
  // Where the zeros written ahead end (0: none written yet).
  std::uint64_t zeroed_end_ = 0;
};

// "journal-00000000000000000042.log" for first seq 42.
std::string JournalFileName(std::uint64_t first_seq);
// The first seq encoded in a journal file name; false if |name| is not one.
bool ParseJournalFileName(std::string_view name, std::uint64_t& first_seq);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_JOURNAL_H_
