// IdempotencyKey: a validated Idempotency-Key header value: 1 to 255 visible
// ASCII characters (0x21..0x7E). A value type; thread-compatible.
#ifndef COUNTERD_DOMAIN_IDEMPOTENCY_KEY_H_
#define COUNTERD_DOMAIN_IDEMPOTENCY_KEY_H_

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>

#include "counterd/core/result.h"

namespace counterd::domain {

class IdempotencyKey {
 public:
  static constexpr std::size_t kMaxLength = 255;

  // Returns kInvalidArgument for an empty, over-long or non-visible key.
  static Result<IdempotencyKey> Parse(std::string_view text);

  const std::string& str() const { return value_; }
  auto operator<=>(const IdempotencyKey&) const = default;

 private:
  explicit IdempotencyKey(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

}  // namespace counterd::domain

#endif  // COUNTERD_DOMAIN_IDEMPOTENCY_KEY_H_
