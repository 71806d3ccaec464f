#include "counterd/core/histogram.h"

#include <gtest/gtest.h>

namespace counterd {
namespace {

TEST(HistogramTest, CumulativeBucketsSumAndCount) {
  Histogram h({1, 10, 100});
  h.Observe(0.5);
  h.Observe(1);  // upper bounds are inclusive, as in Prometheus
  h.Observe(50);
  h.Observe(1000);
  const Histogram::Snapshot s = h.Read();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 2u);
  EXPECT_EQ(s.cumulative[2], 3u);
  EXPECT_EQ(s.cumulative[3], 4u);
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.sum, 1051.5);
}

}  // namespace
}  // namespace counterd
