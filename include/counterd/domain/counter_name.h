// CounterName: a validated counter name. A value type; thread-compatible.
// Names are 1 to 128 characters from A-Z a-z 0-9 . _ - : and are neither "."
// nor "..", so Redis-style "user:42:logins" works and no name can be read as
// a path segment. Parse at the edge; everything inside takes a CounterName.
#ifndef COUNTERD_DOMAIN_COUNTER_NAME_H_
#define COUNTERD_DOMAIN_COUNTER_NAME_H_

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>

#include "counterd/core/result.h"

namespace counterd::domain {

class CounterName {
 public:
  static constexpr std::size_t kMaxLength = 128;
  static constexpr std::string_view kDefault = "default";

  // Returns kInvalidArgument, saying which rule failed, for a bad name.
  static Result<CounterName> Parse(std::string_view text);
  // The counter behind the classic /counter endpoints.
  static CounterName Default();

  const std::string& str() const { return value_; }
  auto operator<=>(const CounterName&) const = default;

 private:
  explicit CounterName(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

// True if |c| may appear in a counter name (also a valid list prefix).
bool IsCounterNameChar(char c);

}  // namespace counterd::domain

#endif  // COUNTERD_DOMAIN_COUNTER_NAME_H_
