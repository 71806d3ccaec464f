// The framing rules of RFC 9112 that Beast leaves to us (framing.h) and the
// RequestReader that applies them to a byte stream, as a session does.
#include "transport/framing.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <gtest/gtest.h>

#include "transport/request_reader.h"

namespace counterd::http {
namespace {

namespace bhttp = boost::beast::http;
using Fields = std::initializer_list<std::pair<bhttp::field, std::string_view>>;

RequestHeader Header(Fields fields, unsigned version = 11) {
  RequestHeader h;
  h.method(bhttp::verb::post);
  h.target("/counters/v/increment");
  h.version(version);
  for (const auto& [name, value] : fields) h.insert(name, value);
  return h;
}

constexpr auto kTe = bhttp::field::transfer_encoding;
constexpr auto kCl = bhttp::field::content_length;

TEST(CheckFramingTest, NoLengthNoBody) {
  const FramingDecision d = CheckFraming(Header({}));
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.framing, BodyFraming::kNone);
}

TEST(CheckFramingTest, OneContentLength) {
  const FramingDecision d = CheckFraming(Header({{kCl, "42"}}));
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.framing, BodyFraming::kContentLength);
  EXPECT_EQ(d.content_length, 42u);
  EXPECT_EQ(CheckFraming(Header({{kCl, "0"}})).framing,
            BodyFraming::kContentLength);
}

TEST(CheckFramingTest, ChunkedInAnyCase) {
  for (const char* te : {"chunked", "CHUNKED", "Chunked", ", chunked"}) {
    const FramingDecision d = CheckFraming(Header({{kTe, te}}));
    EXPECT_TRUE(d.ok()) << te;
    EXPECT_EQ(d.framing, BodyFraming::kChunked) << te;
  }
}

TEST(CheckFramingTest, TransferEncodingNotEndingInChunkedIs400) {
  for (const char* te : {"identity", "gzip", "xchunked", "chunked, identity",
                         "chunkedx", "chunked;ext=1", "chunked, chunked", "",
                         " , ", "chu nked", "\"chunked\""}) {
    const FramingDecision d = CheckFraming(Header({{kTe, te}}));
    EXPECT_EQ(d.refusal_status, 400u) << "'" << te << "'";
  }
}

TEST(CheckFramingTest, CodingsBeforeChunkedAre501) {
  for (const char* te : {"gzip, chunked", "identity, chunked",
                         "deflate,chunked", "x-foo;q=1, chunked"}) {
    const FramingDecision d = CheckFraming(Header({{kTe, te}}));
    EXPECT_EQ(d.refusal_status, 501u) << te;
  }
}

// Several lines make one list: "gzip" then "chunked" is "gzip, chunked".
TEST(CheckFramingTest, TransferEncodingLinesAreOneList) {
  EXPECT_EQ(
      CheckFraming(Header({{kTe, "gzip"}, {kTe, "chunked"}})).refusal_status,
      501u);
  EXPECT_EQ(CheckFraming(Header({{kTe, "chunked"}, {kTe, "identity"}}))
                .refusal_status,
            400u);
  EXPECT_EQ(
      CheckFraming(Header({{kTe, "chunked"}, {kTe, "chunked"}})).refusal_status,
      400u);
}

TEST(CheckFramingTest, ContentLengthWithTransferEncodingIs400) {
  EXPECT_EQ(CheckFraming(Header({{kTe, "chunked"}, {kCl, "5"}})).refusal_status,
            400u);
  EXPECT_EQ(
      CheckFraming(Header({{kCl, "5"}, {kTe, "identity"}})).refusal_status,
      400u);
}

TEST(CheckFramingTest, TransferEncodingInHttp10Is400) {
  EXPECT_EQ(CheckFraming(Header({{kTe, "chunked"}}, 10)).refusal_status, 400u);
}

// Even identical duplicates: RFC 9110 §8.6 allows either, we refuse.
TEST(CheckFramingTest, DuplicateOrListContentLengthIs400) {
  EXPECT_EQ(CheckFraming(Header({{kCl, "5"}, {kCl, "5"}})).refusal_status,
            400u);
  EXPECT_EQ(CheckFraming(Header({{kCl, "5"}, {kCl, "6"}})).refusal_status,
            400u);
  for (const char* cl : {"5, 5", "5,6", "+5", "-1", "0x10", "5 5", "",
                         "99999999999999999999999"}) {
    EXPECT_EQ(CheckFraming(Header({{kCl, cl}})).refusal_status, 400u) << cl;
  }
}

