#include "api/problem.h"

#include <set>

#include <gtest/gtest.h>

#include "api/content_type.h"

namespace counterd::http {
namespace {

TEST(HttpStatusForTest, TheDecidedMapping) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kFailedPrecondition), 412u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kOutOfRange), 409u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAborted), 409u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 422u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 507u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDataLoss), 500u);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500u);
}

constexpr StatusCode kErrorCodes[] = {StatusCode::kInvalidArgument,
                                      StatusCode::kNotFound,
                                      StatusCode::kFailedPrecondition,
                                      StatusCode::kOutOfRange,
                                      StatusCode::kAborted,
                                      StatusCode::kAlreadyExists,
                                      StatusCode::kResourceExhausted,
                                      StatusCode::kUnavailable,
                                      StatusCode::kDataLoss,
                                      StatusCode::kInternal};

TEST(ProblemFromStatusTest, TypeAgreesWithStatus) {
  for (const StatusCode code : kErrorCodes) {
    const Problem p = ProblemFromStatus(Status(code, "why"), "/x");
    EXPECT_EQ(p.status, HttpStatusFor(code)) << StatusCodeName(code);
    EXPECT_EQ(Describe(p.type).status, p.status) << StatusCodeName(code);
    EXPECT_EQ(p.detail, "why");
    EXPECT_EQ(p.instance, "/x");
  }
  EXPECT_EQ(ProblemFromStatus(Status::OutOfRange("x"), "").TypeUri(),
            "urn:counterd:problem:overflow");
  EXPECT_EQ(ProblemFromStatus(Status::Aborted("x"), "").TypeUri(),
            "urn:counterd:problem:idempotency-key-in-flight");
  EXPECT_EQ(ProblemFromStatus(Status::AlreadyExists("x"), "").TypeUri(),
            "urn:counterd:problem:idempotency-key-reused");
}

TEST(DescribeTest, SlugsAreUniqueAndUrnSafe) {
  std::set<std::string_view> slugs;
  for (int i = 0; i <= static_cast<int>(ProblemType::kInsufficientStorage);
       ++i) {
    const ProblemTypeInfo& info = Describe(static_cast<ProblemType>(i));
    EXPECT_TRUE(slugs.insert(info.slug).second) << info.slug;
    for (const char c : info.slug) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '-') << info.slug;
    }
    EXPECT_GE(info.status, 400u);
    EXPECT_FALSE(info.title.empty());
  }
}

TEST(IsJsonMediaTypeTest, JsonAndSuffixesWithParameters) {
  EXPECT_TRUE(IsJsonMediaType("application/json"));
  EXPECT_TRUE(IsJsonMediaType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(IsJsonMediaType(" application/json ;charset=UTF-8"));
  EXPECT_TRUE(IsJsonMediaType("application/merge-patch+json"));
  EXPECT_FALSE(IsJsonMediaType("text/plain"));
  EXPECT_FALSE(IsJsonMediaType("application/x-www-form-urlencoded"));
  EXPECT_FALSE(IsJsonMediaType("application/jsonx"));
  EXPECT_FALSE(IsJsonMediaType("application/+json"));
  EXPECT_FALSE(IsJsonMediaType("text/x+json"));
  EXPECT_FALSE(IsJsonMediaType(""));
}

}  // namespace
}  // namespace counterd::http
