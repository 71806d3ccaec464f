// The journal's byte format, version 2 (docs/storage-format.md, "Journal
// files"): the file header, the record frame and every effect, pinned to
// the documented bytes, round-tripped, and refused when malformed.
#include "journal_format.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binary_io.h"
#include "counterd/core/crc32c.h"
#include "sample_records.h"

namespace counterd::storage {
namespace {

using testing::SampleEffects;

std::string Payload(const std::vector<Effect>& effects) {
  std::string record;
  EncodeRecord(1, effects, record);
  return record.substr(kRecordHeaderSize);
}

std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

TEST(JournalHeaderTest, IsTheDocumentedTwentyFourBytes) {
  const std::string header = EncodeJournalHeader(0x0102030405060708ull);
  ASSERT_EQ(header.size(), kJournalHeaderSize);
  EXPECT_EQ(header.substr(0, 8), "CNTRDJNL");
  EXPECT_EQ(Hex(header.substr(8, 4)), "02000000");  // version 2, LE
  EXPECT_EQ(Hex(header.substr(12, 8)), "0807060504030201");
  EXPECT_EQ(LoadFixed<std::uint32_t>(header.data() + 20),
            crc32c::Value(std::string_view(header).substr(0, 20)));
  auto decoded = DecodeJournalHeader(header);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(decoded->version, 2u);
  EXPECT_EQ(decoded->first_seq, 0x0102030405060708ull);
}

TEST(JournalHeaderTest, EveryFlippedBitIsACrcMismatch) {
  const std::string header = EncodeJournalHeader(42);
  for (std::size_t i = 0; i < header.size() * 8; ++i) {
    std::string bad = header;
    bad[i / 8] = static_cast<char>(bad[i / 8] ^ (1 << (i % 8)));
    auto decoded = DecodeJournalHeader(bad);
    ASSERT_FALSE(decoded) << "bit " << i;
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
  }
}

TEST(JournalFormatTest, EveryEffectRoundTrips) {
  std::string bytes;
  EncodeRecord(42, SampleEffects(), bytes);
  ASSERT_GT(bytes.size(), kRecordHeaderSize);
  const RecordHeader h = DecodeHeader(bytes);
  EXPECT_EQ(h.seq, 42u);
  EXPECT_EQ(h.length, bytes.size() - kRecordHeaderSize);
  EXPECT_EQ(h.crc, RecordChecksum(bytes));
  auto effects =
      DecodePayload(std::string_view(bytes).substr(kRecordHeaderSize));
  ASSERT_TRUE(effects.has_value()) << effects.error().ToString();
  ASSERT_EQ(effects->size(), SampleEffects().size());
  for (std::size_t i = 0; i < effects->size(); ++i) {
    EXPECT_TRUE((*effects)[i] == SampleEffects()[i]) << "effect " << i;
  }
  // And the bytes are a fixed point: decode, encode, same bytes.
  EXPECT_EQ(Payload(*effects), Payload(SampleEffects()));
}

// One effect of each kind, byte for byte as docs/storage-format.md lays
// them out: a change to the format must change this test.
TEST(JournalFormatTest, EffectsAreTheDocumentedBytes) {
  std::string bytes;
  EncodeRecord(0x0102030405060708ull, {DeleteCounter{"x"}}, bytes);
  EXPECT_EQ(Hex(bytes.substr(4, 12)),
            "0a000000"            // length 10
            "0807060504030201");  // seq, LE
  EXPECT_EQ(Hex(bytes.substr(kRecordHeaderSize)),
            "01000000"  // one effect
            "02"
            "01000000"
            "78");  // delete "x"

  EXPECT_EQ(Hex(Payload({PutCounter{{"ab", -2, 3, 5}}})),
            "01000000"
            "04"
            "02000000"
            "6162"                // put "ab"
            "feffffffffffffff"    // value -2
            "0300000000000000"    // version 3
            "0500000000000000");  // expires_at_ms 5

  domain::IdempotencyRecord r;
  r.scope = "s";
  r.key = "k";
  r.created_at_ms = 7;
  r.request.batch = true;
  domain::Operation op = testing::AddOp("c", 2);
  op.precondition.version_in = {9};
  op.precondition.must_exist = true;
  op.max = 4;
  op.ttl_seconds = 60;
  r.request.ops = {op};
  r.outcome.status = Status(StatusCode::kLimitExceeded, "m");
  r.outcome.failed_op = 0;
  r.outcome.current = domain::Counter{"c", 3, 1, 0};
  r.outcome.results = {{std::nullopt, true}};
  EXPECT_EQ(Hex(Payload({PutIdempotency{r}})),
            "01000000"
            "05"
            "01000000"
            "73"  // put idempotency, scope "s"
            "01000000"
            "6b"                // key "k"
            "0700000000000000"  // created_at_ms 7
            "01"
            "0100"  // batch, one op
            "02"
            "01000000"
            "63"                // increment "c"
            "0200000000000000"  // by 2
            "19"                // If-Match: *, max, ttl
            "0100"
            "0900000000000000"  // If-Match "9"
            "0400000000000000"  // max 4
            "3c000000"          // ttl 60 s
            "0b"
            "01000000"
            "6d"  // LIMIT_EXCEEDED, "m"
            "03"
            "00000000"  // failed_op 0, has current
            "0100"
            "02"  // one result: created
            "01000000"
            "63"  // current: "c"
            "0300000000000000"
            "0100000000000000"
            "0000000000000000");
}

TEST(JournalFormatTest, ChecksumCoversLengthSeqAndPayload) {
  std::string bytes;
  EncodeRecord(1, {PutCounter{{"a", 1, 1, 0}}}, bytes);
  for (std::size_t i = 4; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x10);
    EXPECT_NE(RecordChecksum(flipped), DecodeHeader(bytes).crc) << i;
  }
}

TEST(JournalFormatTest, RejectsTruncatedAndTrailingPayloads) {
  const std::string payload = Payload(SampleEffects());
  for (std::size_t cut = 0; cut < payload.size(); ++cut) {
    auto decoded = DecodePayload(payload.substr(0, cut));
    ASSERT_FALSE(decoded.has_value()) << cut;
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
  }
  EXPECT_FALSE(DecodePayload(payload + "x").has_value());
}

// Anything the format does not define is damage, never guessed at: so a
// payload that decodes re-encodes to the same bytes.
TEST(JournalFormatTest, RejectsWhatTheFormatDoesNotDefine) {
  const auto refused = [](std::string payload, const char* what) {
    auto decoded = DecodePayload(payload);
    EXPECT_FALSE(decoded.has_value()) << what;
    if (!decoded) {
      EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss) << what;
    }
  };
  const std::string put = Payload({PutCounter{{"ab", -2, 3, 5}}});
  for (const int tag : {0, 1, 3, 6, 255}) {
    std::string bad = put;
    bad[4] = static_cast<char>(tag);  // 1 and 3 are version-1 effects
    refused(bad, "unknown or version-1 tag");
  }
  std::string bad_name = put;
  bad_name[9] = '/';
  refused(bad_name, "a name the API would refuse");

