// WriteResponse and WriteContinue must produce byte for byte what Beast's
// serializer wrote before them, for every kind of response a session sends.
#include "transport/response_writer.h"

#include <chrono>
#include <sstream>
#include <string>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "api/message.h"
#include "transport/http_date.h"

namespace counterd::http {
namespace {

template <class Message>
std::string BeastBytes(const Message& message) {
  std::ostringstream out;
  out << message;
  return out.str();
}

// As the session prepares a response before writing it.
Response Prepared(Response response, unsigned version, bool keep_alive,
                  bool is_head) {
  response.version(version);
  response.keep_alive(keep_alive);
  PreparePayload(response, is_head);
  return response;
}

void ExpectSameBytes(const Response& response) {
  std::string ours = "left over from the last response";
  WriteResponse(response, "", ours);
  EXPECT_EQ(ours, BeastBytes(response));
}

TEST(ResponseWriterTest, JsonResponseInBothVersionsAndConnectionModes) {
  for (unsigned version : {10u, 11u}) {
    for (bool keep_alive : {true, false}) {
      SCOPED_TRACE(std::to_string(version) + (keep_alive ? " keep" : " close"));
      ExpectSameBytes(Prepared(
          MakeJsonResponse(bhttp::status::ok, R"({"name":"x","value":1})"),
          version, keep_alive, false));
    }
  }
}

TEST(ResponseWriterTest, HeadKeepsLengthWithoutBody) {
  Response res = Prepared(MakeJsonResponse(bhttp::status::ok, R"({"a":1})"), 11,
                          true, true);
  ExpectSameBytes(res);
  std::string ours;
  WriteResponse(res, "", ours);
  EXPECT_NE(ours.find("Content-Length: 7\r\n"), std::string::npos);
  EXPECT_TRUE(ours.ends_with("\r\n\r\n"));
}

TEST(ResponseWriterTest, NoContentAndNotModifiedHaveNoLength) {
  ExpectSameBytes(Prepared(MakeJsonResponse(bhttp::status::no_content, ""), 11,
                           true, false));
  Response not_modified = MakeJsonResponse(bhttp::status::not_modified, "");
  not_modified.set(bhttp::field::etag, "\"3\"");
  ExpectSameBytes(Prepared(std::move(not_modified), 10, false, false));
}

TEST(ResponseWriterTest, ProblemWithExtraFieldsInOrder) {
  Response res = MakeProblemResponse(
      MakeProblem(ProblemType::kTooManyConnections, "full", ""));
  res.set(bhttp::field::retry_after, "1");
  res.set("Idempotent-Replayed", "true");
  // Setting a field again moves it to the end, as Beast sends it.
  res.set(bhttp::field::content_type, "application/problem+json");
  ExpectSameBytes(Prepared(std::move(res), 11, false, false));
}

TEST(ResponseWriterTest, CustomReasonAndUnknownStatus) {
  Response custom = MakeJsonResponse(bhttp::status::ok, "{}");
  custom.reason("Fine");
  ExpectSameBytes(Prepared(std::move(custom), 11, true, false));
  ExpectSameBytes(
      Prepared(MakeJsonResponse(static_cast<bhttp::status>(299), "{}"), 11,
               true, false));
}

// With a date, the bytes are Beast's with "Date: ..." as the first field.
TEST(ResponseWriterTest, DateComesFirstAmongTheFields) {
  const Response res = Prepared(
      MakeJsonResponse(bhttp::status::ok, R"({"a":1})"), 11, true, false);
  std::string ours;
  WriteResponse(res, "Sun, 06 Nov 1994 08:49:37 GMT", ours);
  std::string want = BeastBytes(res);
  want.insert(want.find("\r\n") + 2, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
  EXPECT_EQ(ours, want);
}

TEST(HttpDateTest, FormatsImfFixdate) {
  using std::chrono::sys_days;
  using namespace std::chrono;  // NOLINT(google-build-using-namespace)
  const auto rfc_example = sys_days{year{1994} / November / 6} + hours{8} +
                           minutes{49} + seconds{37} + milliseconds{999};
  const auto text = FormatHttpDate(rfc_example);
  EXPECT_EQ(std::string_view(text.data(), text.size()),
            "Sun, 06 Nov 1994 08:49:37 GMT");
  const auto leap = FormatHttpDate(sys_days{year{2024} / February / 29});
  EXPECT_EQ(std::string_view(leap.data(), leap.size()),
            "Thu, 29 Feb 2024 00:00:00 GMT");
  const auto epoch = FormatHttpDate(system_clock::time_point{});
  EXPECT_EQ(std::string_view(epoch.data(), epoch.size()),
            "Thu, 01 Jan 1970 00:00:00 GMT");
}

// The cached text is the formatted current second. A second boundary
// between the two clock reads makes the bracket ambiguous: read again.
TEST(HttpDateTest, NowIsTheCurrentSecond) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto before = std::chrono::floor<std::chrono::seconds>(
        std::chrono::system_clock::now());
    const std::string now(HttpDateNow());
    const auto after = std::chrono::floor<std::chrono::seconds>(
        std::chrono::system_clock::now());
    if (before != after) continue;
    const auto want = FormatHttpDate(before);
    EXPECT_EQ(now, std::string(want.data(), want.size()));
    return;
  }
  FAIL() << "the clock crossed a second boundary 100 times in a row";
}

TEST(ResponseWriterTest, ContinueMatchesBeast) {
  for (unsigned version : {10u, 11u}) {
    std::string ours;
    WriteContinue(version, ours);
    EXPECT_EQ(ours, BeastBytes(bhttp::response<bhttp::empty_body>{
                        bhttp::status::continue_, version}));
  }
  std::string ours;
  WriteContinue(11, ours);
  EXPECT_EQ(ours, "HTTP/1.1 100 Continue\r\n\r\n");
}

}  // namespace
}  // namespace counterd::http
