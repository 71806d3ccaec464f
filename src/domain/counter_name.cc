#include "counterd/domain/counter_name.h"

#include <string>

namespace counterd::domain {

bool IsCounterNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == ':';
}

Result<CounterName> CounterName::Parse(std::string_view text) {
  if (text.empty()) {
    return Status::InvalidArgument("counter name is empty");
  }
  if (text.size() > kMaxLength) {
    return Status::InvalidArgument("counter name is longer than " +
                                   std::to_string(kMaxLength) + " characters");
  }
  for (const char c : text) {
    if (!IsCounterNameChar(c)) {
      return Status::InvalidArgument(
          "counter name may only contain A-Z a-z 0-9 . _ - :");
    }
  }
  if (text == "." || text == "..") {
    return Status::InvalidArgument("counter name may not be '.' or '..'");
  }
  return CounterName(std::string(text));
}

CounterName CounterName::Default() {
  return CounterName(std::string(kDefault));
}

}  // namespace counterd::domain
