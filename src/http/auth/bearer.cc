#include "auth/bearer.h"

#include <boost/beast/core/string.hpp>

#include "auth/digest.h"
#include "counterd/http/auth.h"

namespace counterd::http {
namespace {

bool IsB64TokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/';
}

constexpr std::string_view kScheme = "Bearer";

}  // namespace

bool IsBearerToken(std::string_view token) {
  if (token.empty() || token.size() > kMaxBearerTokenBytes) return false;
  std::size_t i = 0;
  while (i < token.size() && IsB64TokenChar(token[i])) ++i;
  if (i == 0) return false;
  while (i < token.size() && token[i] == '=') ++i;
  return i == token.size();
}

BearerCredentials ReadBearerCredentials(const Request& request) {
  const auto [begin, end] =
      request.equal_range(boost::beast::http::field::authorization);
  if (begin == end) return {};
  // Two Authorization lines: which one would a proxy have checked?
  if (std::next(begin) != end) return {BearerCredentials::Kind::kMalformed, {}};
  std::string_view value = begin->value();
  const std::size_t space = value.find(' ');
  const std::string_view scheme = value.substr(0, space);
  if (!boost::beast::iequals(scheme, kScheme)) return {};
  if (space == std::string_view::npos) {
    return {BearerCredentials::Kind::kMalformed, {}};
  }
  value.remove_prefix(space);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  // Beast trims trailing whitespace of field values already.
  if (!IsBearerToken(value)) return {BearerCredentials::Kind::kMalformed, {}};
  return {BearerCredentials::Kind::kToken, value};
}

Result<std::string> HashTokenInput(std::string_view input) {
  if (input.ends_with('\n')) {
    input.remove_suffix(1);
    if (input.ends_with('\r')) input.remove_suffix(1);
  }
  if (input.empty()) {
    return Status::InvalidArgument("no token on standard input");
  }
  if (!IsBearerToken(input)) {
    return Status::InvalidArgument(
        "the token must be 1 to " + std::to_string(kMaxBearerTokenBytes) +
        " of A-Z a-z 0-9 - . _ ~ + / followed by optional '=' (RFC 6750 "
        "b64token), on one line; nothing else can be sent as "
        "\"Authorization: Bearer <token>\"");
  }
  return ToHex(Sha256(input));
}

}  // namespace counterd::http
