// Entity tags: a counter's ETag is its version as a strong tag ("7"). These
// functions format it and evaluate If-Match / If-None-Match (RFC 9110
// section 13.1). Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_ETAG_H_
#define COUNTERD_HTTP_API_ETAG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "counterd/domain/counter.h"

namespace counterd::http {

// "\"7\"" for version 7.
std::string FormatETag(std::uint64_t version);

// Adds one If-Match field value to |pre|: "*" sets must_exist; each listed
// tag adds its version to version_in. A weak or unparseable tag (or one that
// is not a version we issue, like "07") adds version 0, which never matches,
// because If-Match uses strong comparison. Call once per If-Match field.
void AddIfMatch(std::string_view field_value, domain::Precondition& pre);

// True if an If-None-Match field value matches a counter at |version|: "*",
// or any listed tag equal to FormatETag(version) under weak comparison
// (W/"7" matches "7"), as RFC 9110 prescribes for If-None-Match.
bool IfNoneMatchMatches(std::string_view field_value, std::uint64_t version);

// True if the field value is exactly "*" (surrounding spaces allowed).
bool IsWildcard(std::string_view field_value);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_ETAG_H_
