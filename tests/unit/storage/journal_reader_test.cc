#include "storage/journal_reader.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/record_format.h"

namespace counterd::storage {
namespace {

std::string Records(std::uint64_t first, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    EncodeRecord(first + static_cast<std::uint64_t>(i),
                 {PutCounter{{"c", i, static_cast<std::uint64_t>(i + 1)}}},
                 out);
  }
  return out;
}

Result<JournalScan> Scan(const std::string& data, bool last,
                         std::vector<std::uint64_t>* seqs = nullptr) {
  return ReadJournal(data, "journal-x.log", 1, last,
                     [&](std::uint64_t seq, std::vector<Effect>&&) {
                       if (seqs) seqs->push_back(seq);
                       return Status::Ok();
                     });
}

TEST(JournalReaderTest, ReadsIntactRecords) {
  const std::string data = Records(1, 3);
  std::vector<std::uint64_t> seqs;
  auto scan = Scan(data, true, &seqs);
  ASSERT_TRUE(scan) << scan.error().ToString();
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(scan->valid_bytes, data.size());
  EXPECT_EQ(scan->torn_bytes, 0u);
  EXPECT_EQ(scan->last_seq, 3u);
}

TEST(JournalReaderTest, EveryCutOfTheLastRecordIsATornTail) {
  const std::string two = Records(1, 2);
  const std::string three = Records(1, 3);
  for (std::size_t cut = two.size() + 1; cut < three.size(); ++cut) {
    auto scan = Scan(three.substr(0, cut), true);
    ASSERT_TRUE(scan) << cut << ": " << scan.error().ToString();
    EXPECT_EQ(scan->valid_bytes, two.size());
    EXPECT_EQ(scan->torn_bytes, cut - two.size());
  }
}

TEST(JournalReaderTest, GarbledLastRecordAndZeroFillAreTornTails) {
  std::string data = Records(1, 3);
  const std::size_t two = Records(1, 2).size();
  data[data.size() - 1] ^= 0x55;  // the final record's payload
  auto scan = Scan(data, true);
  ASSERT_TRUE(scan);
  EXPECT_EQ(scan->valid_bytes, two);

  std::string zeros = Records(1, 2) + std::string(100, '\0');
  scan = Scan(zeros, true);
  ASSERT_TRUE(scan);
  EXPECT_EQ(scan->valid_bytes, two);
  EXPECT_EQ(scan->torn_bytes, 100u);
}

TEST(JournalReaderTest, DamageBeforeTheTailIsDataLossWithOffset) {
  std::string data = Records(1, 3);
  const std::size_t one = Records(1, 1).size();
  data[one + kRecordHeaderSize + 2] ^= 0x01;  // inside record 2
  auto scan = Scan(data, true);
  ASSERT_FALSE(scan);
  EXPECT_EQ(scan.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(scan.error().message().find("journal-x.log at byte offset " +
                                        std::to_string(one)),
            std::string::npos)
      << scan.error().message();
}

TEST(JournalReaderTest, TornTailInAnOlderFileIsDataLoss) {
  const std::string data = Records(1, 2);
  EXPECT_EQ(Scan(data.substr(0, data.size() - 3), false).error().code(),
            StatusCode::kDataLoss);
}

TEST(JournalReaderTest, SequenceGapIsDataLoss) {
  const std::string data = Records(1, 1) + Records(3, 1);
  auto scan = Scan(data, true);
  ASSERT_FALSE(scan);
  EXPECT_NE(scan.error().message().find("sequence number 3"),
            std::string::npos);
}

TEST(JournalReaderTest, FirstRecordMustMatchTheFileName) {
  auto scan = ReadJournal(
      Records(5, 1), "j", 4, true,
      [](std::uint64_t, std::vector<Effect>&&) { return Status::Ok(); });
  EXPECT_FALSE(scan);
}

TEST(JournalReaderTest, ZerosInTheLastRecordsLengthFieldAreATornTail) {
  // A power loss during the write-back of the unacknowledged last record
  // can leave zeros anywhere in it, its length field included: the record
  // then reads as a shorter one with a bad checksum and non-zero bytes
  // after it.
  std::string data = Records(1, 1);
  const std::size_t one = data.size();
  EncodeRecord(2, {PutCounter{{std::string(300, 'x'), 1, 1}}}, data);
  data[one + 5] = '\0';  // the length's second byte
  auto scan = Scan(data, true);
  ASSERT_TRUE(scan) << scan.error().ToString();
  EXPECT_EQ(scan->valid_bytes, one);
  EXPECT_EQ(scan->torn_bytes, data.size() - one);
  // Damage that an intact next record follows is still damage.
  EncodeRecord(3, {PutCounter{{"c", 1, 1}}}, data);
  EXPECT_EQ(Scan(data, true).error().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace counterd::storage
