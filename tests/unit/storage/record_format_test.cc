#include "storage/record_format.h"

#include <string>

#include <gtest/gtest.h>

namespace counterd::storage {
namespace {

std::vector<Effect> SampleEffects() {
  IdempotencyRecord r;
  r.key = "key-1";
  r.fingerprint = "POST /counters/a/increment by=1";
  r.created_at_ms = 1763683200000;
  r.outcome.counter = domain::Counter{"a", -5, 9};
  r.outcome.created = true;
  IdempotencyRecord refused;
  refused.key = "key-2";
  refused.outcome.status = Status::OutOfRange("would overflow");
  return {PutCounter{{"a", -5, 9}}, DeleteCounter{"b"},
          PutCounter{{"user:42", INT64_MAX, UINT64_MAX}}, PutIdempotency{r},
          PutIdempotency{refused}};
}

TEST(RecordFormatTest, RoundTrips) {
  std::string bytes;
  EncodeRecord(42, SampleEffects(), bytes);
  ASSERT_GT(bytes.size(), kRecordHeaderSize);
  const RecordHeader h = DecodeHeader(bytes);
  EXPECT_EQ(h.seq, 42u);
  EXPECT_EQ(h.length, bytes.size() - kRecordHeaderSize);
  EXPECT_EQ(h.crc, RecordChecksum(bytes));
  auto effects =
      DecodePayload(std::string_view(bytes).substr(kRecordHeaderSize));
  ASSERT_TRUE(effects.has_value()) << effects.error().ToString();
  EXPECT_EQ(*effects, SampleEffects());
}

TEST(RecordFormatTest, HeaderIsLittleEndianAsDocumented) {
  std::string bytes;
  EncodeRecord(0x0102030405060708ull, {DeleteCounter{"x"}}, bytes);
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 0x08);
  EXPECT_EQ(static_cast<unsigned char>(bytes[15]), 0x01);
  // payload: u32 count=1, tag 2, u32 len=1, 'x'
  EXPECT_EQ(bytes.size(), kRecordHeaderSize + 4 + 1 + 4 + 1);
  EXPECT_EQ(bytes[kRecordHeaderSize + 4], 2);
}

TEST(RecordFormatTest, ChecksumCoversLengthSeqAndPayload) {
  std::string bytes;
  EncodeRecord(1, {PutCounter{{"a", 1, 1}}}, bytes);
  for (std::size_t i = 4; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x10);
    EXPECT_NE(RecordChecksum(flipped), DecodeHeader(bytes).crc) << i;
  }
}

TEST(RecordFormatTest, RejectsTruncatedAndTrailingPayloads) {
  std::string bytes;
  EncodeRecord(1, SampleEffects(), bytes);
  const std::string payload = bytes.substr(kRecordHeaderSize);
  for (std::size_t cut = 0; cut < payload.size(); ++cut) {
    EXPECT_FALSE(DecodePayload(payload.substr(0, cut)).has_value()) << cut;
  }
  EXPECT_FALSE(DecodePayload(payload + "x").has_value());
  std::string bad_tag = payload;
  bad_tag[4] = 9;
  EXPECT_EQ(DecodePayload(bad_tag).error().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace counterd::storage
