#include "transport/request_reader.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include <boost/beast/http/error.hpp>

namespace counterd::http {
namespace {

namespace beast = boost::beast;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

void RequestReader::Start(std::uint32_t header_limit,
                          std::uint64_t body_limit) {
  header_limit_ = header_limit;
  body_limit_ = body_limit;
  version_rewritten_ = false;
  framing_ = BodyFraming::kNone;
  ResetParser();
}

RequestReader::Step RequestReader::ParseHeader(beast::flat_buffer& buffer) {
  while (buffer.size() > 0) {
    beast::error_code ec;
    const auto data = buffer.data();
    const std::size_t used = parser_->put(data, ec);
    // The parser takes a folded field whole (it looks past each CRLF for a
    // continuation), so a fold never straddles two calls.
    if (HasObsFold({static_cast<const char*>(data.data()), used})) {
      return Refuse(ProblemType::kBadRequest,
                    "obsolete line folding (a header line starting with a "
                    "space or tab) is not accepted");
    }
    buffer.consume(used);
    if (ec == bhttp::error::need_more) break;
    if (ec) return OnParseError(ec, buffer);
    if (parser_->is_header_done()) return OnHeaderParsed();
  }
  return Step::kNeedMore;
}

RequestReader::Step RequestReader::ParseBody(beast::flat_buffer& buffer) {
  if (parser_->is_done()) return Step::kDone;
  // The body needs no stop on the way: parse all that is buffered at once.
  parser_->eager(true);
  while (buffer.size() > 0) {
    beast::error_code ec;
    buffer.consume(parser_->put(buffer.data(), ec));
    if (ec == bhttp::error::need_more) break;
    if (ec) return OnParseError(ec, buffer);
    if (parser_->is_done()) return Step::kDone;
  }
  return Step::kNeedMore;
}

Request RequestReader::Release() {
  Request request = parser_->release();
  parser_.reset();
  return request;
}

RequestReader::Step RequestReader::Refuse(ProblemType type,
                                          std::string detail) {
  refusal_ = Refusal{type, std::move(detail)};
  return Step::kRefused;
}

RequestReader::Step RequestReader::OnHeaderParsed() {
  Request& request = parser_->get();
  const FramingDecision framing = CheckFraming(request);
  if (!framing.ok()) {
    return Refuse(framing.refusal_status == 501 ? ProblemType::kNotImplemented
                                                : ProblemType::kBadRequest,
                  std::string(framing.detail));
  }
  // Belt and braces: act only on a body Beast delimits exactly as decided.
  const auto length = parser_->content_length();
  bool agree = false;
  switch (framing.framing) {
    case BodyFraming::kNone:
      agree = !parser_->chunked() && !length;
      break;
    case BodyFraming::kContentLength:
      agree = !parser_->chunked() && length == framing.content_length;
      break;
    case BodyFraming::kChunked:
      agree = parser_->chunked() && !length;
      break;
  }
  if (!agree) {
    return Refuse(ProblemType::kBadRequest, "ambiguous message framing");
  }
  framing_ = framing.framing;
  if (const std::string_view why = CheckHost(request); !why.empty()) {
    return Refuse(ProblemType::kBadRequest, std::string(why));
  }
  const std::string_view target = request.target();
  if (!target.empty() && target.front() != '/' && IsHttpAbsoluteForm(target)) {
    // Absolute-form ("http://host/path"), which a server must accept
    // (RFC 9112 §3.2.2): handlers see its origin-form. Other forms are
    // left to the router's 400.
    std::optional<std::string> origin = OriginFormOf(target);
    if (!origin) {
      return Refuse(ProblemType::kBadRequest,
                    "invalid authority in an absolute-form request target");
    }
    request.target(*origin);
  }
  return Step::kDone;
}

RequestReader::Step RequestReader::OnParseError(beast::error_code ec,
                                                beast::flat_buffer& buffer) {
  if (ec == bhttp::error::body_limit) {
    return Refuse(
        ProblemType::kPayloadTooLarge,
        "request body exceeds " + std::to_string(body_limit_) + " bytes");
  }
  if (ec == bhttp::error::header_limit) {
    return Refuse(
        ProblemType::kHeaderTooLarge,
        "request header exceeds " + std::to_string(header_limit_) + " bytes");
  }
  // Only the request line has a version: nothing of it was consumed yet.
  if (ec == bhttp::error::bad_version) return OnBadVersion(buffer);
  return Refuse(ProblemType::kBadRequest,
                "malformed HTTP request: " + ec.message());
}

RequestReader::Step RequestReader::OnBadVersion(beast::flat_buffer& buffer) {
  const auto data = buffer.data();
  char* const bytes = static_cast<char*>(data.data());
  const std::string_view seen(
      bytes, std::min<std::size_t>(data.size(), header_limit_));
  // Beast refuses "HTTP/1.2" before the line's end has arrived; decide on
  // the whole line, or the outcome would depend on how the bytes were
  // split into reads.
  const std::size_t eol = seen.find_first_of("\r\n");
  if (eol == std::string_view::npos ||
      (seen[eol] == '\r' && eol + 1 == seen.size())) {
    if (seen.size() >= header_limit_) {
      return Refuse(
          ProblemType::kHeaderTooLarge,
          "request header exceeds " + std::to_string(header_limit_) + " bytes");
    }
    ResetParser();  // nothing was consumed: parse the line again later
    return Step::kNeedMore;
  }
  const std::string_view line = seen.substr(0, eol);
  const std::size_t first_space = line.find(' ');
  const std::size_t last_space = line.rfind(' ');
  const std::string_view version = last_space == std::string_view::npos
                                       ? std::string_view()
                                       : line.substr(last_space + 1);
  // request-line = method SP request-target SP HTTP-version CRLF, the
  // version exactly "HTTP/" DIGIT "." DIGIT.
  if (seen[eol] != '\r' || seen[eol + 1] != '\n' || first_space == 0 ||
      first_space == last_space || version.size() != 8 ||
      !version.starts_with("HTTP/") || !IsDigit(version[5]) ||
      version[6] != '.' || !IsDigit(version[7])) {
    return Refuse(ProblemType::kBadRequest,
                  "malformed HTTP request: bad HTTP version");
  }
  // 400 rather than 505 (which RFC 9112 §2.3 leaves optional): no client
  // speaks another major version in an HTTP/1 request line (HTTP/2's
  // prior-knowledge preface is "PRI * HTTP/2.0"), so it is a stream this
  // server cannot frame.
  if (version[5] != '1') {
    return Refuse(ProblemType::kBadRequest,
                  std::string(version) + " is not supported; use HTTP/1.1");
  }
  if (version[7] < '2' || version_rewritten_) {
    return Refuse(ProblemType::kBadRequest,
                  "malformed HTTP request: bad HTTP version");
  }
  bytes[last_space + 1 + 7] = '1';
  ResetParser();
  version_rewritten_ = true;
  return ParseHeader(buffer);
}

void RequestReader::ResetParser() {
  parser_.emplace();
  parser_->header_limit(header_limit_);
  parser_->body_limit(body_limit_);
}

}  // namespace counterd::http
