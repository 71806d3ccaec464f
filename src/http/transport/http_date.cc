#include "transport/http_date.h"

#include <cstdint>
#include <limits>

namespace counterd::http {
namespace {

void Put2(char* out, unsigned v) {
  out[0] = static_cast<char>('0' + v / 10 % 10);
  out[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

std::array<char, kHttpDateSize> FormatHttpDate(
    std::chrono::system_clock::time_point t) {
  static constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
  static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::weekday weekday{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  int year = static_cast<int>(ymd.year());
  year = year < 0 ? 0 : (year > 9999 ? 9999 : year);

  // "Sun, 06 Nov 1994 08:49:37 GMT"
  std::array<char, kHttpDateSize> out{};
  char* p = out.data();
  const char* day = kDays[weekday.c_encoding()];
  const char* month = kMonths[static_cast<unsigned>(ymd.month()) - 1];
  p[0] = day[0];
  p[1] = day[1];
  p[2] = day[2];
  p[3] = ',';
  p[4] = ' ';
  Put2(p + 5, static_cast<unsigned>(ymd.day()));
  p[7] = ' ';
  p[8] = month[0];
  p[9] = month[1];
  p[10] = month[2];
  p[11] = ' ';
  Put2(p + 12, static_cast<unsigned>(year) / 100);
  Put2(p + 14, static_cast<unsigned>(year) % 100);
  p[16] = ' ';
  Put2(p + 17, static_cast<unsigned>(hms.hours().count()));
  p[19] = ':';
  Put2(p + 20, static_cast<unsigned>(hms.minutes().count()));
  p[22] = ':';
  Put2(p + 23, static_cast<unsigned>(hms.seconds().count()));
  p[25] = ' ';
  p[26] = 'G';
  p[27] = 'M';
  p[28] = 'T';
  return out;
}

std::string_view HttpDateNow() {
  struct Cache {
    std::int64_t second = std::numeric_limits<std::int64_t>::min();
    std::array<char, kHttpDateSize> text{};
  };
  thread_local Cache cache;
  const auto now = std::chrono::system_clock::now();
  const std::int64_t second =
      std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  if (second != cache.second) {
    cache.text = FormatHttpDate(now);
    cache.second = second;
  }
  return {cache.text.data(), cache.text.size()};
}

}  // namespace counterd::http
