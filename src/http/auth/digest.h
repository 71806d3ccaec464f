// SHA-256 digests of bearer tokens (OpenSSL libcrypto), their hex form for
// the tokens file, and the constant-time comparison used to look tokens up.
// Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_AUTH_DIGEST_H_
#define COUNTERD_HTTP_AUTH_DIGEST_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace counterd::http {

using Digest = std::array<std::uint8_t, 32>;

// SHA-256 of |data|'s bytes.
Digest Sha256(std::string_view data);

// 64 lowercase hex digits.
std::string ToHex(const Digest& digest);

// The digest spelled by exactly 64 lowercase hex digits, else nullopt.
std::optional<Digest> ParseHexDigest(std::string_view hex);

// True if |a| and |b| are equal. Always reads all 32 bytes of both
// (CRYPTO_memcmp): its time does not depend on where they differ.
bool DigestsEqual(const Digest& a, const Digest& b);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_AUTH_DIGEST_H_
