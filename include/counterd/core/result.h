// Result<T>: a T or the Status that says why there is none.
// The surface follows std::expected (has_value, operator bool, value, error,
// *, ->) so that moving to C++23's std::expected later is an alias. We do not
// use std::expected now: libstdc++ 12 ships it only under -std=c++2b.
#ifndef COUNTERD_CORE_RESULT_H_
#define COUNTERD_CORE_RESULT_H_

#include <cassert>
#include <utility>
#include <variant>

#include "counterd/core/status.h"

namespace counterd {

template <typename T>
class [[nodiscard]] Result {
 public:
  // Implicit both ways, as std::expected: `return value;`, `return status;`.
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(T value) : v_(std::move(value)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }

  // The error; REQUIRES: !has_value().
  const Status& error() const { return std::get<Status>(v_); }
  // OK when a value is held, else the error.
  Status status() const { return has_value() ? Status::Ok() : error(); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace counterd

#endif  // COUNTERD_CORE_RESULT_H_
