// TokenSet: the tokens file as counterd uses it: for each token the SHA-256
// of its bytes and the Principal it stands for. Built by the codec
// (token_file_codec.h), immutable afterwards and shared by reference count:
// a reload swaps in a new set while requests still hold the old one.
// Thread-safe (immutable).
#ifndef COUNTERD_HTTP_AUTH_TOKEN_SET_H_
#define COUNTERD_HTTP_AUTH_TOKEN_SET_H_

#include <cstddef>
#include <vector>

#include "api/principal.h"
#include "auth/digest.h"

namespace counterd::http {

class TokenSet {
 public:
  struct Entry {
    Digest digest{};  // SHA-256 of the token
    Principal principal;
  };

  // REQUIRES: names and digests are unique (the codec checks both).
  explicit TokenSet(std::vector<Entry> entries);

  // The principal whose digest equals |digest|, or null.
  //
  // Timing: the presented token is hashed once, and its digest is compared
  // with every known digest in full (DigestsEqual reads all 32 bytes; the
  // loop never stops early), so the time taken depends on the number of
  // tokens only, never on how much of a known digest a guess matches. Even
  // a leaky comparison here would reveal bytes of SHA-256(guess) versus the
  // stored digests, which does not help find a token (the attacker cannot
  // steer a digest's bytes); the full comparison removes even that, and
  // the raw token is never compared with anything.
  const Principal* Find(const Digest& digest) const;

  std::size_t size() const { return entries_.size(); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_AUTH_TOKEN_SET_H_
