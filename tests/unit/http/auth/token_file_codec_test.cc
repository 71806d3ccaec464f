// The tokens file: the valid shapes, and every invalid case as the one line
// that start-up prints (file, entry index and name, reason).
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "auth/digest.h"
#include "auth/token_set.h"
#include "counterd/http/auth.h"

namespace counterd::http {
namespace {

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');
const std::string kHashC(64, 'c');

std::string Entry(const std::string& fields) { return "{" + fields + "}"; }

std::string File(const std::string& entries) {
  return R"({"tokens":[)" + entries + "]}";
}

// A well-formed entry called |name| with hash |hash|.
std::string Good(const std::string& name, const std::string& hash) {
  return Entry(R"("name":")" + name + R"(","sha256":")" + hash +
               R"(","scopes":["read"])");
}

// The message for |text|, which must be refused.
std::string Error(const std::string& text) {
  auto parsed = ParseTokenFile("/etc/t.json", text);
  EXPECT_FALSE(parsed) << text;
  if (parsed) return "";
  EXPECT_EQ(parsed.error().code(), StatusCode::kInvalidArgument);
  const std::string message = parsed.error().message();
  EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line";
  EXPECT_EQ(message.rfind("/etc/t.json: ", 0), 0u) << message;
  return message;
}

TEST(TokenFileCodecTest, ParsesScopesPrefixesAndHashes) {
  const std::string token = "s3cr3t-token";
  const std::string text =
      File(R"({"name":"billing","sha256":")" + ToHex(Sha256(token)) +
           R"(","scopes":["read","write"],"prefixes":["billing:"]},)" +
           R"({"name":"prom.1_x-y","sha256":")" + kHashA +
           R"(","scopes":["metrics"]})");
  auto parsed = ParseTokenFile("t.json", text);
  ASSERT_TRUE(parsed) << parsed.error().message();
  const TokenSet& set = **parsed;
  ASSERT_EQ(TokenCount(set), 2u);
  const Principal* billing = set.Find(Sha256(token));
  ASSERT_NE(billing, nullptr);
  EXPECT_EQ(billing->name(), "billing");
  EXPECT_TRUE(billing->HasScope(Scope::kRead));
  EXPECT_TRUE(billing->HasScope(Scope::kWrite));
  EXPECT_FALSE(billing->HasScope(Scope::kMetrics));
  EXPECT_EQ(billing->prefixes(), std::vector<std::string>{"billing:"});
  const Principal* prom = set.Find(*ParseHexDigest(kHashA));
  ASSERT_NE(prom, nullptr);
  EXPECT_EQ(prom->name(), "prom.1_x-y");
  EXPECT_FALSE(prom->is_limited()) << "no prefixes: every counter";
  EXPECT_EQ(set.Find(Sha256("s3cr3t-token\n")), nullptr);
}

TEST(TokenFileCodecTest, NameMayBe64Characters) {
  EXPECT_TRUE(ParseTokenFile("t", File(Good(std::string(64, 'n'), kHashA))));
}

TEST(TokenFileCodecTest, FileLevelErrors) {
  EXPECT_EQ(Error(""),
            "/etc/t.json: not valid JSON: parse error at line 1, column 1: "
            "syntax error while parsing value - unexpected end of input; "
            "expected '[', '{', or a literal");
  EXPECT_NE(Error("{\"tokens\": [").find("not valid JSON"), std::string::npos);
  EXPECT_EQ(Error("[]"), "/etc/t.json: expected an object {\"tokens\": [...]}");
  EXPECT_EQ(Error("{}"), "/etc/t.json: expected an object {\"tokens\": [...]}");
  EXPECT_EQ(Error(R"({"tokens":{}})"),
            "/etc/t.json: \"tokens\" must be an array, not {}");
  EXPECT_EQ(Error(R"({"tokens":[]})"),
            "/etc/t.json: \"tokens\" is empty: every request would be "
            "refused (to turn authentication off, start without "
            "--auth-tokens-file)");
  EXPECT_EQ(Error(R"({"tokens":[], "extra": 1})"),
            "/etc/t.json: unknown top-level field \"extra\" (only \"tokens\" "
            "is allowed)");
  EXPECT_EQ(Error(R"({"tokens":[], "tokens": []})"),
            "/etc/t.json: the key \"tokens\" appears twice in one object");
}

