// ReadJournal: checks and decodes the records of one journal file, version 1
// or 2, telling a torn tail (cut off at recovery) from damage (start-up
// refused). The rules are those of docs/storage-format.md. Pure function;
// thread-safe.
#ifndef COUNTERD_STORAGE_FILE_JOURNAL_READER_H_
#define COUNTERD_STORAGE_FILE_JOURNAL_READER_H_

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "counterd/core/result.h"
#include "effects.h"

namespace counterd::storage {

struct JournalScan {
  int format = 2;  // 1: no file header (counterd 0.1)
  // The newest file's creation was cut short (shorter than its header, or
  // only zeros): it holds no record and its header must be written again.
  bool header_torn = false;
  std::uint64_t valid_bytes = 0;  // end of the last intact record
  std::uint64_t torn_bytes = 0;   // bytes after it forming a torn tail
  std::uint64_t records = 0;
  std::uint64_t last_seq = 0;  // 0 if the file holds no record
};

using RecordVisitor =
    std::function<Status(std::uint64_t seq, std::vector<Effect>&& effects)>;

// Visits each intact record of |data| in order. The first record must carry
// |first_seq| (from the file name) and each next one the previous seq + 1.
// If |is_last_file|, a torn tail is reported in torn_bytes instead of as an
// error. Errors are kDataLoss naming |file| and the byte offset (a header
// declaring a newer format says so); an error from |visit| is returned
// with the same context.
Result<JournalScan> ReadJournal(std::string_view data, std::string_view file,
                                std::uint64_t first_seq, bool is_last_file,
                                const RecordVisitor& visit);

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_JOURNAL_READER_H_
