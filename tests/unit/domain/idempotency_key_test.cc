#include "counterd/domain/idempotency_key.h"

#include <string>

#include <gtest/gtest.h>

namespace counterd::domain {
namespace {

TEST(IdempotencyKeyTest, AcceptsVisibleAscii) {
  EXPECT_TRUE(IdempotencyKey::Parse("k").has_value());
  EXPECT_TRUE(IdempotencyKey::Parse("!~{}\"/").has_value());
  EXPECT_TRUE(IdempotencyKey::Parse(std::string(255, 'k')).has_value());
}

TEST(IdempotencyKeyTest, RejectsEmptyLongAndInvisible) {
  for (const std::string& key :
       {std::string(), std::string(256, 'k'), std::string("a b"),
        std::string("a\tb"), std::string("\x7f"), std::string("\xc3\xa9")}) {
    EXPECT_FALSE(IdempotencyKey::Parse(key).has_value()) << key;
  }
}

}  // namespace
}  // namespace counterd::domain
