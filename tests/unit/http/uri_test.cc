#include "api/uri.h"

#include <gtest/gtest.h>

namespace counterd::http {
namespace {

TEST(SplitTargetTest, SeparatesPathAndQuery) {
  const Target t = SplitTarget("/counters?prefix=a&limit=2");
  EXPECT_EQ(t.path, "/counters");
  EXPECT_EQ(t.query, "prefix=a&limit=2");
  EXPECT_EQ(SplitTarget("/counter").query, "");
  EXPECT_EQ(SplitTarget("/a?").path, "/a");
}

TEST(SplitTargetTest, AbsoluteFormIsReducedToPathAndQuery) {
  Target t = SplitTarget("http://localhost:8080/counters/a?x=1");
  EXPECT_EQ(t.path, "/counters/a");
  EXPECT_EQ(t.query, "x=1");
  EXPECT_EQ(SplitTarget("HTTP://h").path, "/");
  t = SplitTarget("https://h?limit=2");
  EXPECT_EQ(t.path, "/");
  EXPECT_EQ(t.query, "limit=2");
  EXPECT_EQ(SplitTarget("*").path, "*");
}

TEST(PercentDecodeTest, DecodesEscapesInEitherCase) {
  EXPECT_EQ(*PercentDecode("a%2Fb%2fc"), "a/b/c");
  EXPECT_EQ(*PercentDecode("%2e%2E"), "..");
  EXPECT_EQ(*PercentDecode("user:42"), "user:42");
}

TEST(PercentDecodeTest, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", /*plus_is_space=*/true), "a b");
}

TEST(PercentDecodeTest, RejectsBrokenEscapes) {
  for (const char* bad : {"%", "%2", "a%zz", "%g0", "x%"}) {
    const auto r = PercentDecode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  }
}

TEST(PercentDecodeTest, DecodesNulAndHighBytes) {
  EXPECT_EQ(*PercentDecode("%00%ff"), std::string("\0\xff", 2));
}

TEST(ParseQueryTest, SplitsAndDecodesPairs) {
  const auto q = ParseQuery("prefix=a%3Ab&limit=5&flag&&after=");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[0], (std::pair<std::string, std::string>{"prefix", "a:b"}));
  EXPECT_EQ((*q)[1], (std::pair<std::string, std::string>{"limit", "5"}));
  EXPECT_EQ((*q)[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ((*q)[3], (std::pair<std::string, std::string>{"after", ""}));
}

TEST(ParseQueryTest, EmptyQueryHasNoParams) {
  EXPECT_TRUE(ParseQuery("")->empty());
}

TEST(ParseQueryTest, RejectsBrokenEscape) { EXPECT_FALSE(ParseQuery("a=%4")); }

TEST(SplitPathTest, KeepsEmptySegments) {
  EXPECT_EQ(SplitPath("/"), (std::vector<std::string_view>{""}));
  EXPECT_EQ(SplitPath("/a/b"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(SplitPath("/a/"), (std::vector<std::string_view>{"a", ""}));
  EXPECT_EQ(SplitPath("/a%2Fb"), (std::vector<std::string_view>{"a%2Fb"}));
}

}  // namespace
}  // namespace counterd::http
