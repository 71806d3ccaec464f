#include "api/etag.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

namespace counterd::http {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

struct EntityTag {
  bool weak = false;
  // The version the opaque tag names, if it is one we could have issued.
  std::optional<std::uint64_t> version;
};

std::optional<std::uint64_t> ParseVersion(std::string_view opaque) {
  if (opaque.empty() || (opaque.size() > 1 && opaque.front() == '0')) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  const auto [end, ec] =
      std::from_chars(opaque.data(), opaque.data() + opaque.size(), v);
  if (ec != std::errc() || end != opaque.data() + opaque.size()) {
    return std::nullopt;
  }
  return v;
}

// Splits a comma-separated list of entity-tags. Commas may occur inside a
// quoted tag, so this scans quotes instead of splitting on ','. Anything
// that is not a well-formed tag becomes a tag with no version.
std::vector<EntityTag> ParseTagList(std::string_view s) {
  std::vector<EntityTag> tags;
  std::size_t i = 0;
  while (i < s.size()) {
    if (IsSpace(s[i]) || s[i] == ',') {
      ++i;
      continue;
    }
    EntityTag tag;
    if (s.substr(i, 2) == "W/") {
      tag.weak = true;
      i += 2;
    }
    if (i < s.size() && s[i] == '"') {
      const std::size_t close = s.find('"', i + 1);
      if (close == std::string_view::npos) {
        tags.push_back(EntityTag{});
        break;
      }
      tag.version = ParseVersion(s.substr(i + 1, close - i - 1));
      i = close + 1;
      // Junk between the closing quote and the next comma spoils the tag.
      while (i < s.size() && s[i] != ',') {
        if (!IsSpace(s[i])) tag.version.reset();
        ++i;
      }
    } else {
      const std::size_t comma = s.find(',', i);
      i = comma == std::string_view::npos ? s.size() : comma;
      tag.version.reset();
    }
    tags.push_back(tag);
  }
  return tags;
}

}  // namespace

std::string FormatETag(std::uint64_t version) {
  return '"' + std::to_string(version) + '"';
}

bool IsWildcard(std::string_view field_value) {
  return Trim(field_value) == "*";
}

void AddIfMatch(std::string_view field_value, domain::Precondition& pre) {
  if (IsWildcard(field_value)) {
    pre.must_exist = true;
    return;
  }
  const std::vector<EntityTag> tags = ParseTagList(field_value);
  if (tags.empty()) {
    // An empty If-Match can match nothing.
    pre.version_in.push_back(0);
    return;
  }
  for (const EntityTag& tag : tags) {
    pre.version_in.push_back(tag.weak || !tag.version ? 0 : *tag.version);
  }
}

bool IfNoneMatchMatches(std::string_view field_value, std::uint64_t version) {
  if (IsWildcard(field_value)) return true;
  return std::ranges::any_of(
      ParseTagList(field_value),
      [version](const EntityTag& tag) { return tag.version == version; });
}

}  // namespace counterd::http
