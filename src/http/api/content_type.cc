#include "api/content_type.h"

#include <string>

namespace counterd::http {

bool IsJsonMediaType(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() &&
         (content_type.front() == ' ' || content_type.front() == '\t')) {
    content_type.remove_prefix(1);
  }
  while (!content_type.empty() &&
         (content_type.back() == ' ' || content_type.back() == '\t')) {
    content_type.remove_suffix(1);
  }
  std::string lower(content_type);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  constexpr std::string_view kApplication = "application/";
  constexpr std::string_view kJsonSuffix = "+json";
  if (lower == kJsonType) return true;
  return lower.size() > kApplication.size() + kJsonSuffix.size() &&
         lower.starts_with(kApplication) && lower.ends_with(kJsonSuffix) &&
         lower.find('/', kApplication.size()) == std::string::npos;
}

}  // namespace counterd::http
