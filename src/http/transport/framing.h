// Framing: the checks of RFC 9112 a request header must pass before anything
// of the request is acted on, where Beast's parser is more lenient than the
// RFC allows a server to be. Beast treats a Transfer-Encoding that does not
// end in exactly one "chunked" (identity, "chunked, identity", gzip,
// "chunked, chunked") as "no body", and takes identical duplicate or
// list-valued Content-Length values; a front proxy that frames such a
// message differently would then have its body run here as the next
// request (request smuggling). These functions decide instead: one body
// framing, or a refusal after which the connection is closed.
//
// Pure functions over a parsed header; thread-safe.
#ifndef COUNTERD_HTTP_TRANSPORT_FRAMING_H_
#define COUNTERD_HTTP_TRANSPORT_FRAMING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

namespace counterd::http {

using RequestHeader = boost::beast::http::request_header<>;

// How the body of an accepted request is delimited (RFC 9112 §6.3).
enum class BodyFraming {
  kNone,           // no Transfer-Encoding, no Content-Length: no body
  kContentLength,  // exactly one Content-Length, a decimal number
  kChunked,        // Transfer-Encoding is exactly "chunked"
};

struct FramingDecision {
  // 0 if the request may be read on; else the status to answer (400 or
  // 501) before closing the connection without reading further.
  unsigned refusal_status = 0;
  std::string_view detail;  // why it was refused (static text)
  BodyFraming framing = BodyFraming::kNone;
  std::uint64_t content_length = 0;  // for kContentLength

  bool ok() const { return refusal_status == 0; }
};

// Decides how the body of |header| is delimited, or refuses it:
//  - Transfer-Encoding in an HTTP/1.0 request: 400 (RFC 9112 §6.1);
//  - Transfer-Encoding together with Content-Length: 400;
//  - a Transfer-Encoding whose final coding is not "chunked" (identity,
//    gzip, xchunked, "chunked, identity"), an empty one, a malformed one,
//    "chunked" more than once or with parameters: 400;
//  - a coding before the final "chunked" (gzip, deflate, anything): 501,
//    since counterd decodes none;
//  - more than one Content-Length field line, a list-valued one (even
//    "5, 5": RFC 9110 §8.6 allows accepting identical values, but a proxy
//    may not have), or one that is not a decimal number: 400.
// Names and codings compare case-insensitively ("CHUNKED" is chunked).
FramingDecision CheckFraming(const RequestHeader& header);

// Checks the Host rules of RFC 9112 §3.2: an HTTP/1.1 request needs exactly
// one Host field, any request at most one, and its value must be a valid
// uri-host [":" port] (an empty value is valid). Returns the reason for a
// 400, or an empty view if the header passes.
std::string_view CheckHost(const RequestHeader& header);

// True if |target| starts with "http://" or "https://" (any case): an
// absolute-form target that OriginFormOf must accept, or a 400.
bool IsHttpAbsoluteForm(std::string_view target);

// The origin-form ("/path?query") of an absolute-form request target
// ("http://authority/path?query", RFC 9112 §3.2.2); the authority is
// checked and then ignored, since counterd serves one site whatever the
// name it is reached by. nullopt if |target| is not absolute-form with the
// http or https scheme and a valid authority without userinfo.
std::optional<std::string> OriginFormOf(std::string_view target);

// True if the raw header bytes |header_bytes| contain obsolete line folding
// (a field line continued on a line that starts with SP or HTAB), which
// counterd refuses with 400 (RFC 9112 §5.2 allows that) rather than let a
// proxy and this server disagree on where a field ends.
bool HasObsFold(std::string_view header_bytes);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_FRAMING_H_
