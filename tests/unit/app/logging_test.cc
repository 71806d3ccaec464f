#include "counterd/app/logging.h"

#include <gtest/gtest.h>

namespace counterd::app {
namespace {

std::string Json(std::string_view message) {
  return FormatJsonLogLine("2024-01-01T00:00:00.000Z", "info", message);
}

TEST(FormatJsonLogLineTest, TextBecomesMsgAndFieldsMembers) {
  EXPECT_EQ(Json("listening listen=127.0.0.1:8080 version=0.1.0 counters=3 "
                 "recovery_ms=12"),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"listening","listen":"127.0.0.1:8080","version":"0.1.0",)"
            R"("counters":3,"recovery_ms":12})");
}

TEST(FormatJsonLogLineTest, PlainTextOnly) {
  EXPECT_EQ(Json("store failed closed: fsync: EIO"),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"store failed closed: fsync: EIO"})");
}

TEST(FormatJsonLogLineTest, QuotedValuesAndEscapes) {
  EXPECT_EQ(Json("x data_dir=\"/tmp/a b\" note=\"say \\\"hi\\\"\" n=\"5\""),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info","msg":"x",)"
            R"("data_dir":"/tmp/a b","note":"say \"hi\"","n":"5"})");
  EXPECT_EQ(Json("tab\there \"q\" back\\slash"),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"tab\there \"q\" back\\slash"})");
  EXPECT_EQ(Json(std::string_view("ctl\x01", 4)),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"ctl\u0001"})");
}

TEST(FormatJsonLogLineTest, StrayWordsAmongFieldsStayInMsg) {
  EXPECT_EQ(Json("compaction took_ms=3 done"),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"compaction done","took_ms":3})");
}

TEST(FormatJsonLogLineTest, ReservedKeysCannotBeOverwritten) {
  EXPECT_EQ(Json("hello level=evil"),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"hello"})");
}

TEST(FormatJsonLogLineTest, NumbersOnlyWhenTheyLookLikeNumbers) {
  EXPECT_EQ(Json("m a=-3 b=1.5 c=007 d=1.2.3 e=12ms"),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info","msg":"m",)"
            R"("a":-3,"b":1.5,"c":"007","d":"1.2.3","e":"12ms"})");
}

TEST(LogValueTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(LogValue("/data"), "/data");
  EXPECT_EQ(LogValue("/a b"), "\"/a b\"");
  EXPECT_EQ(LogValue("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(LogValue(""), "\"\"");
}

}  // namespace
}  // namespace counterd::app
