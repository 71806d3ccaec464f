#include "api/uri.h"

#include <algorithm>
#include <optional>

namespace counterd::http {
namespace {

std::optional<int> HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

}  // namespace

Target SplitTarget(std::string_view target) {
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() &&
        std::equal(scheme.begin(), scheme.end(), target.begin(),
                   [](char a, char b) {
                     return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
                   })) {
      const std::size_t path = target.find_first_of("/?", scheme.size());
      target = path == std::string_view::npos ? std::string_view("/")
                                              : target.substr(path);
      if (target.front() == '?') return {"/", target.substr(1)};
      break;
    }
  }
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const auto hi =
          i + 1 < text.size() ? HexValue(text[i + 1]) : std::nullopt;
      const auto lo =
          i + 2 < text.size() ? HexValue(text[i + 2]) : std::nullopt;
      if (!hi || !lo) {
        return Status::InvalidArgument(
            "invalid percent-encoding: '%' must be followed by two hex "
            "digits");
      }
      out.push_back(static_cast<char>(*hi * 16 + *lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    Result<std::string> name =
        PercentDecode(piece.substr(0, eq), /*plus_is_space=*/true);
    if (!name) return name.error();
    Result<std::string> value =
        eq == std::string_view::npos
            ? Result<std::string>(std::string())
            : PercentDecode(piece.substr(eq + 1), /*plus_is_space=*/true);
    if (!value) return value.error();
    params.emplace_back(std::move(*name), std::move(*value));
  }
  return params;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);  // the leading '/'
  while (true) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

}  // namespace counterd::http
