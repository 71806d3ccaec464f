#include "counterd/domain/counter_name.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace counterd::domain {
namespace {

TEST(CounterNameTest, AcceptsTheAllowedAlphabet) {
  for (const char* name :
       {"a", "default", "user:42:logins", "A-Z_a.z-0:9", "...", ".a", "a..b"}) {
    EXPECT_TRUE(CounterName::Parse(name).has_value()) << name;
  }
  EXPECT_TRUE(CounterName::Parse(std::string(128, 'x')).has_value());
}

TEST(CounterNameTest, RejectsBadNames) {
  const std::vector<std::string> bad = {"",
                                        ".",
                                        "..",
                                        "a/b",
                                        "a b",
                                        "caf\xc3\xa9",
                                        "a%2e",
                                        "a\n",
                                        "a?b",
                                        std::string(129, 'x'),
                                        std::string("a\0b", 3)};
  for (const std::string& name : bad) {
    const auto parsed = CounterName::Parse(name);
    ASSERT_FALSE(parsed.has_value()) << name;
    EXPECT_EQ(parsed.error().code(), StatusCode::kInvalidArgument);
  }
}

TEST(CounterNameTest, DefaultIsDefault) {
  EXPECT_EQ(CounterName::Default().str(), "default");
}

}  // namespace
}  // namespace counterd::domain