TEST(TokenFileCodecTest, EntryShapeErrors) {
  EXPECT_EQ(Error(File("3")),
            "/etc/t.json: tokens[0]: must be an object, not 3");
  EXPECT_EQ(Error(File(Good("a", kHashA) + "," + Entry(R"("sha256":"x")"))),
            "/etc/t.json: tokens[1]: \"name\" is missing");
  EXPECT_EQ(Error(File(Entry(R"("name":"a","sha256":")" + kHashA +
                             R"(","scopes":["read"],"prefix":["x"])"))),
            "/etc/t.json: tokens[0] (name \"a\"): unknown field \"prefix\" "
            "(allowed: name, sha256, scopes, prefixes)");
  EXPECT_EQ(Error(File(Good("a", kHashA) + "," +
                       Entry(R"("name":"b","name":"c","sha256":")" + kHashB +
                             R"(","scopes":["read"])"))),
            "/etc/t.json: tokens[1]: the key \"name\" appears twice");
}

TEST(TokenFileCodecTest, NameErrors) {
  const std::string rule =
      "\"name\" must be 1 to 64 of A-Z a-z 0-9 . _ -, not ";
  EXPECT_EQ(Error(File(Good("", kHashA))),
            "/etc/t.json: tokens[0]: " + rule + "\"\"");
  EXPECT_EQ(Error(File(Good(std::string(65, 'n'), kHashA))).find(rule),
            std::string("/etc/t.json: tokens[0]: ").size());
  EXPECT_EQ(Error(File(Good("bill ing", kHashA))),
            "/etc/t.json: tokens[0]: " + rule + "\"bill ing\"");
  EXPECT_EQ(Error(File(Good("a:b", kHashA))),
            "/etc/t.json: tokens[0]: " + rule + "\"a:b\"");
  EXPECT_EQ(Error(File(Entry(R"("name":7,"sha256":")" + kHashA +
                             R"(","scopes":["read"])"))),
            "/etc/t.json: tokens[0]: " + rule + "7");
  EXPECT_EQ(Error(File(Good("a", kHashA) + "," + Good("a", kHashB))),
            "/etc/t.json: tokens[1] (name \"a\"): the name is used by an "
            "earlier entry");
}

TEST(TokenFileCodecTest, Sha256Errors) {
  const std::string rule =
      "\"sha256\" must be exactly 64 lowercase hex digits (the output of "
      "counterd hash-token)";
  for (const std::string& bad :
       {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
        std::string(63, 'a') + "g", std::string("")}) {
    EXPECT_EQ(Error(File(Good("t", bad))),
              "/etc/t.json: tokens[0] (name \"t\"): " + rule)
        << bad;
  }
  EXPECT_EQ(Error(File(Entry(R"("name":"t","sha256":1,"scopes":["read"])"))),
            "/etc/t.json: tokens[0] (name \"t\"): " + rule);
  EXPECT_EQ(Error(File(Entry(R"("name":"t","scopes":["read"])"))),
            "/etc/t.json: tokens[0] (name \"t\"): \"sha256\" is missing "
            "(counterd hash-token prints it)");
  EXPECT_EQ(Error(File(Good("a", kHashA) + "," + Good("b", kHashB) + "," +
                       Good("c", kHashA))),
            "/etc/t.json: tokens[2] (name \"c\"): \"sha256\" is the same as "
            "that of \"a\": one token cannot stand for two entries");
}

TEST(TokenFileCodecTest, ScopeErrors) {
  auto with_scopes = [](const std::string& scopes) {
    return File(
        Entry(R"("name":"t","sha256":")" + kHashA + R"(","scopes":)" + scopes));
  };
  const std::string where = "/etc/t.json: tokens[0] (name \"t\"): ";
  EXPECT_EQ(
      Error(File(Entry(R"("name":"t","sha256":")" + kHashA + "\""))),
      where + "\"scopes\" is missing (any of read, write, metrics, admin)");
  EXPECT_EQ(Error(with_scopes("[]")), where + "\"scopes\" is empty");
  EXPECT_EQ(Error(with_scopes("\"read\"")),
            where + "\"scopes\" must be an array of strings, not \"read\"");
  EXPECT_EQ(Error(with_scopes("[1]")),
            where + "\"scopes\" must be an array of strings, not [1]");
  EXPECT_EQ(Error(with_scopes(R"(["read","rw"])")),
            where +
                "unknown scope \"rw\" (known: read, write, metrics, "
                "admin)");
  EXPECT_EQ(Error(with_scopes(R"(["Read"])")),
            where +
                "unknown scope \"Read\" (known: read, write, metrics, "
                "admin)");
  EXPECT_EQ(Error(with_scopes(R"(["read","read"])")),
            where + "\"scopes\" lists \"read\" twice");
}

TEST(TokenFileCodecTest, PrefixErrors) {
  auto with_prefixes = [](const std::string& prefixes) {
    return File(Entry(R"("name":"t","sha256":")" + kHashA +
                      R"(","scopes":["read"],"prefixes":)" + prefixes));
  };
  const std::string where = "/etc/t.json: tokens[0] (name \"t\"): ";
  EXPECT_EQ(Error(with_prefixes("[]")),
            where +
                "\"prefixes\" is empty (leave \"prefixes\" out for every "
                "counter)");
  EXPECT_EQ(Error(with_prefixes("\"a:\"")),
            where + "\"prefixes\" must be an array of strings, not \"a:\"");
  EXPECT_EQ(Error(with_prefixes(R"(["a:","a:"])")),
            where + "\"prefixes\" lists \"a:\" twice");
  const std::string rule =
      " is not 1 to 128 of the counter-name characters A-Z a-z 0-9 . _ - :";
  EXPECT_EQ(Error(with_prefixes(R"([""])")), where + "prefix \"\"" + rule);
  EXPECT_EQ(Error(with_prefixes(R"(["a/b"])")),
            where + "prefix \"a/b\"" + rule);
  const std::string long_prefix =
      Error(with_prefixes("[\"" + std::string(129, 'p') + "\"]"));
  EXPECT_NE(long_prefix.find("..." + rule), std::string::npos)
      << "a long prefix is cut in the message: " << long_prefix;
  EXPECT_TRUE(ParseTokenFile(
      "t", with_prefixes("[\"" + std::string(128, 'p') + "\"]")));
}

}  // namespace
}  // namespace counterd::http
