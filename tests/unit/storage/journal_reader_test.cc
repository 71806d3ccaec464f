// ReadJournal: torn tails against damage, the version-2 file header (and a
// creation a crash cut short), and version-1 files.
#include "journal_reader.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binary_io.h"
#include "counterd/core/crc32c.h"
#include "journal_format.h"
#include "sample_records.h"

namespace counterd::storage {
namespace {

std::string Records(std::uint64_t first, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    EncodeRecord(first + static_cast<std::uint64_t>(i),
                 {PutCounter{{"c", i, static_cast<std::uint64_t>(i + 1), 0}}},
                 out);
  }
  return out;
}

// A version-2 journal file: its header, then |n| records from |first|.
std::string File(std::uint64_t first, int n) {
  return EncodeJournalHeader(first) + Records(first, n);
}

Result<JournalScan> Scan(const std::string& data, bool last,
                         std::vector<std::uint64_t>* seqs = nullptr,
                         std::uint64_t first_seq = 1) {
  return ReadJournal(data, "journal-x.log", first_seq, last,
                     [&](std::uint64_t seq, std::vector<Effect>&&) {
                       if (seqs) seqs->push_back(seq);
                       return Status::Ok();
                     });
}

void ExpectDamageAt(const Result<JournalScan>& scan, std::uint64_t offset,
                    std::string_view what = "") {
  ASSERT_FALSE(scan);
  EXPECT_EQ(scan.error().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(scan.error().message().starts_with(
      "journal-x.log at byte offset " + std::to_string(offset) + ": "))
      << scan.error().message();
  EXPECT_NE(scan.error().message().find(what), std::string::npos)
      << scan.error().message();
}

TEST(JournalReaderTest, ReadsIntactRecordsAfterTheHeader) {
  const std::string data = File(1, 3);
  std::vector<std::uint64_t> seqs;
  auto scan = Scan(data, true, &seqs);
  ASSERT_TRUE(scan) << scan.error().ToString();
  EXPECT_EQ(scan->format, 2);
  EXPECT_FALSE(scan->header_torn);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(scan->valid_bytes, data.size());
  EXPECT_EQ(scan->torn_bytes, 0u);
  EXPECT_EQ(scan->records, 3u);
  EXPECT_EQ(scan->last_seq, 3u);
}

TEST(JournalReaderTest, HeaderAloneIsAnEmptyJournal) {
  for (const bool last : {true, false}) {
    auto scan = Scan(EncodeJournalHeader(1), last);
    ASSERT_TRUE(scan) << scan.error().ToString();
    EXPECT_EQ(scan->format, 2);
    EXPECT_FALSE(scan->header_torn);
    EXPECT_EQ(scan->records, 0u);
    EXPECT_EQ(scan->valid_bytes, kJournalHeaderSize);
  }
}

TEST(JournalReaderTest, EveryCutOfTheLastRecordIsATornTail) {
  const std::string two = File(1, 2);
  const std::string three = File(1, 3);
  for (std::size_t cut = two.size() + 1; cut < three.size(); ++cut) {
    auto scan = Scan(three.substr(0, cut), true);
    ASSERT_TRUE(scan) << cut << ": " << scan.error().ToString();
    EXPECT_EQ(scan->valid_bytes, two.size());
    EXPECT_EQ(scan->torn_bytes, cut - two.size());
    EXPECT_EQ(scan->records, 2u);
  }
}

TEST(JournalReaderTest, GarbledLastRecordAndZeroFillAreTornTails) {
  std::string data = File(1, 3);
  const std::size_t two = File(1, 2).size();
  data[data.size() - 1] ^= 0x55;  // the final record's payload
  auto scan = Scan(data, true);
  ASSERT_TRUE(scan);
  EXPECT_EQ(scan->valid_bytes, two);

  const std::string zeros = File(1, 2) + std::string(100, '\0');
  scan = Scan(zeros, true);
  ASSERT_TRUE(scan);
  EXPECT_EQ(scan->valid_bytes, two);
  EXPECT_EQ(scan->torn_bytes, 100u);
}

TEST(JournalReaderTest, DamageBeforeTheTailIsDataLossWithOffset) {
  std::string data = File(1, 3);
  const std::size_t one = File(1, 1).size();
  data[one + kRecordHeaderSize + 2] ^= 0x01;  // inside record 2
  ExpectDamageAt(Scan(data, true), one, "checksum mismatch");
}

TEST(JournalReaderTest, TornTailInAnOlderFileIsDataLoss) {
  const std::string data = File(1, 2);
  ExpectDamageAt(Scan(data.substr(0, data.size() - 3), false),
                 File(1, 1).size());
}

TEST(JournalReaderTest, SequenceGapIsDataLoss) {
  const std::string data = File(1, 1) + Records(3, 1);
  ExpectDamageAt(Scan(data, true), File(1, 1).size(), "sequence number 3");
}

TEST(JournalReaderTest, FirstRecordMustMatchTheFileName) {
  // The header agrees with the name, the record does not.
  ExpectDamageAt(Scan(EncodeJournalHeader(4) + Records(5, 1), true, nullptr, 4),
                 kJournalHeaderSize, "sequence number 5 where 4");
}

TEST(JournalReaderTest, ZerosInTheLastRecordsLengthFieldAreATornTail) {
  // A power loss during the write-back of the unacknowledged last record
  // can leave zeros anywhere in it, its length field included: the record
  // then reads as a shorter one with a bad checksum and non-zero bytes
  // after it.
  std::string data = File(1, 1);
  const std::size_t one = data.size();
  EncodeRecord(2, {PutCounter{{std::string(300, 'x'), 1, 1, 0}}}, data);
  data[one + 5] = '\0';  // the length's second byte
  auto scan = Scan(data, true);
  ASSERT_TRUE(scan) << scan.error().ToString();
  EXPECT_EQ(scan->valid_bytes, one);
  EXPECT_EQ(scan->torn_bytes, data.size() - one);
  // Damage that an intact next record follows is still damage.
  EncodeRecord(3, {PutCounter{{"c", 1, 1, 0}}}, data);
  ExpectDamageAt(Scan(data, true), one);
}

// -- the file header ---------------------------------------------------------

// A crash while a new journal was created (Invariant 8: its header is
// synced before any record) leaves it empty, shorter than the header,
// zero-filled, or with a header whose CRC does not hold: in the newest
// file that is a creation cut short, with no record in it.
TEST(JournalReaderTest, HeaderTornAtCreationIsAnEmptyNewestFile) {
  const std::string header = EncodeJournalHeader(1);
  std::vector<std::string> cases = {"", std::string(24, '\0'),
                                    std::string(4096, '\0')};
  for (std::size_t n = 1; n < kJournalHeaderSize; ++n) {
    cases.push_back(header.substr(0, n));
  }
  std::string torn = header;
  for (std::size_t i = 20; i < 24; ++i) torn[i] = '\0';  // CRC not written
  cases.push_back(torn);
  std::string holes = header;
  for (std::size_t i = 12; i < 20; ++i) holes[i] = '\0';
  cases.push_back(holes);
  for (const std::string& data : cases) {
    SCOPED_TRACE("file of " + std::to_string(data.size()) + " bytes");
    auto scan = Scan(data, true);
    ASSERT_TRUE(scan) << scan.error().ToString();
    EXPECT_TRUE(scan->header_torn);
    EXPECT_EQ(scan->records, 0u);
    EXPECT_EQ(scan->torn_bytes, data.size());
    EXPECT_EQ(scan->valid_bytes, 0u);
  }
}

TEST(JournalReaderTest, HeaderTornInAnOlderFileIsDataLoss) {
  for (const std::string& data :
       {EncodeJournalHeader(1).substr(0, 10), std::string(24, '\0')}) {
    EXPECT_FALSE(Scan(data, false)) << data.size() << " bytes";
  }
}

TEST(JournalReaderTest, BadHeaderCrcBeforeRecordsIsDataLoss) {
  std::string data = File(1, 2);
  data[15] ^= 0x01;  // first_seq, under the CRC
  for (const bool last : {true, false}) {
    ExpectDamageAt(Scan(data, last), 0, "journal file header checksum");
  }
  data = File(1, 2);
  data[kJournalHeaderSize - 1] ^= 0x40;  // the CRC itself
  ExpectDamageAt(Scan(data, true), 0, "checksum");
}

TEST(JournalReaderTest, HeaderFirstSeqMustMatchTheFileName) {
  const std::string data = File(7, 2);
  ExpectDamageAt(Scan(data, true, nullptr, 6), 0,
                 "header says first seq 7 but the file name says 6");
  ExpectDamageAt(Scan(EncodeJournalHeader(7), true, nullptr, 8), 0,
                 "first seq 7");
}

// A header with a sound CRC for a version this counterd does not know.
std::string HeaderWithVersion(std::uint32_t version, std::uint64_t first) {
  std::string out(kJournalMagic);
  PutFixed<std::uint32_t>(out, version);
  PutFixed<std::uint64_t>(out, first);
  PutFixed<std::uint32_t>(out, crc32c::Value(out));
  return out;
}

TEST(JournalReaderTest, NewerFormatIsRefusedClearly) {
  for (const std::uint32_t version : {3u, 4'000'000'000u}) {
    for (const std::string& data :
         {HeaderWithVersion(version, 1),
          HeaderWithVersion(version, 1) + std::string(40, 'z')}) {
      for (const bool last : {true, false}) {
        auto scan = Scan(data, last);
        ExpectDamageAt(scan, 0,
                       "journal format " + std::to_string(version) +
                           " is newer than this counterd reads (1 and 2)");
        if (!scan) {
          EXPECT_NE(scan.error().message().find("run a newer counterd"),
                    std::string::npos);
        }
      }
    }
  }
}

TEST(JournalReaderTest, HeaderDeclaringFormatZeroOrOneIsDataLoss) {
  // Version 1 has no header; a header that says 1 (or 0) is not one
  // counterd wrote.
  for (const std::uint32_t version : {0u, 1u}) {
    ExpectDamageAt(Scan(HeaderWithVersion(version, 1) + Records(1, 1), true), 0,
                   "unknown format " + std::to_string(version));
  }
}

TEST(JournalReaderTest, VersionOneTagsInAVersionTwoFileAreDataLoss) {
  std::string data = File(1, 1);
  std::string v1_record;
  // A version-1 put counter: tag 1, name, value, version (no expiry).
  std::string payload;
  PutFixed<std::uint32_t>(payload, 1);
  payload.push_back(1);
  PutString(payload, "c");
  PutFixed<std::int64_t>(payload, 5);
  PutFixed<std::uint64_t>(payload, 2);
  std::string header;
  PutFixed<std::uint32_t>(header, 0);
  PutFixed<std::uint32_t>(header, static_cast<std::uint32_t>(payload.size()));
  PutFixed<std::uint64_t>(header, 2);
  v1_record = header + payload;
  const std::uint32_t crc = RecordChecksum(v1_record);
  std::string crc_bytes;
  PutFixed<std::uint32_t>(crc_bytes, crc);
  v1_record.replace(0, 4, crc_bytes);
  const std::size_t at = data.size();
  data += v1_record;
  ExpectDamageAt(Scan(data, true), at, "undecodable record payload");
}

// -- version 1
// -----------------------------------------------------------------

std::string Payload2(const std::vector<Effect>& effects) {
  std::string record;
  EncodeRecord(1, effects, record);
  return record.substr(kRecordHeaderSize);
}

// A version-1 record (docs/storage-format.md, "Upgrading from version 1").
std::string V1Record(std::uint64_t seq, const std::string& payload) {
  std::string body;
  PutFixed<std::uint32_t>(body, static_cast<std::uint32_t>(payload.size()));
  PutFixed<std::uint64_t>(body, seq);
  body += payload;
  std::string out;
  PutFixed<std::uint32_t>(out, crc32c::Value(body));
  return out + body;
}

std::string V1Put(const std::string& name, std::int64_t value,
                  std::uint64_t version) {
  std::string out(1, '\x01');
  PutString(out, name);
  PutFixed<std::int64_t>(out, value);
  PutFixed<std::uint64_t>(out, version);
  return out;
}

std::string V1Payload(const std::vector<std::string>& effects) {
  std::string out;
  PutFixed<std::uint32_t>(out, static_cast<std::uint32_t>(effects.size()));
  for (const std::string& e : effects) out += e;
  return out;
}

TEST(JournalReaderTest, VersionOneFileHasNoHeaderAndOldEffects) {
  std::string del(1, '\x02');
  PutString(del, "b");
  const std::string data =
      V1Record(1, V1Payload({V1Put("a", 1, 1), V1Put("b", 2, 1)})) +
      V1Record(2, V1Payload({V1Put("a", testing::kI64Min, 2), del}));
  std::vector<std::vector<Effect>> seen;
  auto scan = ReadJournal(data, "journal-x.log", 1, true,
                          [&](std::uint64_t, std::vector<Effect>&& effects) {
                            seen.push_back(std::move(effects));
                            return Status::Ok();
                          });
  ASSERT_TRUE(scan) << scan.error().ToString();
  EXPECT_EQ(scan->format, 1);
  EXPECT_EQ(scan->records, 2u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[1][0] == Effect(PutCounter{{"a", testing::kI64Min, 2, 0}}));
  EXPECT_TRUE(seen[1][1] == Effect(DeleteCounter{"b"}));
  // Its torn tail is cut like a version-2 one.
  auto torn = Scan(data.substr(0, data.size() - 2), true);
  ASSERT_TRUE(torn) << torn.error().ToString();
  EXPECT_EQ(torn->format, 1);
  EXPECT_EQ(torn->records, 1u);
  // A version-2 tag in a version-1 file is damage.
  const std::string v2_in_v1 =
      V1Record(1, Payload2({PutCounter{{"a", 1, 1, 0}}}));
  ExpectDamageAt(
      Scan(v2_in_v1 + V1Record(2, V1Payload({V1Put("a", 2, 2)})), true), 0,
      "version-1");
}

}  // namespace
}  // namespace counterd::storage
