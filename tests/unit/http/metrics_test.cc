#include "api/metrics.h"

#include <gtest/gtest.h>

namespace counterd::http {
namespace {

TEST(HttpMetricsTest, CountsByRouteMethodAndStatus) {
  HttpMetrics m;
  m.Record(Route::kCounter, Method::kGet, 200, 0.01);
  m.Record(Route::kCounter, Method::kGet, 200, 0.02);
  m.Record(Route::kOther, Method::kOther, 404, 0.0);
  EXPECT_EQ(m.RequestCount(Route::kCounter, Method::kGet, 200), 2u);
  EXPECT_EQ(m.RequestCount(Route::kCounter, Method::kGet, 404), 0u);
  EXPECT_EQ(m.RequestCount(Route::kOther, Method::kOther, 404), 1u);
}

TEST(HttpMetricsTest, RendersOnlySeenSeriesWithTemplateLabels) {
  HttpMetrics m;
  m.Record(Route::kCounterIncrement, Method::kPost, 409, 0.5);
  std::string out;
  m.AppendTo(out);
  EXPECT_NE(out.find("counterd_http_requests_total{route=\"/counters/{name}/"
                     "increment\",method=\"POST\",code=\"409\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("counterd_http_request_duration_seconds_bucket{route=\"/"
                     "counters/{name}/increment\",le=\"0.5\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("counterd_http_request_duration_seconds_bucket{route=\"/"
                     "counters/{name}/increment\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("counterd_http_request_duration_seconds_sum{route=\"/"
                     "counters/{name}/increment\"} 0.5\n"),
            std::string::npos);
  EXPECT_EQ(out.find("route=\"/livez\""), std::string::npos);
}

TEST(HttpMetricsTest, OutOfRangeStatusIsClampedNotACrash) {
  HttpMetrics m;
  m.Record(Route::kRoot, Method::kGet, 999, 0);
  m.Record(Route::kRoot, Method::kGet, 0, 0);
  EXPECT_EQ(m.RequestCount(Route::kRoot, Method::kGet, 599), 1u);
  EXPECT_EQ(m.RequestCount(Route::kRoot, Method::kGet, 100), 1u);
}

}  // namespace
}  // namespace counterd::http
