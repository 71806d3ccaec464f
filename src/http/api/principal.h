// Principal: who a request runs as once its bearer token is known: the
// token's name, its scopes and the counter-name prefixes it is limited to.
// It lives in the API room so that handlers can filter what they show (the
// list of counters) without knowing how tokens are checked (src/http/auth).
// An immutable value type; thread-safe once built.
#ifndef COUNTERD_HTTP_API_PRINCIPAL_H_
#define COUNTERD_HTTP_API_PRINCIPAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace counterd::http {

// What a token may do. read: GET/HEAD of counters and the list; write: PUT,
// POST and DELETE on counters; metrics: GET /metrics; admin: GET / and the
// administrative endpoints. Scopes do not imply one another.
enum class Scope : std::uint8_t { kRead, kWrite, kMetrics, kAdmin };
inline constexpr Scope kAllScopes[] = {Scope::kRead, Scope::kWrite,
                                       Scope::kMetrics, Scope::kAdmin};

// "read", "write", "metrics", "admin".
std::string_view ScopeName(Scope scope);
// The scope called |name|, or nullopt.
std::optional<Scope> ParseScope(std::string_view name);

class Principal {
 public:
  // |prefixes| empty: every counter. Prefixes that extend another one in
  // the list add nothing and are dropped; the rest are kept sorted.
  Principal(std::string name, const std::vector<Scope>& scopes,
            std::vector<std::string> prefixes);

  // The token's name from the tokens file (never the token itself): what
  // logs, problem details and Idempotency-Key scopes use.
  const std::string& name() const { return name_; }
  bool HasScope(Scope scope) const;
  // True when the token names prefixes; false means every counter.
  bool is_limited() const { return !prefixes_.empty(); }
  // Sorted, none a prefix of another (so the name ranges they cover are
  // disjoint and in the same order as the prefixes).
  const std::vector<std::string>& prefixes() const { return prefixes_; }

  // The prefix rule alone: |counter| starts with one of the prefixes (or
  // the token has none).
  bool MayTouch(std::string_view counter) const;
  bool MayRead(std::string_view counter) const {
    return HasScope(Scope::kRead) && MayTouch(counter);
  }
  bool MayWrite(std::string_view counter) const {
    return HasScope(Scope::kWrite) && MayTouch(counter);
  }
  // GET /counters?prefix=|query_prefix| is within the token's counters:
  // |query_prefix| starts with one of its prefixes (or it has none).
  bool MayListPrefix(std::string_view query_prefix) const {
    return MayTouch(query_prefix);
  }
  // The prefixes to list for a query with |query_prefix| ("" = none) so
  // that only counters the token may touch are shown: {query_prefix} when
  // it lies within one of the token's prefixes, else those of its prefixes
  // that extend |query_prefix| (possibly none). Sorted and disjoint.
  std::vector<std::string> ListPrefixes(std::string_view query_prefix) const;

  // "read, write" (for problem details and logs).
  std::string ScopeList() const;
  // "\"billing:\", \"shared:\"" (for problem details).
  std::string PrefixList() const;

 private:
  std::string name_;
  std::uint8_t scopes_ = 0;  // bit (1 << Scope)
  std::vector<std::string> prefixes_;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_PRINCIPAL_H_
