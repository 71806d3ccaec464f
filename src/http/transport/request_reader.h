// RequestReader: turns a connection's buffered bytes into requests, one at a
// time, with Beast's request_parser plus the rules of RFC 9112 that Beast
// does not enforce (framing.h): body framing, Host, obsolete line folding,
// the HTTP version. It has no socket: the session feeds it its read buffer,
// and the HTTP fuzz target feeds it the fuzzer's bytes, so both run the very
// same decisions about where a message ends.
//
// A refused message is answered (refusal()) and the connection closed;
// nothing of it is acted on and nothing after it is parsed.
//
// Thread-safety: none; one per connection, used on its thread.
#ifndef COUNTERD_HTTP_TRANSPORT_REQUEST_READER_H_
#define COUNTERD_HTTP_TRANSPORT_REQUEST_READER_H_

#include <cstdint>
#include <optional>
#include <string>

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "api/message.h"
#include "api/problem.h"
#include "transport/framing.h"

namespace counterd::http {

class RequestReader {
 public:
  enum class Step {
    kNeedMore,  // read more bytes into the buffer, then call again
    kDone,      // the header (ParseHeader) or message (ParseBody) is complete
    kRefused,   // answer refusal(), then close without reading on
  };

  struct Refusal {
    ProblemType type = ProblemType::kBadRequest;
    std::string detail;
  };

  // Begins a new message with a fresh parser whose limits are set before
  // its first octet (Beast: set late, they are undefined behaviour).
  void Start(std::uint32_t header_limit, std::uint64_t body_limit);

  // Parses the header from |buffer|, consuming what it used; stops at the
  // end of the header, so a body sent along with "Expect: 100-continue"
  // is still unread. kDone: the header is complete and passed the checks,
  // and an absolute-form target has been rewritten to origin-form.
  // REQUIRES: Start was called and the header is not done.
  Step ParseHeader(boost::beast::flat_buffer& buffer);

  // Parses the body from |buffer|, consuming what it used. kDone: the
  // message is complete. REQUIRES: ParseHeader returned kDone.
  Step ParseBody(boost::beast::flat_buffer& buffer);

  bool started() const { return parser_ && parser_->got_some(); }
  bool header_done() const { return parser_ && parser_->is_header_done(); }
  bool done() const { return parser_ && parser_->is_done(); }
  // The request as parsed so far (the header once header_done()).
  // REQUIRES: Start was called since the last Release.
  const Request& request() const { return parser_->get(); }
  // How the body is delimited. REQUIRES: header_done().
  BodyFraming framing() const { return framing_; }
  // Hands over the complete request and ends the message.
  Request Release();
  // Why the last step was kRefused.
  const Refusal& refusal() const { return refusal_; }

 private:
  Step Refuse(ProblemType type, std::string detail);
  Step OnHeaderParsed();
  Step OnParseError(boost::beast::error_code ec,
                    boost::beast::flat_buffer& buffer);
  // A start line Beast refused for its version: "HTTP/1.x" for x > 1 is
  // served as HTTP/1.1 (RFC 9110 §2.5), by rewriting the digit in |buffer|
  // and parsing again; any other version is a 400 naming it.
  Step OnBadVersion(boost::beast::flat_buffer& buffer);
  // A fresh parser with the limits, set before its first octet.
  void ResetParser();

  std::optional<
      boost::beast::http::request_parser<boost::beast::http::string_body>>
      parser_;
  std::uint32_t header_limit_ = 0;
  std::uint64_t body_limit_ = 0;
  BodyFraming framing_ = BodyFraming::kNone;
  bool version_rewritten_ = false;
  Refusal refusal_;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_REQUEST_READER_H_
