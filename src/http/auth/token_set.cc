#include "auth/token_set.h"

#include <utility>

#include "counterd/http/auth.h"

namespace counterd::http {

TokenSet::TokenSet(std::vector<Entry> entries) : entries_(std::move(entries)) {}

const Principal* TokenSet::Find(const Digest& digest) const {
  const Principal* found = nullptr;
  for (const Entry& entry : entries_) {
    // No early exit: every entry is compared (see the header).
    const bool equal = DigestsEqual(entry.digest, digest);
    if (equal) found = &entry.principal;
  }
  return found;
}

std::size_t TokenCount(const TokenSet& tokens) { return tokens.size(); }

}  // namespace counterd::http
