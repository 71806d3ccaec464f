// Media-type checks for request bodies. Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_CONTENT_TYPE_H_
#define COUNTERD_HTTP_API_CONTENT_TYPE_H_

#include <string_view>

namespace counterd::http {

inline constexpr std::string_view kJsonType = "application/json";
inline constexpr std::string_view kProblemJsonType = "application/problem+json";

// True for "application/json" and "application/<anything>+json", in any
// letter case and with any parameters ("application/json; charset=utf-8").
bool IsJsonMediaType(std::string_view content_type);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_CONTENT_TYPE_H_
