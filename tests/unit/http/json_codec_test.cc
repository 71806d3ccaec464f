#include "api/json_codec.h"

#include <climits>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace counterd::http {
namespace {

std::int64_t Value(const IntegerOrError& r) {
  EXPECT_TRUE(std::holds_alternative<std::int64_t>(r))
      << std::get<BodyError>(r).detail;
  return std::holds_alternative<std::int64_t>(r) ? std::get<std::int64_t>(r)
                                                 : -999;
}

ProblemType ErrorType(const IntegerOrError& r) {
  EXPECT_TRUE(std::holds_alternative<BodyError>(r));
  return std::holds_alternative<BodyError>(r) ? std::get<BodyError>(r).type
                                              : ProblemType::kInternal;
}

TEST(DecodeDeltaBodyTest, EmptyOrNoFieldMeansOne) {
  EXPECT_EQ(Value(DecodeDeltaBody("")), 1);
  EXPECT_EQ(Value(DecodeDeltaBody("{}")), 1);
  EXPECT_EQ(Value(DecodeDeltaBody(" { } ")), 1);
}

TEST(DecodeDeltaBodyTest, AnyInt64) {
  EXPECT_EQ(Value(DecodeDeltaBody(R"({"by": 5})")), 5);
  EXPECT_EQ(Value(DecodeDeltaBody(R"({"by":-3})")), -3);
  EXPECT_EQ(Value(DecodeDeltaBody(R"({"by":0})")), 0);
  EXPECT_EQ(Value(DecodeDeltaBody(R"({"by":9223372036854775807})")), INT64_MAX);
  EXPECT_EQ(Value(DecodeDeltaBody(R"({"by":-9223372036854775808})")),
            INT64_MIN);
}

TEST(DecodeDeltaBodyTest, MalformedJsonIsInvalidJson) {
  for (const char* body :
       {"{", R"({"by":})", R"({"by":1)", R"({"by":1}x)", "nul", "{by:1}",
        "{'by':1}", R"({"by":1,})", R"({"by":01})", "\xff\xfe{}", " "}) {
    EXPECT_EQ(ErrorType(DecodeDeltaBody(body)), ProblemType::kInvalidJson)
        << body;
  }
}

TEST(DecodeDeltaBodyTest, NonObjectIsInvalidJson) {
  for (const char* body : {"[]", "1", "\"x\"", "null", "true"}) {
    EXPECT_EQ(ErrorType(DecodeDeltaBody(body)), ProblemType::kInvalidJson)
        << body;
  }
}

TEST(DecodeDeltaBodyTest, WrongTypesAndRangesAreInvalidField) {
  for (const char* body :
       {R"({"by":"1"})", R"({"by":1.5})", R"({"by":1.0})", R"({"by":1e3})",
        R"({"by":true})", R"({"by":null})", R"({"by":[1]})", R"({"by":{}})",
        R"({"by":9223372036854775808})", R"({"by":-9223372036854775809})",
        R"({"by":18446744073709551616})", R"({"by":1000000000000000000000})"}) {
    EXPECT_EQ(ErrorType(DecodeDeltaBody(body)), ProblemType::kInvalidField)
        << body;
  }
}

TEST(DecodeDeltaBodyTest, UnknownFieldsAreInvalidField) {
  EXPECT_EQ(ErrorType(DecodeDeltaBody(R"({"by":1,"x":2})")),
            ProblemType::kInvalidField);
  EXPECT_EQ(ErrorType(DecodeDeltaBody(R"({"By":1})")),
            ProblemType::kInvalidField);
  EXPECT_EQ(ErrorType(DecodeDeltaBody(R"({"value":1})")),
            ProblemType::kInvalidField);
}

TEST(DecodeDeltaBodyTest, DeepNestingIsRefusedNotACrash) {
  const std::string deep(60000, '[');
  EXPECT_EQ(ErrorType(DecodeDeltaBody(deep)), ProblemType::kInvalidJson);
}

TEST(DecodeSetBodyTest, RequiresValue) {
  EXPECT_EQ(Value(DecodeSetBody(R"({"value":-7})")), -7);
  EXPECT_EQ(ErrorType(DecodeSetBody("")), ProblemType::kInvalidJson);
  EXPECT_EQ(ErrorType(DecodeSetBody("{}")), ProblemType::kInvalidField);
  EXPECT_EQ(ErrorType(DecodeSetBody(R"({"by":1})")),
            ProblemType::kInvalidField);
  EXPECT_EQ(ErrorType(DecodeSetBody(R"({"value":1,"version":3})")),
            ProblemType::kInvalidField);
}

TEST(EncodeTest, Counter) {
  EXPECT_EQ(EncodeCounter({"a", -5, 3}),
            R"({"name":"a","value":-5,"version":3})");
}

// EncodeCounter writes the common case by hand; it must agree byte for byte
// with the general encoder, including at the ends of the integer ranges and
// for a name that needs escaping.
TEST(EncodeTest, CounterFastPathMatchesTheGeneralEncoder) {
  const auto general = [](const domain::Counter& c) {
    return nlohmann::ordered_json{
        {"name", c.name}, {"value", c.value}, {"version", c.version}}
        .dump();
  };
  const std::vector<domain::Counter> cases = {
      {"orders:2026-11.eu_west", 0, 1},
      {"x", std::numeric_limits<std::int64_t>::min(), 1},
      {"x", std::numeric_limits<std::int64_t>::max(),
       std::numeric_limits<std::uint64_t>::max()},
      {"needs \"escaping\"\n", -1, 2},
      {"", 7, 0},
  };
  for (const domain::Counter& c : cases) {
    EXPECT_EQ(EncodeCounter(c), general(c)) << c.name;
  }
}

TEST(EncodeTest, PageWithAndWithoutNext) {
  service::ListPage page;
  EXPECT_EQ(EncodeCounterPage(page), R"({"counters":[],"next":null})");
  page.counters = {{"a", 1, 1}, {"b", 2, 1}};
  page.next = "b";
  EXPECT_EQ(EncodeCounterPage(page),
            R"({"counters":[{"name":"a","value":1,"version":1},)"
            R"({"name":"b","value":2,"version":1}],"next":"b"})");
}

TEST(EncodeTest, ProblemHasAllMembersAndSurvivesBadUtf8) {
  const Problem p =
      MakeProblem(ProblemType::kNotFound, "no \"x\"", "/counters/\xff");
  const std::string json = EncodeProblem(p);
  EXPECT_EQ(json.find(R"({"type":"urn:counterd:problem:not-found",)"
                      R"("title":"Counter not found","status":404,)"
                      R"("detail":"no \"x\"","instance":"/counters/)"),
            0u)
      << json;
}

TEST(EncodeTest, ServiceInfo) {
  EXPECT_EQ(EncodeServiceInfo(
                {"counterd", "1.2.3", "pod-0", 5, "2024-01-02T03:04:05Z"}),
            R"({"name":"counterd","version":"1.2.3","hostname":"pod-0",)"
            R"("uptime_seconds":5,"started_at":"2024-01-02T03:04:05Z"})");
}

}  // namespace
}  // namespace counterd::http
