#include "api/principal.h"

#include <algorithm>
#include <utility>

namespace counterd::http {
namespace {

std::uint8_t Bit(Scope scope) {
  return static_cast<std::uint8_t>(1u << static_cast<unsigned>(scope));
}

// Sorted, without a prefix that another one in the list already covers.
std::vector<std::string> Minimal(std::vector<std::string> prefixes) {
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  std::vector<std::string> out;
  for (std::string& p : prefixes) {
    // Sorted order puts "a" right before its extensions "a:", "ab", ...
    if (!out.empty() && p.starts_with(out.back())) continue;
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead:
      return "read";
    case Scope::kWrite:
      return "write";
    case Scope::kMetrics:
      return "metrics";
    case Scope::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Scope> ParseScope(std::string_view name) {
  for (const Scope scope : kAllScopes) {
    if (ScopeName(scope) == name) return scope;
  }
  return std::nullopt;
}

Principal::Principal(std::string name, const std::vector<Scope>& scopes,
                     std::vector<std::string> prefixes)
    : name_(std::move(name)), prefixes_(Minimal(std::move(prefixes))) {
  for (const Scope scope : scopes) scopes_ |= Bit(scope);
}

bool Principal::HasScope(Scope scope) const {
  return (scopes_ & Bit(scope)) != 0;
}

bool Principal::MayTouch(std::string_view counter) const {
  if (prefixes_.empty()) return true;
  return std::any_of(
      prefixes_.begin(), prefixes_.end(),
      [counter](const std::string& p) { return counter.starts_with(p); });
}

std::vector<std::string> Principal::ListPrefixes(
    std::string_view query_prefix) const {
  if (MayTouch(query_prefix)) return {std::string(query_prefix)};
  std::vector<std::string> out;
  for (const std::string& p : prefixes_) {
    if (std::string_view(p).starts_with(query_prefix)) out.push_back(p);
  }
  return out;
}

std::string Principal::ScopeList() const {
  std::string out;
  for (const Scope scope : kAllScopes) {
    if (!HasScope(scope)) continue;
    if (!out.empty()) out += ", ";
    out += ScopeName(scope);
  }
  return out.empty() ? "none" : out;
}

std::string Principal::PrefixList() const {
  std::string out;
  for (const std::string& p : prefixes_) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += p;
    out += '"';
  }
  return out;
}

}  // namespace counterd::http
