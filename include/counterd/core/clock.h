// Clock: where time comes from, so tests can set it. Implementations must be
// thread-safe.
#ifndef COUNTERD_CORE_CLOCK_H_
#define COUNTERD_CORE_CLOCK_H_

#include <atomic>
#include <chrono>

namespace counterd {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (idempotency record timestamps survive restarts).
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start =
                           std::chrono::system_clock::time_point{})
      : now_(start.time_since_epoch().count()) {}
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::system_clock::duration(now_.load()));
  }
  void Advance(std::chrono::system_clock::duration d) { now_ += d.count(); }

 private:
  std::atomic<std::chrono::system_clock::duration::rep> now_;
};

}  // namespace counterd

#endif  // COUNTERD_CORE_CLOCK_H_
