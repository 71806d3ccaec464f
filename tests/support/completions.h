// Completions that keep what they are given, for tests that drive a
// repository or service by hand (start_committer = false) and then look at
// the result. Not thread-safe: complete and read on the test's thread.
#ifndef COUNTERD_TESTS_SUPPORT_COMPLETIONS_H_
#define COUNTERD_TESTS_SUPPORT_COMPLETIONS_H_

#include <optional>
#include <utility>

#include "counterd/storage/counter_repository.h"

namespace counterd::testing {

template <typename T>
class Captured final : public storage::Completion<T> {
 public:
  void Complete(T result) override {
    ++calls_;
    value_.emplace(std::move(result));
  }
  bool done() const { return value_.has_value(); }
  int calls() const { return calls_; }
  // REQUIRES: done().
  T& value() { return *value_; }
  T Take() {
    T out = std::move(*value_);
    value_.reset();
    return out;
  }

 private:
  std::optional<T> value_;
  int calls_ = 0;
};

}  // namespace counterd::testing

#endif  // COUNTERD_TESTS_SUPPORT_COMPLETIONS_H_
