#include "counterd/domain/idempotency_key.h"

#include <string>

namespace counterd::domain {

Result<IdempotencyKey> IdempotencyKey::Parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxLength) {
    return Status::InvalidArgument(
        "Idempotency-Key must be 1 to 255 visible ASCII characters");
  }
  for (const char c : text) {
    if (c < 0x21 || c > 0x7e) {
      return Status::InvalidArgument(
          "Idempotency-Key must be 1 to 255 visible ASCII characters");
    }
  }
  return IdempotencyKey(std::string(text));
}

}  // namespace counterd::domain
