// Version 1 of the storage format (counterd 0.1): its journal payloads and
// the translation of its HTTP-spelled fingerprints and single-operation
// outcomes into version-2 values (docs/storage-format.md, "Upgrading from
// version 1").
#include "legacy_format.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binary_io.h"
#include "sample_records.h"

namespace counterd::storage {
namespace {

using testing::kI64Max;
using testing::kI64Min;

domain::Fingerprint One(domain::Operation op) {
  return domain::SingleOperation(std::move(op)).MakeFingerprint();
}

TEST(LegacyFormatTest, TranslatesEveryFingerprintVersionOneWrote) {
  struct Case {
    const char* v1;
    domain::Fingerprint v2;
  };
  const Case cases[] = {
      {"POST /counters/orders/increment by=1",
       One(testing::AddOp("orders", 1))},
      {"POST /counters/user:42:logins/increment by=-7",
       One(testing::AddOp("user:42:logins", -7))},
      {"POST /counters/a.b_c-d/decrement by=5",
       One(testing::SubOp("a.b_c-d", 5))},
      {"POST /counters/x/decrement by=-9223372036854775808",
       One(testing::SubOp("x", kI64Min))},
      {"POST /counters/x/increment by=9223372036854775807",
       One(testing::AddOp("x", kI64Max))},
      {"POST /counter/increment by=0", One(testing::AddOp("default", 0))},
      // A counter may be named like a route segment.
      {"POST /counters/increment/increment by=2",
       One(testing::AddOp("increment", 2))},
      {"POST /counters/decrement/increment by=2",
       One(testing::AddOp("decrement", 2))},
  };
  for (const Case& c : cases) {
    const auto translated = TranslateV1Fingerprint(c.v1);
    ASSERT_TRUE(translated.has_value()) << c.v1;
    EXPECT_EQ(*translated, c.v2) << c.v1;
    EXPECT_FALSE(translated->batch);
  }
}

TEST(LegacyFormatTest, RefusesFingerprintsVersionOneNeverWrote) {
  for (const char* bad : {
           "",
           "POST /counters/x/increment",
           "POST /counters/x/increment by=",
           "POST /counters/x/increment by=1x",
           "POST /counters/x/increment by= 1",
           "POST /counters/x/increment by=+1",
           "POST /counters/x/increment by=9223372036854775808",
           "POST /counters/x/increment  by=1",
           "PUT /counters/x value=1",
           "DELETE /counters/x",
           "post /counters/x/increment by=1",
           "POST /counters/x by=1",
           "POST /counters//increment by=1",
           // "/counters/" and "/increment" overlap: no name at all.
           "POST /counters/increment by=1",
           "POST /counters/decrement by=1",
           "POST /counters/a/b/increment by=1",
           "POST /counters/../increment by=1",
           "POST /counter/decrement by=1",
           "POST /counter/increment/ by=1",
           "POST /counters/x/increment by=1 ",
           "POST /counters/x/incrementby=1",
       }) {
    EXPECT_FALSE(TranslateV1Fingerprint(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(LegacyFormatTest, TranslatesOutcomes) {
  const domain::TransactionOutcome ok =
      TranslateV1Outcome(Status::Ok(), domain::Counter{"a", 5, 2, 0}, false);
  EXPECT_TRUE(ok.status.ok());
  EXPECT_EQ(
      ok.results,
      (std::vector<domain::OpResult>{{domain::Counter{"a", 5, 2, 0}, false}}));
  EXPECT_FALSE(ok.failed_op.has_value());
  EXPECT_FALSE(ok.replayed);

  const domain::TransactionOutcome refused = TranslateV1Outcome(
      Status::OutOfRange("would overflow"), std::nullopt, false);
  EXPECT_EQ(refused.status, Status::OutOfRange("would overflow"));
  EXPECT_EQ(refused.failed_op, 0u);
  EXPECT_TRUE(refused.results.empty());
  EXPECT_FALSE(refused.current.has_value());
}

// -- journal payloads --------------------------------------------------------

std::string V1Idempotency(const std::string& key,
                          const std::string& fingerprint,
                          std::int64_t created_ms, std::uint8_t code,
                          const std::string& message, std::uint8_t flags,
                          const domain::Counter* counter) {
  std::string out(1, '\x03');
  PutString(out, key);
  PutString(out, fingerprint);
  PutFixed<std::int64_t>(out, created_ms);
  PutFixed<std::uint8_t>(out, code);
  PutString(out, message);
  PutFixed<std::uint8_t>(out, flags);
  if (counter != nullptr) {
    PutString(out, counter->name);
    PutFixed<std::int64_t>(out, counter->value);
    PutFixed<std::uint64_t>(out, counter->version);
  }
  return out;
}

std::string V1Payload(const std::vector<std::string>& effects) {
  std::string out;
  PutFixed<std::uint32_t>(out, static_cast<std::uint32_t>(effects.size()));
  for (const std::string& e : effects) out += e;
  return out;
}

TEST(LegacyFormatTest, DecodesEveryVersionOneEffect) {
  std::string put(1, '\x01');
  PutString(put, "rl:1");
  PutFixed<std::int64_t>(put, kI64Min);
  PutFixed<std::uint64_t>(put, 3);
  std::string del(1, '\x02');
  PutString(del, "gone");
  const domain::Counter counter{"a:b", 5, 1, 0};
  const std::string payload = V1Payload({
      put,
      del,
      V1Idempotency("k-1", "POST /counters/a:b/increment by=5", 11, 0, "", 3,
                    &counter),
      V1Idempotency("k-2", "POST /counter/increment by=1", 12, 4,
                    "would overflow", 0, nullptr),
  });
  auto effects = DecodeV1Payload(payload);
  ASSERT_TRUE(effects) << effects.error().ToString();
  ASSERT_EQ(effects->size(), 4u);
  EXPECT_TRUE((*effects)[0] == Effect(PutCounter{{"rl:1", kI64Min, 3, 0}}));
  EXPECT_TRUE((*effects)[1] == Effect(DeleteCounter{"gone"}));
  domain::IdempotencyRecord k1;
  k1.key = "k-1";
  k1.request = One(testing::AddOp("a:b", 5));
  k1.created_at_ms = 11;
  k1.outcome.results = {{counter, true}};
  EXPECT_TRUE((*effects)[2] == Effect(PutIdempotency{k1}));
  domain::IdempotencyRecord k2;
  k2.key = "k-2";
  k2.request = One(testing::AddOp("default", 1));
  k2.created_at_ms = 12;
  k2.outcome.status = Status::OutOfRange("would overflow");
  k2.outcome.failed_op = 0;
  EXPECT_TRUE((*effects)[3] == Effect(PutIdempotency{k2}));

  for (std::size_t cut = 0; cut < payload.size(); ++cut) {
    EXPECT_FALSE(DecodeV1Payload(payload.substr(0, cut))) << cut;
  }
  EXPECT_FALSE(DecodeV1Payload(payload + "x"));
}

TEST(LegacyFormatTest, UnknownFingerprintStatusOrTagIsDataLoss) {
  const auto refused = [](const std::string& effect, const char* what) {
    auto decoded = DecodeV1Payload(V1Payload({effect}));
    ASSERT_FALSE(decoded) << what;
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss) << what;
  };
  refused(V1Idempotency("k", "PUT /counters/a value=1", 1, 0, "", 0, nullptr),
          "a fingerprint of another shape");
  // Version 1 persisted 0 (OK) .. 10 (INTERNAL); 11 came with version 2.
  refused(V1Idempotency("k", "POST /counter/increment by=1", 1, 11, "m", 0,
                        nullptr),
          "LIMIT_EXCEEDED in a version-1 record");
  refused(V1Idempotency("k", "POST /counter/increment by=1", 1, 200, "m", 0,
                        nullptr),
          "an unknown status");
  std::string v2_put(1, '\x04');
  PutString(v2_put, "a");
  PutFixed<std::int64_t>(v2_put, 1);
  PutFixed<std::uint64_t>(v2_put, 1);
  PutFixed<std::int64_t>(v2_put, 0);
  refused(v2_put, "a version-2 tag");
  refused(std::string(1, '\x05'), "a version-2 tag");
}

// Version 1 checked names and keys at the API as version 2 does: a record
// with one the API would refuse is damage, not a counter no request can
// reach.
TEST(LegacyFormatTest, NamesAndKeysTheApiWouldRefuseAreDataLoss) {
  std::string put(1, '\x01');
  PutString(put, "a/b");
  PutFixed<std::int64_t>(put, 1);
  PutFixed<std::uint64_t>(put, 1);
  EXPECT_FALSE(DecodeV1Payload(V1Payload({put})));
  std::string del(1, '\x02');
  PutString(del, "");
  EXPECT_FALSE(DecodeV1Payload(V1Payload({del})));
  const domain::Counter bad_counter{"x y", 1, 1, 0};
  EXPECT_FALSE(DecodeV1Payload(V1Payload({V1Idempotency(
      "k", "POST /counter/increment by=1", 1, 0, "", 1, &bad_counter)})));
  EXPECT_FALSE(DecodeV1Payload(V1Payload(
      {V1Idempotency("key with spaces", "POST /counter/increment by=1", 1, 0,
                     "", 0, nullptr)})));
  EXPECT_FALSE(DecodeV1Payload(V1Payload({V1Idempotency(
      "k", "POST /counter/increment by=1", 1, 4, "\xff", 0, nullptr)})));
}

}  // namespace
}  // namespace counterd::storage
