// The Date header field every response carries (RFC 9110 §6.6.1), as an
// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
//
// HttpDateNow formats at most once per second per thread: each I/O thread
// keeps the text of the current second and reformats it only when the
// second changes, so a response costs one clock read. Thread-safe.
#ifndef COUNTERD_HTTP_TRANSPORT_HTTP_DATE_H_
#define COUNTERD_HTTP_TRANSPORT_HTTP_DATE_H_

#include <array>
#include <chrono>
#include <string_view>

namespace counterd::http {

inline constexpr std::size_t kHttpDateSize = 29;

// |t| (truncated to the second) as an IMF-fixdate, in UTC. Years outside
// 0..9999 are clamped; this is a wall clock, not a calendar.
std::array<char, kHttpDateSize> FormatHttpDate(
    std::chrono::system_clock::time_point t);

// The current second as an IMF-fixdate. The view stays valid on this
// thread until the next call.
std::string_view HttpDateNow();

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_HTTP_DATE_H_
