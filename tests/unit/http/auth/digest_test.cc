// SHA-256 (known vectors), the hex form, the constant-time comparison's
// results, TokenSet lookup, and `counterd hash-token`'s input rules.
#include "auth/digest.h"

#include <string>

#include <gtest/gtest.h>

#include "auth/bearer.h"
#include "auth/token_set.h"
#include "counterd/http/auth.h"

namespace counterd::http {
namespace {

TEST(DigestTest, Sha256KnownVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(ToHex(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, HexRoundTripsAndOnlyLowercase64Parses) {
  const Digest d = Sha256("abc");
  EXPECT_EQ(ParseHexDigest(ToHex(d)), d);
  std::string upper = ToHex(d);
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_FALSE(ParseHexDigest(upper));
  EXPECT_FALSE(ParseHexDigest(ToHex(d).substr(1)));
  EXPECT_FALSE(ParseHexDigest(ToHex(d) + "0"));
  EXPECT_FALSE(ParseHexDigest(" " + ToHex(d).substr(1)));
}

// The comparison reads every byte (CRYPTO_memcmp); what a unit test can
// check is that it answers right whichever byte differs, the last included.
TEST(DigestTest, DigestsEqualAtEveryPosition) {
  const Digest a = Sha256("token");
  EXPECT_TRUE(DigestsEqual(a, a));
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (const unsigned flip : {0x01u, 0x80u, 0xffu}) {
      Digest b = a;
      b[i] = static_cast<std::uint8_t>(b[i] ^ flip);
      EXPECT_FALSE(DigestsEqual(a, b)) << "byte " << i;
      EXPECT_FALSE(DigestsEqual(b, a)) << "byte " << i;
    }
  }
}

TEST(TokenSetTest, FindsEachEntryAndNoNearMiss) {
  std::vector<TokenSet::Entry> entries;
  for (int i = 0; i < 5; ++i) {
    entries.push_back({Sha256("t" + std::to_string(i)),
                       Principal("n" + std::to_string(i), {Scope::kRead}, {})});
  }
  const TokenSet set(std::move(entries));
  for (int i = 0; i < 5; ++i) {
    const Principal* p = set.Find(Sha256("t" + std::to_string(i)));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->name(), "n" + std::to_string(i));
    Digest near = Sha256("t" + std::to_string(i));
    near[31] = static_cast<std::uint8_t>(near[31] ^ 1u);  // one bit off
    EXPECT_EQ(set.Find(near), nullptr);
  }
  EXPECT_EQ(set.Find(Sha256("t5")), nullptr);
}

TEST(BearerTokenTest, B64TokenCharset) {
  EXPECT_TRUE(IsBearerToken("abcXYZ019-._~+/"));
  EXPECT_TRUE(IsBearerToken("dG9rZW4="));
  EXPECT_TRUE(IsBearerToken("a=="));
  EXPECT_FALSE(IsBearerToken(""));
  EXPECT_FALSE(IsBearerToken("="));
  EXPECT_FALSE(IsBearerToken("a=b"));
  EXPECT_FALSE(IsBearerToken("a b"));
  EXPECT_FALSE(IsBearerToken("a\tb"));
  EXPECT_FALSE(IsBearerToken("a\"b"));
  EXPECT_FALSE(IsBearerToken("a,b"));
  EXPECT_TRUE(IsBearerToken(std::string(kMaxBearerTokenBytes, 'a')));
  EXPECT_FALSE(IsBearerToken(std::string(kMaxBearerTokenBytes + 1, 'a')));
}

// counterd hash-token: one trailing newline (or CRLF) is not part of the
// token; nothing else is stripped, and what cannot be sent is refused.
TEST(HashTokenInputTest, StdinHandling) {
  const std::string want = ToHex(Sha256("s3cret"));
  EXPECT_EQ(*HashTokenInput("s3cret"), want);
  EXPECT_EQ(*HashTokenInput("s3cret\n"), want);
  EXPECT_EQ(*HashTokenInput("s3cret\r\n"), want);
  for (const char* bad :
       {"", "\n", "\r\n", "s3cret\n\n", "s3cret\r", " s3cret\n", "s3cret \n",
        "s3 cret", "s3cret\r\r\n", "a\nb\n"}) {
    const auto got = HashTokenInput(bad);
    EXPECT_FALSE(got) << '"' << bad << '"';
    if (!got) {
      EXPECT_EQ(got.error().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(got.error().message().find(bad[0] ? bad : "\x01"),
                std::string::npos)
          << "the message must not echo the token";
    }
  }
  EXPECT_EQ(HashTokenInput("").error().message(), "no token on standard input");
  EXPECT_EQ(HashTokenInput("\n").error().message(),
            "no token on standard input");
}

}  // namespace
}  // namespace counterd::http
