// WriteResponse and WriteContinue must produce byte for byte what Beast's
// serializer wrote before them, for every kind of response a session sends.
#include "transport/response_writer.h"

#include <sstream>
#include <string>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "api/message.h"

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
  WriteResponse(response, ours);
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
  WriteResponse(res, ours);
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
