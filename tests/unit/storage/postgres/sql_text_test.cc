#include "sql_text.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace counterd::storage::postgres {
namespace {

TEST(SqlTextTest, TextArrayQuotesEveryElement) {
  const std::vector<std::string> items = {"a", "NULL", "", "x\"y", "b\\c"};
  EXPECT_EQ(TextArray(items), R"({"a","NULL","","x\"y","b\\c"})");
  EXPECT_EQ(TextArray({}), "{}");
}

TEST(SqlTextTest, Int64ArrayKeepsTheExtremes) {
  const std::vector<std::int64_t> items = {0, -1, INT64_MIN, INT64_MAX};
  EXPECT_EQ(Int64Array(items),
            "{0,-1,-9223372036854775808,9223372036854775807}");
}

TEST(SqlTextTest, ByteaArrayIsHexInQuotes) {
  const std::vector<std::string> items = {std::string("\x00\xff", 2), ""};
  EXPECT_EQ(ByteaArray(items), R"({"\\x00ff","\\x"})");
}

TEST(SqlTextTest, ParseByteaHexRoundTripsAndRejectsOtherForms) {
  EXPECT_EQ(ParseByteaHex("\\x00ff41"), std::string("\x00\xff"
                                                    "A",
                                                    3));
  EXPECT_EQ(ParseByteaHex("\\x"), std::string());
  EXPECT_EQ(ParseByteaHex("\\x0"), std::nullopt);
  EXPECT_EQ(ParseByteaHex("\\xzz"), std::nullopt);
  EXPECT_EQ(ParseByteaHex("abc"), std::nullopt);  // escape format
}

TEST(SqlTextTest, ParseInt64IsStrict) {
  EXPECT_EQ(ParseInt64("-42"), -42);
  EXPECT_EQ(ParseInt64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseInt64("9223372036854775808"), std::nullopt);
  EXPECT_EQ(ParseInt64("1 "), std::nullopt);
  EXPECT_EQ(ParseInt64(""), std::nullopt);
}

TEST(SqlTextTest, PrefixUpperBoundIsTheNextByteString) {
  EXPECT_EQ(PrefixUpperBound("user:"), "user;");
  EXPECT_EQ(PrefixUpperBound("az"), "a{");
  EXPECT_EQ(PrefixUpperBound(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixUpperBound(std::string("\xff", 1)), std::nullopt);
}

}  // namespace
}  // namespace counterd::storage::postgres
