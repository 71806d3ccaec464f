#include "storage/snapshot_codec.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "counterd/core/crc32c.h"

namespace counterd::storage {
namespace {

SnapshotData Sample() {
  SnapshotData s;
  s.last_seq = 77;
  s.counters = {{"a", INT64_MIN, 1}, {"b\"q", 2, 3}, {"user:42", INT64_MAX, 9}};
  IdempotencyRecord r;
  r.key = "k\"1";
  r.fingerprint = "POST /counters/a/increment by=1";
  r.created_at_ms = 123;
  r.outcome.counter = domain::Counter{"a", 1, 2};
  s.idempotency.push_back(r);
  IdempotencyRecord refused;
  refused.key = "k2";
  refused.outcome.status = Status::OutOfRange("overflow");
  s.idempotency.push_back(refused);
  return s;
}

TEST(SnapshotCodecTest, RoundTripsAndIsReadable) {
  const std::string text = EncodeSnapshot(Sample());
  EXPECT_NE(text.find("{\"name\":\"user:42\",\"value\":9223372036854775807,"
                      "\"version\":9}\n"),
            std::string::npos)
      << text;
  auto back = DecodeSnapshot(text, "state.json");
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->last_seq, 77u);
  EXPECT_EQ(back->counters, Sample().counters);
  EXPECT_EQ(back->idempotency, Sample().idempotency);
}

TEST(SnapshotCodecTest, EmptyStoreRoundTrips) {
  auto back = DecodeSnapshot(EncodeSnapshot(SnapshotData{}), "state.json");
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->counters.empty());
}

TEST(SnapshotCodecTest, FlippedDigitIsCaughtByTheChecksum) {
  std::string text = EncodeSnapshot(Sample());
  const auto at = text.find("\"value\":2");
  text[at + 8] = '3';
  auto back = DecodeSnapshot(text, "state.json");
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(back.error().message().find("state.json at byte offset"),
            std::string::npos);
}

TEST(SnapshotCodecTest, EmptyTruncatedAndGarbageAreDataLoss) {
  const std::string text = EncodeSnapshot(Sample());
  for (const std::string& bad :
       {std::string(), text.substr(0, text.size() / 2), std::string("{}"),
        std::string("not json\n\"crc32c\":\"00000000\"}\n")}) {
    auto back = DecodeSnapshot(bad, "state.json");
    ASSERT_FALSE(back);
    EXPECT_EQ(back.error().code(), StatusCode::kDataLoss);
  }
}

// Re-seals |body| (everything before the crc32c line) with a valid checksum,
// so the structural checks behind the checksum are reached.
std::string Seal(const std::string& body) {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", crc32c::Value(body));
  return body + "\"crc32c\":\"" + hex + "\"}\n";
}

TEST(SnapshotCodecTest, BadEntryBehindAValidChecksumNamesItsLine) {
  const std::string header =
      "{\"format\":\"counterd-snapshot\",\"version\":1,\"last_seq\":3,\n"
      "\"counters\":[\n"
      "{\"name\":\"a\",\"value\":1,\"version\":1},\n";
  const std::string bad = "{\"name\":\"b\",\"value\":1.5,\"version\":1}\n";
  auto back = DecodeSnapshot(Seal(header + bad + "],\n\"idempotency\":[\n],\n"),
                             "state.json");
  ASSERT_FALSE(back);
  EXPECT_NE(back.error().message().find("state.json at byte offset " +
                                        std::to_string(header.size())),
            std::string::npos)
      << back.error().message();
  // The same document with a good entry decodes.
  auto good = DecodeSnapshot(
      Seal(header + "{\"name\":\"b\",\"value\":-2,\"version\":4}\n"
                    "],\n\"idempotency\":[\n],\n"),
      "state.json");
  ASSERT_TRUE(good) << good.error().ToString();
  EXPECT_EQ(good->counters.back(), (domain::Counter{"b", -2, 4}));
  EXPECT_EQ(good->counters.size(), 2u);
  // Empty arrays may also be written on one line.
  auto compact = DecodeSnapshot(
      Seal("{\"format\":\"counterd-snapshot\",\"version\":1,\"last_seq\":0,\n"
           "\"counters\":[],\n\"idempotency\":[],\n"),
      "state.json");
  ASSERT_TRUE(compact) << compact.error().ToString();
  EXPECT_TRUE(compact->counters.empty());
}

}  // namespace
}  // namespace counterd::storage
