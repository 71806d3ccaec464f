// Histogram: fixed upper bounds with atomic bucket counts, in the shape a
// Prometheus histogram needs (cumulative buckets, sum, count). Observe() is
// lock-free and thread-safe; Snapshot() may race with Observe() and is then
// off by the observations in flight, which metrics tolerate.
#ifndef COUNTERD_CORE_HISTOGRAM_H_
#define COUNTERD_CORE_HISTOGRAM_H_

#include <atomic>
#include <cstdint>
#include <vector>

namespace counterd {

class Histogram {
 public:
  struct Snapshot {
    std::vector<double> bounds;             // upper bounds, ascending
    std::vector<std::uint64_t> cumulative;  // count <= bounds[i]; +Inf last
    double sum = 0;
    std::uint64_t count = 0;
  };

  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  ~Histogram() = default;

  void Observe(double value);
  Snapshot Read() const;

  // Common bucket layouts.
  static std::vector<double> LatencySecondsBounds();  // 50us .. 10s
  static std::vector<double> BatchSizeBounds();       // 1 .. 1024

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<std::uint64_t>> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

}  // namespace counterd

#endif  // COUNTERD_CORE_HISTOGRAM_H_
