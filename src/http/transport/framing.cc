#include "transport/framing.h"

#include <algorithm>
#include <vector>

#include <boost/beast/core/string.hpp>

namespace counterd::http {
namespace {

namespace bhttp = boost::beast::http;

// Character classes as tables: these run on every request's header.
struct CharClasses {
  bool tchar[256] = {};     // tchar (RFC 9110 §5.6.2)
  bool reg_name[256] = {};  // unreserved / sub-delims (RFC 3986 §2)
  bool hex[256] = {};
};

constexpr CharClasses MakeCharClasses() {
  CharClasses c;
  for (int i = 0; i < 256; ++i) {
    const bool alnum = (i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z') ||
                       (i >= '0' && i <= '9');
    c.tchar[i] = alnum;
    c.reg_name[i] = alnum;
    c.hex[i] = (i >= '0' && i <= '9') || (i >= 'a' && i <= 'f') ||
               (i >= 'A' && i <= 'F');
  }
  for (const char ch : std::string_view("!#$%&'*+-.^_`|~")) {
    c.tchar[static_cast<unsigned char>(ch)] = true;
  }
  for (const char ch : std::string_view("-._~!$&'()*+,;=")) {
    c.reg_name[static_cast<unsigned char>(ch)] = true;
  }
  return c;
}

constexpr CharClasses kChars = MakeCharClasses();

bool IsTokenChar(char c) { return kChars.tchar[static_cast<unsigned char>(c)]; }

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsHexDigit(char c) { return kChars.hex[static_cast<unsigned char>(c)]; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

struct Coding {
  std::string_view name;
  bool has_parameters = false;
};

// The codings of every Transfer-Encoding line, in order; empty list
// elements are skipped (RFC 9110 §5.6.1). False if an element's name is not
// a token. Parameters are not parsed: a coding with any is refused anyway.
bool ParseCodings(const RequestHeader& header, std::vector<Coding>& out) {
  // A linear pass comparing field codes: cheaper than the fields' ordered
  // index (case-insensitive name compares) for a header's few lines.
  for (const auto& f : header) {
    if (f.name() != bhttp::field::transfer_encoding) continue;
    std::string_view value = f.value();
    while (true) {
      const std::size_t comma = value.find(',');
      std::string_view element = TrimOws(value.substr(0, comma));
      if (!element.empty()) {
        Coding coding;
        const std::size_t semi = element.find(';');
        if (semi != std::string_view::npos) {
          coding.has_parameters = true;
          element = TrimOws(element.substr(0, semi));
        }
        if (!IsToken(element)) return false;
        coding.name = element;
        out.push_back(coding);
      }
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  return true;
}

bool IsChunked(const Coding& coding) {
  return boost::beast::iequals(coding.name, "chunked");
}

FramingDecision Refuse(unsigned status, std::string_view detail) {
  FramingDecision d;
  d.refusal_status = status;
  d.detail = detail;
  return d;
}

// The characters a reg-name may hold besides pct-encoded triplets.
bool IsRegNameChar(char c) {
  return kChars.reg_name[static_cast<unsigned char>(c)];
}

// The inside of an IP-literal's brackets: IPv6address / IPvFuture, checked
// only for their characters.
bool IsIpLiteralBody(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsHexDigit(c) || c == ':' || c == '.' || c == 'v' || c == 'V' ||
           IsRegNameChar(c);
  });
}

// reg-name = *( unreserved / pct-encoded / sub-delims ); may be empty.
bool IsRegName(std::string_view host) {
  for (std::size_t i = 0; i < host.size(); ++i) {
    if (host[i] == '%') {
      if (i + 2 >= host.size() || !IsHexDigit(host[i + 1]) ||
          !IsHexDigit(host[i + 2])) {
        return false;
      }
      i += 2;
    } else if (!IsRegNameChar(host[i])) {
      return false;
    }
  }
  return true;
}

// port = *DIGIT (RFC 3986 §3.2.3): may be empty.
bool IsPort(std::string_view port) {
  return std::all_of(port.begin(), port.end(), IsDigit);
}

// uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP-literal in
// brackets, or a reg-name (which covers IPv4 and the empty host).
bool IsValidHostPort(std::string_view s) {
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    if (!IsIpLiteralBody(s.substr(1, close - 1))) return false;
    s.remove_prefix(close + 1);
    if (s.empty()) return true;
    return s.front() == ':' && IsPort(s.substr(1));
  }
  const std::size_t colon = s.find(':');
  if (!IsRegName(s.substr(0, colon))) return false;
  return colon == std::string_view::npos || IsPort(s.substr(colon + 1));
}

// The length of an "http://" or "https://" prefix (any case), else 0.
std::size_t SchemeLength(std::string_view target) {
  if (target.size() >= 7 &&
      boost::beast::iequals(target.substr(0, 7), "http://")) {
    return 7;
  }
  if (target.size() >= 8 &&
      boost::beast::iequals(target.substr(0, 8), "https://")) {
    return 8;
  }
  return 0;
}

// A request with Transfer-Encoding: accepted only as HTTP/1.1, without
// Content-Length, with chunked as its one and final coding.
FramingDecision CheckTransferEncoding(const RequestHeader& header,
                                      int cl_count) {
  if (header.version() < 11) {
    return Refuse(400, "Transfer-Encoding is not allowed in HTTP/1.0");
  }
  if (cl_count > 0) {
    return Refuse(400,
                  "Content-Length and Transfer-Encoding must not both be "
                  "sent");
  }
  std::vector<Coding> codings;
  if (!ParseCodings(header, codings)) {
    return Refuse(400, "malformed Transfer-Encoding");
  }
  if (codings.empty()) return Refuse(400, "empty Transfer-Encoding");
  if (!IsChunked(codings.back())) {
    return Refuse(400, "Transfer-Encoding must end in chunked");
  }
  if (codings.back().has_parameters) {
    return Refuse(400, "chunked takes no parameters");
  }
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (IsChunked(codings[i])) {
      return Refuse(400, "chunked must be applied only once");
    }
  }
  if (codings.size() > 1) {
    return Refuse(501,
                  "only the chunked transfer coding is implemented (no "
                  "gzip, deflate or other codings)");
  }
  FramingDecision d;
  d.framing = BodyFraming::kChunked;
  return d;
}

// The one Content-Length line's |value|: 1*DIGIT that fits in 64 bits.
FramingDecision CheckContentLength(std::string_view value) {
  if (value.empty()) return Refuse(400, "empty Content-Length");
  std::uint64_t length = 0;
  for (const char c : value) {
    if (!IsDigit(c)) {
      return Refuse(400, "Content-Length must be one decimal number");
    }
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (length > (UINT64_MAX - digit) / 10) {
      return Refuse(400, "Content-Length is too large");
    }
    length = length * 10 + digit;
  }
  FramingDecision d;
  d.framing = BodyFraming::kContentLength;
  d.content_length = length;
  return d;
}

}  // namespace

FramingDecision CheckFraming(const RequestHeader& header) {
  // One pass over the lines (see ParseCodings).
  bool te = false;
  int cl_count = 0;
  std::string_view cl_value;
  for (const auto& f : header) {
    if (f.name() == bhttp::field::transfer_encoding) {
      te = true;
    } else if (f.name() == bhttp::field::content_length) {
      ++cl_count;
      cl_value = f.value();
    }
  }
  if (te) return CheckTransferEncoding(header, cl_count);
  if (cl_count == 0) return {};
  if (cl_count > 1) return Refuse(400, "Content-Length must be sent once");
  return CheckContentLength(cl_value);
}

std::string_view CheckHost(const RequestHeader& header) {
  int hosts = 0;
  std::string_view value;
  for (const auto& f : header) {  // see ParseCodings
    if (f.name() == bhttp::field::host) {
      ++hosts;
      value = f.value();
    }
  }
  if (hosts == 0) {
    return header.version() >= 11 ? "an HTTP/1.1 request needs a Host header"
                                  : "";
  }
  if (hosts > 1) return "Host must be sent once";
  if (!IsValidHostPort(value)) return "invalid Host header";
  return "";
}

bool IsHttpAbsoluteForm(std::string_view target) {
  return SchemeLength(target) > 0;
}

std::optional<std::string> OriginFormOf(std::string_view target) {
  const std::size_t scheme_end = SchemeLength(target);
  if (scheme_end == 0) return std::nullopt;
  std::string_view rest = target.substr(scheme_end);
  const std::size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  // userinfo is deprecated and a recipient should treat it as an error
  // (RFC 9110 §4.2.4); an empty host is invalid for http(s) (§4.2.1).
  if (authority.empty() || authority.front() == ':' ||
      authority.find('@') != std::string_view::npos ||
      !IsValidHostPort(authority)) {
    return std::nullopt;
  }
  if (authority_end == std::string_view::npos) return std::string("/");
  rest.remove_prefix(authority_end);
  // A fragment is never sent (RFC 9112 §3.2).
  if (rest.find('#') != std::string_view::npos) return std::nullopt;
  if (rest.front() == '?') return "/" + std::string(rest);
  return std::string(rest);
}

bool HasObsFold(std::string_view header_bytes) {
  std::size_t pos = 0;
  while ((pos = header_bytes.find('\n', pos)) != std::string_view::npos) {
    ++pos;
    if (pos < header_bytes.size() &&
        (header_bytes[pos] == ' ' || header_bytes[pos] == '\t')) {
      return true;
    }
  }
  return false;
}

}  // namespace counterd::http
