#include "record_codec.h"

#include <string>

#include <gtest/gtest.h>

namespace counterd::storage::postgres {
namespace {

domain::Operation Op(domain::OpKind kind, const char* name, std::int64_t v) {
  domain::Operation op;
  op.kind = kind;
  op.name = *domain::CounterName::Parse(name);
  op.operand = v;
  return op;
}

domain::Fingerprint FullFingerprint() {
  domain::Fingerprint f;
  f.batch = true;
  domain::Operation add = Op(domain::OpKind::kAdd, "rl:user42", INT64_MIN);
  add.min = -5;
  add.max = 100;
  add.ttl_seconds = domain::kMaxTtlSeconds;
  add.precondition.version_in = {3, 4};
  domain::Operation set = Op(domain::OpKind::kSet, "a", 7);
  set.precondition.must_be_absent = true;
  domain::Operation del = Op(domain::OpKind::kDelete, "b", 0);
  del.precondition.must_exist = true;
  f.ops = {add, set, del, Op(domain::OpKind::kGet, "c", 0),
           Op(domain::OpKind::kSubtract, "d", 1)};
  return f;
}

TEST(RecordCodecTest, FingerprintRoundTrips) {
  const domain::Fingerprint f = FullFingerprint();
  auto decoded = DecodeFingerprint(EncodeFingerprint(f));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, f);
}

TEST(RecordCodecTest, OkOutcomeRoundTrips) {
  domain::TransactionOutcome o;
  o.results.push_back({domain::Counter{"a", -3, 9, 1700000000123}, true});
  o.results.push_back({std::nullopt, false});
  auto decoded = DecodeOutcome(EncodeOutcome(o));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, o);
}

TEST(RecordCodecTest, RefusalRoundTripsWithItsMessageAndCounter) {
  domain::TransactionOutcome o =
      domain::Refusal(Status::LimitExceeded("would pass its maximum 100"));
  o.failed_op = 2;
  o.current = domain::Counter{"rl", 100, 100, 42};
  auto decoded = DecodeOutcome(EncodeOutcome(o));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, o);
}

TEST(RecordCodecTest, EveryStatusCodeRoundTrips) {
  for (StatusCode code :
       {StatusCode::kInvalidArgument, StatusCode::kNotFound,
        StatusCode::kFailedPrecondition, StatusCode::kOutOfRange,
        StatusCode::kAborted, StatusCode::kAlreadyExists,
        StatusCode::kResourceExhausted, StatusCode::kUnavailable,
        StatusCode::kDataLoss, StatusCode::kInternal,
        StatusCode::kLimitExceeded}) {
    const domain::TransactionOutcome o = domain::Refusal(Status(code, "m"));
    auto decoded = DecodeOutcome(EncodeOutcome(o));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->status.code(), code);
  }
}

TEST(RecordCodecTest, TheFormatIsPinned) {
  // Stored in databases: a change here must be a new format version.
  domain::Fingerprint f;
  f.ops = {Op(domain::OpKind::kAdd, "a", 1)};
  const std::string expected(
      "\x01"              // format version
      "\x00"              // batch
      "\x01\x00\x00\x00"  // one operation
      "\x02"              // kAdd
      "\x01\x00\x00\x00"  // name length
      "a"
      "\x01\x00\x00\x00\x00\x00\x00\x00"  // operand
      "\x00\x00\x00\x00"                  // no If-Match versions
      "\x00\x00"                          // must_exist, must_be_absent
      "\x00\x00\x00",                     // no min, max, ttl
      29);
  EXPECT_EQ(EncodeFingerprint(f), expected);
}

TEST(RecordCodecTest, DamageIsDataLoss) {
  const std::string good = EncodeFingerprint(FullFingerprint());
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    auto r = DecodeFingerprint(good.substr(0, cut));
    ASSERT_FALSE(r.has_value()) << "cut at " << cut;
    EXPECT_EQ(r.error().code(), StatusCode::kDataLoss);
  }
  EXPECT_FALSE(DecodeFingerprint(good + "x").has_value());
  std::string bad_version = good;
  bad_version[0] = 2;
  EXPECT_FALSE(DecodeFingerprint(bad_version).has_value());
  std::string bad_kind = good;
  bad_kind[6] = 9;
  EXPECT_FALSE(DecodeFingerprint(bad_kind).has_value());
  std::string huge_count = good;
  huge_count[2] = '\xff';
  huge_count[3] = '\xff';
  EXPECT_FALSE(DecodeFingerprint(huge_count).has_value());
}

}  // namespace
}  // namespace counterd::storage::postgres
