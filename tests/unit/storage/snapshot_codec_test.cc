// The snapshot document (docs/storage-format.md, "Snapshot"): version 2
// written and read, version 1 read and translated, newer versions refused,
// damage named by file and byte offset.
#include "snapshot_codec.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/core/crc32c.h"
#include "sample_records.h"

namespace counterd::storage {
namespace {

SnapshotData Sample() {
  SnapshotData s;
  s.last_seq = 77;
  s.counters = testing::SampleCounters();
  std::sort(s.counters.begin(), s.counters.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  s.idempotency = testing::SampleIdempotency();
  return s;
}

// Re-seals |body| (everything before the crc32c line) with a valid checksum,
// so the structural checks behind the checksum are reached.
std::string Seal(const std::string& body) {
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", crc32c::Value(body));
  return body + "\"crc32c\":\"" + hex + "\"}\n";
}

TEST(SnapshotCodecTest, EveryFieldRoundTripsAndIsReadable) {
  const std::string text = EncodeSnapshot(Sample());
  EXPECT_TRUE(text.starts_with(
      "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":77,\n"))
      << text;
  EXPECT_NE(text.find("\n{\"name\":\"rl:user42\",\"value\":3,\"version\":3,"
                      "\"expires_at_ms\":1763683260000},\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n{\"name\":\"a\",\"value\":-9223372036854775808,"
                      "\"version\":1},\n"),
            std::string::npos)
      << text;
  auto back = DecodeSnapshot(text, "state.json");
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->format, 2);
  EXPECT_EQ(back->last_seq, 77u);
  EXPECT_EQ(back->counters, Sample().counters);
  ASSERT_EQ(back->idempotency.size(), Sample().idempotency.size());
  for (std::size_t i = 0; i < back->idempotency.size(); ++i) {
    EXPECT_EQ(back->idempotency[i], Sample().idempotency[i])
        << "record " << i << ": " << Sample().idempotency[i].key;
  }
  EXPECT_EQ(EncodeSnapshot(*back), text) << "not a fixed point";
}

// The example in docs/storage-format.md is a valid snapshot, as printed.
TEST(SnapshotCodecTest, TheDocumentedExampleDecodes) {
  const std::string body =
      "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":42016,\n"
      "\"counters\":[\n"
      "{\"name\":\"orders\",\"value\":1042,\"version\":1042},\n"
      "{\"name\":\"rl:user42\",\"value\":3,\"version\":3,\"expires_at_ms\":"
      "1763683260000}\n"
      "],\n"
      "\"idempotency\":[\n"
      "{\"scope\":\"billing\",\"key\":\"k-1\",\"created_at_ms\":1763683200000,"
      "\"request\":{\"batch\":false,\"ops\":[{\"op\":\"increment\",\"name\":"
      "\"orders\",\"by\":1}]},\"outcome\":{\"status\":\"OK\",\"results\":[{"
      "\"counter\":{\"name\":\"orders\",\"value\":1042,\"version\":1042}}]}}\n"
      "],\n";
  const std::string doc = body + "\"crc32c\":\"d517363a\"}\n";
  auto decoded = DecodeSnapshot(doc, "state.json");
  ASSERT_TRUE(decoded) << decoded.error().ToString() << "\nthe right crc is "
                       << Seal(body).substr(body.size());
  EXPECT_EQ(decoded->last_seq, 42016u);
  ASSERT_EQ(decoded->idempotency.size(), 1u);
  EXPECT_EQ(decoded->idempotency[0].scope, "billing");
  EXPECT_EQ(decoded->idempotency[0].request,
            testing::Add("orders", 1).MakeFingerprint());
  // And the encoder writes exactly that document for that data.
  EXPECT_EQ(EncodeSnapshot(*decoded), doc);
}

TEST(SnapshotCodecTest, EmptyStoreRoundTrips) {
  const std::string text = EncodeSnapshot(SnapshotData{});
  EXPECT_EQ(text.substr(0, text.rfind("\"crc32c\"")),
            "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":0,\n"
            "\"counters\":[],\n\"idempotency\":[],\n");
  auto back = DecodeSnapshot(text, "state.json");
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->counters.empty());
  EXPECT_TRUE(back->idempotency.empty());
}

// The encoder hands its bytes out in pieces while it goes (a large store
// is written in bounded memory); the pieces make the same document.
TEST(SnapshotCodecTest, StreamedPiecesMakeTheSameDocument) {
  const SnapshotData s = Sample();
  SnapshotEncoder encoder(s.last_seq);
  std::string streamed;
  for (const auto& c : s.counters) {
    encoder.AddCounter(c);
    streamed += encoder.TakeBuffered();
  }
  encoder.BeginIdempotency();
  for (const auto& r : s.idempotency) {
    encoder.AddIdempotency(r);
    if (r.created_at_ms % 2 == 0) streamed += encoder.TakeBuffered();
  }
  encoder.Finish();
  streamed += encoder.TakeBuffered();
  EXPECT_EQ(encoder.bytes_total(), streamed.size());
  EXPECT_EQ(streamed, EncodeSnapshot(s));
}

TEST(SnapshotCodecTest, FlippedDigitIsCaughtByTheChecksum) {
  std::string text = EncodeSnapshot(Sample());
  const auto at = text.find("\"value\":3");
  text[at + 8] = '4';
  auto back = DecodeSnapshot(text, "state.json");
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(
      back.error().message().find("state.json at byte offset " +
                                  std::to_string(text.rfind("\"crc32c\""))),
      std::string::npos)
      << back.error().message();
}

// Recovery's path: each element handed over in document order, and a
// document whose checksum fails hands over nothing at all.
struct Recording final : SnapshotSink {
  void OnCounter(const domain::Counter& counter) override {
    counters.push_back(counter);
  }
  void OnIdempotency(domain::IdempotencyRecord&& record) override {
    records.push_back(std::move(record));
  }
  std::vector<domain::Counter> counters;
  std::vector<domain::IdempotencyRecord> records;
};

TEST(SnapshotCodecTest, TheSinkGetsEveryElementInOrder) {
  Recording sink;
  auto header = DecodeSnapshotInto(EncodeSnapshot(Sample()), "s", sink);
  ASSERT_TRUE(header) << header.error().ToString();
  EXPECT_EQ(header->format, 2);
  EXPECT_EQ(header->last_seq, 77U);
  EXPECT_EQ(sink.counters, Sample().counters);
  EXPECT_EQ(sink.records, Sample().idempotency);
}

TEST(SnapshotCodecTest, TheSinkGetsNothingFromADamagedDocument) {
  std::string text = EncodeSnapshot(Sample());
  text[text.find("\"value\":3") + 8] = '4';
  Recording sink;
  ASSERT_FALSE(DecodeSnapshotInto(text, "s", sink));
  EXPECT_TRUE(sink.counters.empty());
  EXPECT_TRUE(sink.records.empty());
}

TEST(SnapshotCodecTest, EmptyTruncatedAndGarbageAreDataLoss) {
  const std::string text = EncodeSnapshot(Sample());
  for (const std::string& bad :
       {std::string(), text.substr(0, text.size() / 2),
        text.substr(0, text.size() - 1), std::string("{}"),
        std::string("not json\n\"crc32c\":\"00000000\"}\n")}) {
    auto back = DecodeSnapshot(bad, "state.json");
    ASSERT_FALSE(back);
    EXPECT_EQ(back.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(back.error().message().find("state.json at byte offset "),
              std::string::npos);
  }
}

// A newer format is refused with its number, never read as best it can.
TEST(SnapshotCodecTest, NewerFormatIsRefusedClearly) {
  for (const char* header :
       {"{\"format\":3,\"kind\":\"counterd-snapshot\",\"last_seq\":1,\n",
        "{\"format\":3,\"last_seq\":1,\n", "{\"format\":17}\n"}) {
    const std::string doc =
        Seal(std::string(header) + "\"counters\":[],\n\"idempotency\":[],\n");
    auto back = DecodeSnapshot(doc, "/data/state.json");
    ASSERT_FALSE(back) << header;
    EXPECT_EQ(back.error().code(), StatusCode::kDataLoss);
    const std::string& m = back.error().message();
    EXPECT_TRUE(
        m.starts_with("/data/state.json at byte offset 0: snapshot "
                      "format "))
        << m;
    EXPECT_NE(m.find("is not one this counterd reads (1 and 2)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("run a newer counterd"), std::string::npos) << m;
  }
  auto version_two =
      DecodeSnapshot(Seal("{\"format\":\"counterd-snapshot\",\"version\":2,"
                          "\"last_seq\":1,\n\"counters\":[],\n"
                          "\"idempotency\":[],\n"),
                     "state.json");
  EXPECT_FALSE(version_two) << "only version 1 has the old header";
}

TEST(SnapshotCodecTest, BadEntryBehindAValidChecksumNamesItsLine) {
  const std::string header =
      "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":3,\n"
      "\"counters\":[\n"
      "{\"name\":\"a\",\"value\":1,\"version\":1},\n";
  for (const char* bad :
       {"{\"name\":\"b\",\"value\":1.5,\"version\":1}\n",
        "{\"name\":\"b\",\"value\":1,\"version\":-1}\n",
        "{\"name\":\"b\",\"value\":1,\"version\":1,\"expires_at_ms\":0}\n",
        "{\"name\":\"b\",\"value\":1,\"version\":1,\"extra\":1}\n",
        // Names the API would refuse (and bytes JSON cannot carry).
        "{\"name\":\"b/c\",\"value\":1,\"version\":1}\n",
        "{\"name\":\"\xc3\xa9\",\"value\":1,\"version\":1}\n",
        "{\"name\":\"\xff\",\"value\":1,\"version\":1}\n",
        "{\"name\":\"a\",\"value\":1,\"version\":1}\n"}) {
    auto back = DecodeSnapshot(
        Seal(header + bad + "],\n\"idempotency\":[\n],\n"), "state.json");
    ASSERT_FALSE(back) << bad;
    EXPECT_NE(back.error().message().find("state.json at byte offset " +
                                          std::to_string(header.size())),
              std::string::npos)
        << back.error().message();
  }
  // The same document with a good entry decodes.
  auto good = DecodeSnapshot(
      Seal(header +
           "{\"name\":\"b\",\"value\":-2,\"version\":4,\"expires_at_ms\":9}\n"
           "],\n\"idempotency\":[\n],\n"),
      "state.json");
  ASSERT_TRUE(good) << good.error().ToString();
  EXPECT_EQ(good->counters.back(), (domain::Counter{"b", -2, 4, 9}));
  EXPECT_EQ(good->counters.size(), 2u);
}

// Idempotency lines are checked member by member: unknown members, wrong
// types and unknown names are damage.
TEST(SnapshotCodecTest, BadIdempotencyEntriesAreDataLoss) {
  const std::string head =
      "{\"format\":2,\"kind\":\"counterd-snapshot\",\"last_seq\":3,\n"
      "\"counters\":[],\n\"idempotency\":[\n";
  const std::string good_request =
      "\"request\":{\"batch\":false,\"ops\":[{\"op\":\"increment\","
      "\"name\":\"a\",\"by\":1}]}";
  const auto line = [&](const std::string& request,
                        const std::string& outcome) {
    return "{\"scope\":\"\",\"key\":\"k\",\"created_at_ms\":1," + request +
           ",\"outcome\":" + outcome + "}\n";
  };
  ASSERT_TRUE(DecodeSnapshot(
      Seal(head + line(good_request, "{\"status\":\"OK\"}") + "],\n"),
      "state.json"))
      << "the control case must decode";
  for (const std::string& bad : {
           line(good_request, "{\"status\":\"NOPE\",\"message\":\"\"}"),
           line(good_request, "{\"status\":\"OK\",\"message\":\"m\"}"),
           line(good_request, "{\"status\":\"ABORTED\"}"),
           line(good_request, "{\"status\":\"OK\",\"results\":[]}"),
           line(good_request, "{\"status\":\"OK\",\"extra\":1}"),
           line(good_request,
                "{\"status\":\"OK\",\"results\":[{\"created\":false}]}"),
           line(good_request,
                "{\"status\":\"OK\",\"results\":[{\"counter\":{\"name\":"
                "\"a b\",\"value\":1,\"version\":1}}]}"),
           line(good_request,
                "{\"status\":\"ABORTED\",\"message\":\"m\",\"current\":{"
                "\"name\":\"\",\"value\":1,\"version\":1}}"),
           line("\"request\":{\"batch\":false,\"ops\":[]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":0,\"ops\":[{\"op\":\"get\","
                "\"name\":\"a\"}]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":false,\"ops\":[{\"op\":\"jump\","
                "\"name\":\"a\"}]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":false,\"ops\":[{\"op\":\"get\","
                "\"name\":\"a/b\"}]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":false,\"ops\":[{\"op\":\"get\","
                "\"name\":\"a\",\"by\":1}]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":false,\"ops\":[{\"op\":\"set\","
                "\"name\":\"a\",\"value\":1,\"ttl_seconds\":4294967296}]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":false,\"ops\":[{\"op\":\"set\","
                "\"name\":\"a\",\"value\":1,\"if_match\":[]}]}",
                "{\"status\":\"OK\"}"),
           line("\"request\":{\"batch\":false,\"ops\":[{\"op\":\"set\","
                "\"name\":\"a\",\"value\":1,\"if_none_match\":false}]}",
                "{\"status\":\"OK\"}"),
       }) {
    auto back = DecodeSnapshot(Seal(head + bad + "],\n"), "state.json");
    ASSERT_FALSE(back) << bad;
    EXPECT_NE(back.error().message().find("state.json at byte offset " +
                                          std::to_string(head.size())),
              std::string::npos)
        << back.error().message();
  }
}

// Version 1 (counterd 0.1): its header, counters without expiry and
// HTTP-spelled fingerprints, read into version-2 values.
TEST(SnapshotCodecTest, VersionOneIsReadAndTranslated) {
  const std::string v1 = Seal(
      "{\"format\":\"counterd-snapshot\",\"version\":1,\"last_seq\":9,\n"
      "\"counters\":[\n"
      "{\"name\":\"a:b\",\"value\":-9223372036854775808,\"version\":3},\n"
      "{\"name\":\"default\",\"value\":2,\"version\":2}\n"
      "],\n"
      "\"idempotency\":[\n"
      "{\"key\":\"k1\",\"fingerprint\":\"POST /counters/a:b/decrement "
      "by=-5\",\"created_at_ms\":11,\"outcome\":{\"code\":0,\"message\":\"\","
      "\"created\":true,\"counter\":{\"name\":\"a:b\",\"value\":5,"
      "\"version\":1}}},\n"
      "{\"key\":\"k2\",\"fingerprint\":\"POST /counter/increment by=1\","
      "\"created_at_ms\":12,\"outcome\":{\"code\":4,\"message\":\"would "
      "overflow\",\"created\":false}}\n"
      "],\n");
  auto back = DecodeSnapshot(v1, "state.json");
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->format, 1);
  EXPECT_EQ(back->last_seq, 9u);
  EXPECT_EQ(back->counters,
            (std::vector<domain::Counter>{{"a:b", testing::kI64Min, 3, 0},
                                          {"default", 2, 2, 0}}));
  ASSERT_EQ(back->idempotency.size(), 2u);
  const domain::IdempotencyRecord& k1 = back->idempotency[0];
  EXPECT_EQ(k1.scope, "");
  EXPECT_EQ(k1.key, "k1");
  EXPECT_EQ(k1.created_at_ms, 11);
  domain::Fingerprint v1_request =
      domain::SingleOperation(testing::SubOp("a:b", -5)).MakeFingerprint();
  v1_request.preconditions_unknown = true;  // format 1 kept none
  EXPECT_EQ(k1.request, v1_request);
  EXPECT_TRUE(k1.outcome.status.ok());
  EXPECT_EQ(
      k1.outcome.results,
      (std::vector<domain::OpResult>{{domain::Counter{"a:b", 5, 1, 0}, true}}));
  const domain::IdempotencyRecord& k2 = back->idempotency[1];
  domain::Fingerprint default_request =
      testing::Add("default", 1).MakeFingerprint();
  default_request.preconditions_unknown = true;
  EXPECT_EQ(k2.request, default_request);
  EXPECT_EQ(k2.outcome.status,
            Status(StatusCode::kOutOfRange, "would overflow"));
  EXPECT_EQ(k2.outcome.failed_op, 0u);
  EXPECT_TRUE(k2.outcome.results.empty());

  // Rewritten in version 2, the same data.
  auto again = DecodeSnapshot(EncodeSnapshot(*back), "state.json");
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->format, 2);
  EXPECT_EQ(again->counters, back->counters);
  EXPECT_EQ(again->idempotency, back->idempotency);
}

TEST(SnapshotCodecTest, VersionOneWithVersionTwoFieldsIsDamage) {
  for (const std::string_view bad : {
           "{\"name\":\"a\",\"value\":1,\"version\":1,\"expires_at_ms\":5}\n"
           "],\n\"idempotency\":[\n],\n",
           "],\n\"idempotency\":[\n{\"key\":\"k\",\"fingerprint\":\"PUT "
           "/counters/a value=1\",\"created_at_ms\":1,\"outcome\":{\"code\":"
           "0,\"message\":\"\",\"created\":false}}\n],\n",
           "],\n\"idempotency\":[\n{\"key\":\"k\",\"fingerprint\":\"POST "
           "/counters/a/increment by=1\",\"created_at_ms\":1,\"outcome\":{"
           "\"code\":11,\"message\":\"\",\"created\":false}}\n],\n",
       }) {
    std::string body =
        "{\"format\":\"counterd-snapshot\",\"version\":1,\"last_seq\":1,\n"
        "\"counters\":[\n";
    if (!bad.starts_with("{")) body.pop_back();  // no counters: "[" then "]"
    auto back = DecodeSnapshot(Seal(body + std::string(bad)), "state.json");
    EXPECT_FALSE(back) << bad;
  }
}

}  // namespace
}  // namespace counterd::storage
