// The Authorization request header for bearer tokens (RFC 6750 section
// 2.1): "Bearer" 1*SP b64token. Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_AUTH_BEARER_H_
#define COUNTERD_HTTP_AUTH_BEARER_H_

#include <cstddef>
#include <string_view>

#include "api/message.h"

namespace counterd::http {

// Longest token accepted; a token must also fit --max-header-bytes.
inline constexpr std::size_t kMaxBearerTokenBytes = 4096;

// RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=", at most kMaxBearerTokenBytes long.
bool IsBearerToken(std::string_view token);

struct BearerCredentials {
  enum class Kind {
    kToken,      // |token| holds a well-formed bearer token
    kMissing,    // no Authorization header, or one with another scheme
    kMalformed,  // "Bearer" without a well-formed token, or sent twice
  };
  Kind kind = Kind::kMissing;
  std::string_view token;  // points into the request; kToken only
};

// Reads the bearer token of |request|. The scheme is case-insensitive
// (RFC 9110 section 11.1); another scheme (Basic, ...) counts as no bearer
// credentials, as RFC 6750 section 3.1 treats it.
BearerCredentials ReadBearerCredentials(const Request& request);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_AUTH_BEARER_H_