TEST(CheckHostTest, Http11NeedsExactlyOneValidHost) {
  EXPECT_EQ(CheckHost(Header({{bhttp::field::host, "x"}})), "");
  EXPECT_EQ(CheckHost(Header({{bhttp::field::host, "127.0.0.1:8080"}})), "");
  EXPECT_EQ(CheckHost(Header({{bhttp::field::host, "[::1]:8080"}})), "");
  EXPECT_EQ(CheckHost(Header({{bhttp::field::host, "a-b.example%2D"}})), "");
  // An empty Host is valid (reg-name may be empty).
  EXPECT_EQ(CheckHost(Header({{bhttp::field::host, ""}})), "");
  EXPECT_NE(CheckHost(Header({})), "");
  EXPECT_NE(
      CheckHost(Header({{bhttp::field::host, "a"}, {bhttp::field::host, "a"}})),
      "");
  for (const char* bad :
       {"a b", "a/b", "a@b", "x:80a", "[::1", "[]", "a%zz", "a?b", "\"x\""}) {
    EXPECT_NE(CheckHost(Header({{bhttp::field::host, bad}})), "") << bad;
  }
}

TEST(CheckHostTest, Http10MayOmitHostButNotRepeatIt) {
  EXPECT_EQ(CheckHost(Header({}, 10)), "");
  EXPECT_NE(CheckHost(Header(
                {{bhttp::field::host, "a"}, {bhttp::field::host, "b"}}, 10)),
            "");
}

TEST(OriginFormOfTest, AbsoluteFormBecomesOriginForm) {
  EXPECT_EQ(OriginFormOf("http://x/counters/a"), "/counters/a");
  EXPECT_EQ(OriginFormOf("HTTPS://x:8443/counters?limit=1"),
            "/counters?limit=1");
  EXPECT_EQ(OriginFormOf("http://x"), "/");
  EXPECT_EQ(OriginFormOf("http://x?a=1"), "/?a=1");
  EXPECT_EQ(OriginFormOf("http://[::1]:80/livez"), "/livez");
}

TEST(OriginFormOfTest, OtherFormsAndBadAuthoritiesAreNot) {
  for (const char* target :
       {"/livez", "*", "ftp://x/", "http:/x", "http://", "http:///x",
        "http://u@x/", "http://a b/", "http://x/#f", "x:80"}) {
    EXPECT_FALSE(OriginFormOf(target)) << target;
  }
}

TEST(HasObsFoldTest, ContinuationLines) {
  EXPECT_FALSE(HasObsFold("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"));
  EXPECT_TRUE(HasObsFold("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"));
}

// ---------------------------------------------------------------------------
// RequestReader over byte streams.

class RequestReaderTest : public ::testing::Test {
 protected:
  void Feed(std::string_view bytes) {
    const auto n = boost::asio::buffer_copy(buffer_.prepare(bytes.size()),
                                            boost::asio::buffer(bytes));
    buffer_.commit(n);
  }
  std::string Rest() const {
    const auto data = buffer_.data();
    return {static_cast<const char*>(data.data()), data.size()};
  }
  // Starts a message and parses header and body from what was fed.
  RequestReader::Step Read(std::uint64_t body_limit = 1024) {
    reader_.Start(8 * 1024, body_limit);
    RequestReader::Step step = reader_.ParseHeader(buffer_);
    if (step != RequestReader::Step::kDone) return step;
    return reader_.ParseBody(buffer_);
  }

  boost::beast::flat_buffer buffer_;
  RequestReader reader_;
};

using Step = RequestReader::Step;

// The request of issue 10: its body must never be parsed as a request.
TEST_F(RequestReaderTest, IdentityTransferEncodingIsRefusedNotSmuggled) {
  Feed(
      "POST /counters/v/increment HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: identity\r\n\r\n"
      "DELETE /counters/t HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(Read(), Step::kRefused);
  EXPECT_EQ(reader_.refusal().type, ProblemType::kBadRequest);
  EXPECT_NE(reader_.refusal().detail.find("chunked"), std::string::npos);
  EXPECT_EQ(Rest().rfind("DELETE", 0), 0u) << "left unread for the linger";
}

TEST_F(RequestReaderTest, GzipChunkedIs501) {
  Feed(
      "POST /counter/increment HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  ASSERT_EQ(Read(), Step::kRefused);
  EXPECT_EQ(reader_.refusal().type, ProblemType::kNotImplemented);
}

TEST_F(RequestReaderTest, ChunkedBodyEndsAtTheLastChunk) {
  Feed(
      "POST /counter/increment HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(Read(), Step::kDone);
  EXPECT_EQ(reader_.framing(), BodyFraming::kChunked);
  EXPECT_EQ(reader_.Release().body(), "abc");
  EXPECT_EQ(Rest(), "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(Read(), Step::kDone);
  EXPECT_EQ(reader_.request().target(), "/livez");
  EXPECT_EQ(Rest(), "");
}

TEST_F(RequestReaderTest, ContentLengthBodyThenTheNextRequest) {
  Feed(
      "POST /counter/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
      "\r\nabcGET /livez HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(Read(), Step::kDone);
  EXPECT_EQ(reader_.Release().body(), "abc");
  EXPECT_EQ(Rest().rfind("GET /livez", 0), 0u);
}

TEST_F(RequestReaderTest, HeaderInPiecesNeedsMore) {
  reader_.Start(8 * 1024, 1024);
  Feed("GET /livez HTTP/1.1\r\nHo");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kNeedMore);
  Feed("st: x\r\n");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kNeedMore);
  Feed("\r\n");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kDone);
  EXPECT_TRUE(reader_.done());
}

TEST_F(RequestReaderTest, ObsFoldIs400EvenWhenSplit) {
  Feed("GET /livez HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n");
  reader_.Start(8 * 1024, 1024);
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kNeedMore);
  Feed(" 2\r\n\r\n");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kRefused);
  EXPECT_NE(reader_.refusal().detail.find("folding"), std::string::npos);
}

