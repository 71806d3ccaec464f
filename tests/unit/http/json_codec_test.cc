#include "api/json_codec.h"

#include <climits>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace counterd::http {
namespace {

std::int64_t Value(const Decoded<DeltaBody>& r) {
  EXPECT_TRUE(std::holds_alternative<DeltaBody>(r))
      << std::get<BodyError>(r).detail;
  return std::holds_alternative<DeltaBody>(r) ? std::get<DeltaBody>(r).by
                                              : -999;
}
std::int64_t Value(const Decoded<SetBody>& r) {
  EXPECT_TRUE(std::holds_alternative<SetBody>(r))
      << std::get<BodyError>(r).detail;
  return std::holds_alternative<SetBody>(r) ? std::get<SetBody>(r).value : -999;
}

template <typename T>
ProblemType ErrorType(const Decoded<T>& r) {
  EXPECT_TRUE(std::holds_alternative<BodyError>(r));
  return std::holds_alternative<BodyError>(r) ? std::get<BodyError>(r).type
                                              : ProblemType::kInternal;
}
template <typename T>
std::string ErrorDetail(const Decoded<T>& r) {
  return std::holds_alternative<BodyError>(r) ? std::get<BodyError>(r).detail
                                              : "";
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

TEST(DecodeDeltaBodyTest, BoundsAndTtl) {
  const auto body =
      DecodeDeltaBody(R"({"by":2,"min":-5,"max":100,"ttl_seconds":60})");
  ASSERT_TRUE(std::holds_alternative<DeltaBody>(body));
  const DeltaBody& d = std::get<DeltaBody>(body);
  EXPECT_EQ(d.by, 2);
  EXPECT_EQ(d.min, -5);
  EXPECT_EQ(d.max, 100);
  EXPECT_EQ(d.ttl_seconds, 60u);
  EXPECT_EQ(std::get<DeltaBody>(DecodeDeltaBody(R"({"max":3})")).by, 1);
  EXPECT_EQ(std::get<DeltaBody>(DecodeDeltaBody(R"({"min":3,"max":3})")).min,
            3);
  // min > max, out-of-range ttl, wrong types: invalid-field.
  for (const char* bad :
       {R"({"min":2,"max":1})", R"({"ttl_seconds":0})",
        R"({"ttl_seconds":31536001})", R"({"ttl_seconds":-1})",
        R"({"ttl_seconds":1.5})", R"({"max":"1"})", R"({"min":null})",
        R"({"max":9223372036854775808})"}) {
    EXPECT_EQ(ErrorType(DecodeDeltaBody(bad)), ProblemType::kInvalidField)
        << bad;
  }
  EXPECT_NE(ErrorDetail(DecodeDeltaBody(R"({"min":2,"max":1})")).find("min"),
            std::string::npos);
  EXPECT_EQ(std::get<DeltaBody>(DecodeDeltaBody(R"({"ttl_seconds":31536000})"))
                .ttl_seconds,
            31536000u);
}

TEST(DecodeBatchBodyTest, EveryOperationKind) {
  const auto body = DecodeBatchBody(R"({"operations":[
    {"op":"increment","name":"a","by":2,"min":0,"max":9,"ttl_seconds":5,
     "if_match":"\"3\""},
    {"op":"decrement","name":"b"},
    {"op":"set","name":"c","value":-1,"ttl_seconds":9,"if_none_match":"*"},
    {"op":"delete","name":"d","if_match":"*"},
    {"op":"get","name":"e"}]})");
  ASSERT_TRUE(std::holds_alternative<std::vector<BatchOperation>>(body))
      << ErrorDetail(body);
  const auto& ops = std::get<std::vector<BatchOperation>>(body);
  ASSERT_EQ(ops.size(), 5u);
  EXPECT_EQ(ops[0].kind, domain::OpKind::kAdd);
  EXPECT_EQ(ops[0].operand, 2);
  EXPECT_EQ(ops[0].max, 9);
  EXPECT_EQ(ops[0].if_match, "\"3\"");
  EXPECT_EQ(ops[1].kind, domain::OpKind::kSubtract);
  EXPECT_EQ(ops[1].operand, 1);
  EXPECT_EQ(ops[2].kind, domain::OpKind::kSet);
  EXPECT_EQ(ops[2].operand, -1);
  EXPECT_TRUE(ops[2].if_none_match);
  EXPECT_EQ(ops[3].kind, domain::OpKind::kDelete);
  EXPECT_EQ(ops[4].kind, domain::OpKind::kGet);
  EXPECT_EQ(ops[4].name, "e");
}

