// Request-target helpers: splitting path from query, percent-decoding and
// query-string parsing. Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_URI_H_
#define COUNTERD_HTTP_API_URI_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "counterd/core/result.h"

namespace counterd::http {

struct Target {
  std::string_view path;   // up to '?' (or all of it)
  std::string_view query;  // after '?', without it; empty if none
};

// Splits a request target ("/a/b?x=1"). The absolute form a client may
// send ("http://host:8080/a/b?x=1", RFC 9112 section 3.2.2) is reduced to
// its path and query. Fragments never reach a server, so '#' is not special.
Target SplitTarget(std::string_view target);

// Decodes %XX escapes. '+' stays '+' unless |plus_is_space| (query strings).
// Returns kInvalidArgument for a '%' not followed by two hex digits.
Result<std::string> PercentDecode(std::string_view text,
                                  bool plus_is_space = false);

// Splits "a=1&b=&c" into decoded (name, value) pairs in order; "c" gets an
// empty value and empty pieces ("a=1&&b=2") are skipped. Returns
// kInvalidArgument for a bad %-escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    std::string_view query);

// Splits a path into its segments without decoding them: "/a/b" -> {a, b},
// "/a/" -> {a, ""}, "/" -> {""}. REQUIRES: path starts with '/'.
std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_URI_H_
