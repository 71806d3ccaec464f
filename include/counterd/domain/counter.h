// Counter: the state of one named counter as clients see it, and the
// conditions a request may put on it. Value types; thread-compatible.
#ifndef COUNTERD_DOMAIN_COUNTER_H_
#define COUNTERD_DOMAIN_COUNTER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "counterd/core/status.h"

namespace counterd::domain {

struct Counter {
  std::string name;
  std::int64_t value = 0;
  // Starts at 1 when the counter is created and grows by one with every
  // change; it is the counter's ETag.
  std::uint64_t version = 0;
  // The wall-clock instant, in ms since the Unix epoch, from which the
  // counter no longer exists; 0 when it never expires.
  std::int64_t expires_at_ms = 0;

  // True if the counter no longer exists at |now_ms| (server wall clock).
  bool ExpiredAt(std::int64_t now_ms) const {
    return expires_at_ms != 0 && now_ms >= expires_at_ms;
  }

  friend bool operator==(const Counter&, const Counter&) = default;
};

// A condition on a counter's current version (HTTP If-Match / If-None-Match,
// or "if_match" / "if_none_match" in a batch). Versions start at 1, so
// version 0 never matches: an unparseable entity tag can be passed as 0 to
// make the condition fail. An expired counter counts as absent.
struct Precondition {
  // If non-empty, the counter must exist with one of these versions
  // (If-Match: "3", "4").
  std::vector<std::uint64_t> version_in;
  bool must_exist = false;      // If-Match: *
  bool must_be_absent = false;  // If-None-Match: *

  bool empty() const {
    return version_in.empty() && !must_exist && !must_be_absent;
  }
  friend bool operator==(const Precondition&, const Precondition&) = default;
};

}  // namespace counterd::domain

#endif  // COUNTERD_DOMAIN_COUNTER_H_
