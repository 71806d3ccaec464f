#include "api/etag.h"

#include <gtest/gtest.h>

namespace counterd::http {
namespace {

using Versions = std::vector<std::uint64_t>;

domain::Precondition IfMatch(std::string_view value) {
  domain::Precondition pre;
  AddIfMatch(value, pre);
  return pre;
}

TEST(ETagTest, FormatsStrongVersionTag) {
  EXPECT_EQ(FormatETag(0), "\"0\"");
  EXPECT_EQ(FormatETag(42), "\"42\"");
}

TEST(IfMatchTest, StarMeansMustExist) {
  const auto pre = IfMatch(" * ");
  EXPECT_TRUE(pre.must_exist);
  EXPECT_TRUE(pre.version_in.empty());
}

TEST(IfMatchTest, ListOfTags) {
  EXPECT_EQ(IfMatch("\"3\"").version_in, (Versions{3}));
  EXPECT_EQ(IfMatch("\"3\", \"17\"").version_in, (Versions{3, 17}));
  EXPECT_EQ(IfMatch("\"3\",\"4\" ,\"5\"").version_in, (Versions{3, 4, 5}));
}

TEST(IfMatchTest, WeakOrUnparseableTagsNeverMatch) {
  EXPECT_EQ(IfMatch("W/\"3\"").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("3").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"abc\"").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"03\"").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"-1\"").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"3").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"3\"x").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"99999999999999999999999\"").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("").version_in, (Versions{0}));
  EXPECT_EQ(IfMatch("\"2\", W/\"3\"").version_in, (Versions{2, 0}));
}

TEST(IfMatchTest, CommaInsideQuotesDoesNotSplit) {
  EXPECT_EQ(IfMatch("\"1,2\", \"5\"").version_in, (Versions{0, 5}));
}

TEST(IfMatchTest, AccumulatesOverFields) {
  domain::Precondition pre;
  AddIfMatch("\"1\"", pre);
  AddIfMatch("\"2\"", pre);
  EXPECT_EQ(pre.version_in, (Versions{1, 2}));
}

TEST(IfNoneMatchTest, StarOrAnyEqualTagMatches) {
  EXPECT_TRUE(IfNoneMatchMatches("*", 7));
  EXPECT_TRUE(IfNoneMatchMatches("\"7\"", 7));
  EXPECT_TRUE(IfNoneMatchMatches("\"1\", \"7\"", 7));
  EXPECT_FALSE(IfNoneMatchMatches("\"8\"", 7));
  EXPECT_FALSE(IfNoneMatchMatches("garbage", 7));
  EXPECT_FALSE(IfNoneMatchMatches("", 7));
}

TEST(IfNoneMatchTest, UsesWeakComparison) {
  EXPECT_TRUE(IfNoneMatchMatches("W/\"7\"", 7));
}

TEST(WildcardTest, OnlyAStar) {
  EXPECT_TRUE(IsWildcard("*"));
  EXPECT_TRUE(IsWildcard("  *\t"));
  EXPECT_FALSE(IsWildcard("\"*\""));
  EXPECT_FALSE(IsWildcard("*, \"1\""));
}

}  // namespace
}  // namespace counterd::http
