#include "counterd/app/logging.h"

#include <gtest/gtest.h>

#include "counterd/core/log.h"

namespace counterd::app {
namespace {

std::string Json(std::string_view payload) {
  return FormatJsonLogLine("2024-01-01T00:00:00.000Z", "info", payload);
}

TEST(FormatJsonLogLineTest, FieldsBecomeTypedMembers) {
  EXPECT_EQ(Json(log::RenderJsonMembers("listening",
                                        {{"listen", "127.0.0.1:8080"},
                                         {"version", "0.1.0"},
                                         {"counters", 3},
                                         {"recovery_ms", std::int64_t{12}},
                                         {"ready", true}})),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"listening","listen":"127.0.0.1:8080","version":"0.1.0",)"
            R"("counters":3,"recovery_ms":12,"ready":true})");
}

TEST(FormatJsonLogLineTest, StringFieldsStayStringsWhateverTheyLookLike) {
  // Built from the fields, not re-parsed from text: "007" stays a string.
  EXPECT_EQ(Json(log::RenderJsonMembers("m", {{"a", "007"}, {"b", "1 2"}})),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"m","a":"007","b":"1 2"})");
}

TEST(FormatJsonLogLineTest, EscapesAndReservedKeys) {
  EXPECT_EQ(Json(log::RenderJsonMembers(
                "say \"hi\"", {{"path", "/tmp/a\tb"}, {"level", "evil"}})),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"say \"hi\"","path":"/tmp/a\tb"})");
  EXPECT_EQ(Json(log::RenderJsonMembers(std::string_view("ctl\x01", 4), {})),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"ctl\u0001"})");
}

TEST(FormatJsonLogLineTest, ForeignTextIsTakenAsTheMessage) {
  EXPECT_EQ(Json("store failed closed: x=1 \"q\""),
            R"({"ts":"2024-01-01T00:00:00.000Z","level":"info",)"
            R"("msg":"store failed closed: x=1 \"q\""})");
}

TEST(RenderTextTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(log::RenderText("compaction", {{"took_ms", 3}, {"dir", "/data"}}),
            "compaction took_ms=3 dir=/data");
  EXPECT_EQ(log::RenderText("x", {{"dir", "/a b"}, {"q", "a\"b"}, {"e", ""}}),
            "x dir=\"/a b\" q=\"a\\\"b\" e=\"\"");
  EXPECT_EQ(log::RenderText("n", {{"neg", -5}, {"big", 18446744073709551615u}}),
            "n neg=-5 big=18446744073709551615");
}

}  // namespace
}  // namespace counterd::app
