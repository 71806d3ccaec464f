#include "counterd/core/status.h"

#include <gtest/gtest.h>

#include "counterd/core/result.h"

namespace counterd {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CarriesCodeMessageAndContext) {
  Status s = Status::DataLoss("bad crc").WithContext("journal-1.log");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "journal-1.log: bad crc");
  EXPECT_EQ(s.ToString(), "DATA_LOSS: journal-1.log: bad crc");
}

Status FailsThenNeverReached(int& reached) {
  COUNTERD_RETURN_IF_ERROR(Status::Unavailable("disk"));
  reached = 1;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorReturnsEarly) {
  int reached = 0;
  EXPECT_EQ(FailsThenNeverReached(reached).code(), StatusCode::kUnavailable);
  EXPECT_EQ(reached, 0);
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());
  Result<int> bad = Status::NotFound("x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace counterd
