#include "counterd/core/crc32c.h"

#include <string>

#include <gtest/gtest.h>

namespace counterd {
namespace {

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 B.4 and the classic check value.
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(std::string(32, '\xff')), 0x62a8ab43u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  const std::string data = "hello, durable counters of every length";
  for (std::size_t cut = 0; cut <= data.size(); ++cut) {
    EXPECT_EQ(
        crc32c::Extend(crc32c::Value(data.substr(0, cut)), data.substr(cut)),
        crc32c::Value(data));
  }
}

TEST(Crc32cTest, DetectsSingleBitFlips) {
  std::string data(100, 'a');
  const auto base = crc32c::Value(data);
  data[50] ^= 1;
  EXPECT_NE(crc32c::Value(data), base);
}

}  // namespace
}  // namespace counterd