TEST_F(RequestReaderTest, HostRules) {
  Feed("GET /livez HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Read(), Step::kRefused);
  buffer_.clear();
  Feed("GET /livez HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
  EXPECT_EQ(Read(), Step::kRefused);
  buffer_.clear();
  Feed("GET /livez HTTP/1.0\r\n\r\n");
  EXPECT_EQ(Read(), Step::kDone);
}

TEST_F(RequestReaderTest, AbsoluteFormTargetIsServedAsItsPath) {
  Feed("GET http://elsewhere:1/counters?limit=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(Read(), Step::kDone);
  EXPECT_EQ(reader_.request().target(), "/counters?limit=2");
}

TEST_F(RequestReaderTest, Versions) {
  Feed("GET /livez HTTP/1.2\r\nHost: x\r\n\r\n");
  ASSERT_EQ(Read(), Step::kDone) << reader_.refusal().detail;
  EXPECT_EQ(reader_.request().version(), 11u);
  for (const char* line : {"GET /livez HTTP/2.0\r\n", "GET /livez HTTP/0.9\r\n",
                           "GET /livez HTTP/3.0\r\n"}) {
    buffer_.clear();
    Feed(std::string(line) + "Host: x\r\n\r\n");
    ASSERT_EQ(Read(), Step::kRefused) << line;
    EXPECT_EQ(reader_.refusal().type, ProblemType::kBadRequest) << line;
    EXPECT_NE(reader_.refusal().detail.find("not supported"), std::string::npos)
        << line;
  }
  for (const char* line :
       {"GET /livez HTTP/1.10\r\n", "GET /livez\r\n",
        "GET /livez HTTP/1.1 x\r\n", "GET /livez http/1.1\r\n",
        "GET /livez HTTP/1.1\n"}) {
    buffer_.clear();
    Feed(std::string(line) + "Host: x\r\n\r\n");
    ASSERT_EQ(Read(), Step::kRefused) << line;
    EXPECT_EQ(reader_.refusal().type, ProblemType::kBadRequest) << line;
  }
}

// Beast refuses the version before the line has ended; the reader waits
// for the whole line, so the outcome does not depend on the split.
TEST_F(RequestReaderTest, VersionDecidedOnTheWholeLine) {
  reader_.Start(8 * 1024, 1024);
  Feed("GET /livez HTTP/1.2");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kNeedMore);
  Feed("\r");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kNeedMore);
  Feed("\nHost: x\r\n\r\n");
  ASSERT_EQ(reader_.ParseHeader(buffer_), Step::kDone);
  EXPECT_EQ(reader_.request().version(), 11u);

  buffer_.clear();
  reader_.Start(8 * 1024, 1024);
  Feed("GET /livez HTTP/1.2\rX");
  EXPECT_EQ(reader_.ParseHeader(buffer_), Step::kRefused);
}

TEST_F(RequestReaderTest, LimitsMapToTheirProblems) {
  Feed(
      "POST /counter/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n"
      "\r\n");
  ASSERT_EQ(Read(/*body_limit=*/1000), Step::kRefused);
  EXPECT_EQ(reader_.refusal().type, ProblemType::kPayloadTooLarge);
  buffer_.clear();
  Feed("GET /livez HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a'));
  ASSERT_EQ(Read(), Step::kRefused);
  EXPECT_EQ(reader_.refusal().type, ProblemType::kHeaderTooLarge);
}

}  // namespace
}  // namespace counterd::http