TEST(DecodeBatchBodyTest, StrictValidationNamesTheOperation) {
  std::string hundred_and_one = R"({"operations":[)";
  for (int i = 0; i < 101; ++i) {
    hundred_and_one += std::string(i ? "," : "") + R"({"op":"get","name":"a"})";
  }
  hundred_and_one += "]}";
  for (const std::string& bad : {
           std::string(R"({"operations":[]})"),
           std::string(R"({"operations":{}})"),
           std::string(R"({"ops":[]})"),
           std::string(R"({"operations":[{"op":"get","name":"a"}],"x":1})"),
           hundred_and_one,
       }) {
    EXPECT_EQ(ErrorType(DecodeBatchBody(bad)), ProblemType::kInvalidField)
        << bad;
  }
  EXPECT_EQ(ErrorType(DecodeBatchBody("[1]")), ProblemType::kInvalidJson);
  EXPECT_EQ(ErrorType(DecodeBatchBody("")), ProblemType::kInvalidJson);
  const auto wrong = DecodeBatchBody(
      R"({"operations":[{"op":"get","name":"a"},{"op":"get","name":"b"},)"
      R"({"op":"set","name":"c"}]})");
  EXPECT_EQ(ErrorDetail(wrong).rfind("operations[2]: ", 0), 0u)
      << ErrorDetail(wrong);
  for (const char* op :
       {R"({"op":"get","name":"a","by":1})",
        R"({"op":"delete","name":"a","value":1})",
        R"({"op":"set","name":"a","value":1,"min":0})",
        R"({"op":"increment","name":"a","if_none_match":"*"})",
        R"({"op":"set","name":"a","value":1,"if_none_match":"\"1\""})",
        R"({"op":"increment"})", R"({"op":"increment","name":7})",
        R"({"op":"bump","name":"a"})", R"({"name":"a"})", R"(7)",
        R"({"op":"increment","name":"a","min":5,"max":4})"}) {
    EXPECT_EQ(ErrorType(DecodeBatchBody(std::string(R"({"operations":[)") + op +
                                        "]}")),
              ProblemType::kInvalidField)
        << op;
  }
}

TEST(DecodeDeltaBodyTest, DeepNestingIsRefusedNotACrash) {
  const std::string deep(60000, '[');
  EXPECT_EQ(ErrorType(DecodeDeltaBody(deep)), ProblemType::kInvalidJson);
}

TEST(DecodeSetBodyTest, RequiresValue) {
  EXPECT_EQ(Value(DecodeSetBody(R"({"value":-7})")), -7);
  EXPECT_EQ(std::get<SetBody>(DecodeSetBody(R"({"value":1,"ttl_seconds":3})"))
                .ttl_seconds,
            3u);
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
  EXPECT_EQ(EncodeCounter({"w", 1, 1, 1'764'594'000'250}),
            R"({"name":"w","value":1,"version":1,)"
            R"("expires_at":"2025-12-01T13:00:00.250Z"})");
}

TEST(EncodeTest, BatchResults) {
  EXPECT_EQ(EncodeBatchResults(
                {{domain::Counter{"a", 1, 1}, true}, {std::nullopt, false}}),
            R"({"results":[{"name":"a","value":1,"version":1},null]})");
}

TEST(EncodeTest, Rfc3339Millis) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(951'782'400'999), "2000-02-29T00:00:00.999Z");
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
