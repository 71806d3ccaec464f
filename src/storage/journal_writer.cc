#include "journal_writer.h"

#include <charconv>
#include <cstdio>

namespace counterd::storage {

namespace {
constexpr std::string_view kPrefix = "journal-";
constexpr std::string_view kSuffix = ".log";
constexpr std::size_t kDigits = 20;
}  // namespace

std::string JournalFileName(std::uint64_t first_seq) {
  char digits[kDigits + 1];
  std::snprintf(digits, sizeof(digits), "%020llu",
                static_cast<unsigned long long>(first_seq));  // NOLINT
  return std::string(kPrefix) + digits + std::string(kSuffix);
}

bool ParseJournalFileName(std::string_view name, std::uint64_t& first_seq) {
  if (name.size() != kPrefix.size() + kDigits + kSuffix.size() ||
      !name.starts_with(kPrefix) || !name.ends_with(kSuffix)) {
    return false;
  }
  const std::string_view digits = name.substr(kPrefix.size(), kDigits);
  const auto [ptr, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), first_seq);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

}  // namespace counterd::storage
