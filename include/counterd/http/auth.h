// Bearer-token authentication as the application sets it up: parsing the
// tokens file (--auth-tokens-file) into a TokenSet the server checks every
// request against, and `counterd hash-token`. The TokenSet is opaque here
// (src/http/auth/token_set.h); the server swaps sets on reload
// (Server::ReplaceTokens). Pure functions; thread-safe.
//
// The file format, and what each scope allows, are in docs/security.md.
#ifndef COUNTERD_HTTP_AUTH_H_
#define COUNTERD_HTTP_AUTH_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "counterd/core/result.h"

namespace counterd::http {

class TokenSet;

// Parses the contents |text| of the tokens file |path| (the path is used
// only in messages). Returns kInvalidArgument with one line naming the file
// and, where there is one, the entry by index and name, e.g.
//   /etc/counterd/tokens.json: tokens[2] (name "ops"): unknown scope "rw"
// for: text that is not JSON, a duplicate key in an object, a top level
// that is not {"tokens": [...]} or has other fields, an empty list, an
// entry that is not an object or has fields other than name, sha256,
// scopes and prefixes, a name that is not 1-64 of [A-Za-z0-9._-] or
// repeats an earlier one, a sha256 that is not exactly 64 lowercase hex
// digits or repeats an earlier one, scopes missing, empty, repeated or
// other than read/write/metrics/admin, prefixes present but empty,
// repeated, or not 1-128 counter-name characters.
Result<std::shared_ptr<const TokenSet>> ParseTokenFile(std::string_view path,
                                                       std::string_view text);

std::size_t TokenCount(const TokenSet& tokens);

// `counterd hash-token`: |input| is everything read from standard input.
// One trailing "\n" (or "\r\n") is not part of the token. Returns the
// 64-hex SHA-256 line to paste as "sha256", or kInvalidArgument when what
// remains is not a token a client can send as "Authorization: Bearer
// <token>" (RFC 6750 b64token: 1-4096 of A-Z a-z 0-9 - . _ ~ + / then
// optional '='), so no hash is ever made of a token that could not work.
Result<std::string> HashTokenInput(std::string_view input);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_AUTH_H_