  domain::IdempotencyRecord r;
  r.key = "k";
  r.request = testing::Add("c", 2).MakeFingerprint();
  const std::string idem = Payload({PutIdempotency{r}});
  // Offsets: 4 count, 1 tag, 4+0 scope, 4+1 key, 8 created, then the
  // fingerprint: flags at 22, op count at 23, op kind at 25.
  ASSERT_EQ(idem[22], 0);
  std::string bits = idem;
  bits[22] = 2;
  refused(bits, "undefined fingerprint flag bit");
  std::string kind = idem;
  kind[25] = 5;
  refused(kind, "unknown operation kind");
  // The op: kind 25, name 26..30, operand 31..38, flags 39.
  std::string op_flags = idem;
  op_flags[39] = 32;
  refused(op_flags, "undefined operation flag bit");
  // The outcome after the op (versions u16 at 40): status at 42.
  ASSERT_EQ(idem[42], 0);
  std::string status = idem;
  status[42] = 12;
  refused(status, "unknown status byte");
  std::string key = idem;
  key[13] = ' ';
  refused(key, "an idempotency key the API would refuse");

  domain::IdempotencyRecord ok_with_message = r;
  ok_with_message.outcome.status = Status(StatusCode::kInternal, "m");
  std::string message = Payload({PutIdempotency{ok_with_message}});
  message[42] = 0;  // OK, but with a message
  refused(message, "an OK outcome with a message");
}

// get and delete carry no operand ("else 0"): the snapshot has no field for
// one, so a journal that held one would replay differently after a
// compaction.
TEST(JournalFormatTest, RejectsAnOperandOnGetAndDelete) {
  for (const domain::OpKind kind :
       {domain::OpKind::kGet, domain::OpKind::kDelete}) {
    domain::IdempotencyRecord r;
    r.key = "k";
    r.request.ops = {testing::Op(kind, "c", 0)};
    ASSERT_TRUE(DecodePayload(Payload({PutIdempotency{r}})).has_value());
    r.request.ops[0].operand = 5;
    EXPECT_FALSE(DecodePayload(Payload({PutIdempotency{r}})).has_value())
        << "kind " << static_cast<int>(kind);
  }
}

// Scopes and messages go into the snapshot as JSON strings, which hold
// UTF-8 only: a journal string that is not UTF-8 could not survive a
// compaction, so it is damage.
TEST(JournalFormatTest, ScopeAndMessageMustBeUtf8) {
  domain::IdempotencyRecord r;
  r.key = "k";
  r.request = testing::Add("c", 2).MakeFingerprint();
  r.outcome.status = Status(StatusCode::kOutOfRange, "m");
  r.outcome.failed_op = 0;
  for (const char* good : {"", "billing", "caf\xc3\xa9", "\xe2\x82\xac"}) {
    r.scope = good;
    EXPECT_TRUE(DecodePayload(Payload({PutIdempotency{r}})).has_value())
        << good;
  }
  for (const char* bad : {"\xff", "caf\xc3", "\xc0\x80", "\xed\xa0\x80"}) {
    r.scope = bad;
    EXPECT_FALSE(DecodePayload(Payload({PutIdempotency{r}})).has_value())
        << "scope " << bad;
    r.scope = "";
    r.outcome.status = Status(StatusCode::kOutOfRange, bad);
    EXPECT_FALSE(DecodePayload(Payload({PutIdempotency{r}})).has_value())
        << "message " << bad;
    r.outcome.status = Status(StatusCode::kOutOfRange, "m");
  }
}

}  // namespace
}  // namespace counterd::storage
