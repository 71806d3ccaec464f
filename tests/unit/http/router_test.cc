#include "api/router.h"

#include <gtest/gtest.h>

namespace counterd::http {
namespace {

TEST(MatchRouteTest, FixedRoutes) {
  EXPECT_EQ(MatchRoute("/").route, Route::kRoot);
  EXPECT_EQ(MatchRoute("/livez").route, Route::kLivez);
  EXPECT_EQ(MatchRoute("/readyz").route, Route::kReadyz);
  EXPECT_EQ(MatchRoute("/metrics").route, Route::kMetrics);
  EXPECT_EQ(MatchRoute("/counter").route, Route::kDefaultCounter);
  EXPECT_EQ(MatchRoute("/counter/increment").route, Route::kDefaultIncrement);
  EXPECT_EQ(MatchRoute("/counters").route, Route::kCounterList);
  EXPECT_EQ(MatchRoute("/watch").route, Route::kWatch);
  EXPECT_EQ(MatchRoute("/admin/snapshot").route, Route::kAdminSnapshot);
}

TEST(MatchRouteTest, SnapshotIsReadOnly) {
  EXPECT_EQ(RouteTemplate(Route::kAdminSnapshot), "/admin/snapshot");
  EXPECT_EQ(AllowHeader(Route::kAdminSnapshot), "GET, HEAD");
  EXPECT_EQ(MatchRoute("/admin").route, Route::kOther);
  EXPECT_EQ(MatchRoute("/admin/snapshot/x").route, Route::kOther);
}

TEST(MatchRouteTest, NamedRoutesKeepTheRawName) {
  RouteMatch m = MatchRoute("/counters/a%2Fb");
  EXPECT_EQ(m.route, Route::kCounter);
  EXPECT_EQ(m.raw_name, "a%2Fb");
  m = MatchRoute("/counters/x/increment");
  EXPECT_EQ(m.route, Route::kCounterIncrement);
  EXPECT_EQ(m.raw_name, "x");
  m = MatchRoute("/counters/x/decrement");
  EXPECT_EQ(m.route, Route::kCounterDecrement);
  m = MatchRoute("/counters/a%3Ab/watch");
  EXPECT_EQ(m.route, Route::kCounterWatch);
  EXPECT_EQ(m.raw_name, "a%3Ab");
}

TEST(MatchRouteTest, EverythingElseIsOther) {
  for (const char* path :
       {"", "*", "counters", "/counters/", "/counters/x/", "/counters/x/y",
        "/counters/x/increment/more", "/counter/x", "/livez/x", "/counterz",
        "/counters//increment", "//", "/watch/", "/watch/x",
        "/counters/x/watch/y", "/counters//watch"}) {
    EXPECT_EQ(MatchRoute(path).route, Route::kOther) << path;
  }
}

TEST(RouteTemplateTest, LabelsAreTemplates) {
  EXPECT_EQ(RouteTemplate(Route::kCounter), "/counters/{name}");
  EXPECT_EQ(RouteTemplate(Route::kCounterDecrement),
            "/counters/{name}/decrement");
  EXPECT_EQ(RouteTemplate(Route::kOther), "other");
}

TEST(MethodsTest, HeadGoesWhereGetGoes) {
  for (std::size_t i = 0; i < kRouteCount; ++i) {
    const auto route = static_cast<Route>(i);
    if (route == Route::kWatch || route == Route::kCounterWatch) continue;
    EXPECT_EQ(IsMethodAllowed(route, Method::kGet),
              IsMethodAllowed(route, Method::kHead))
        << RouteTemplate(route);
  }
}

TEST(MethodsTest, AllowHeaderListsExactlyTheAllowedMethods) {
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    const auto route = static_cast<Route>(r);
    const std::string_view allow = AllowHeader(route);
    for (std::size_t m = 0; m + 1 < kMethodCount; ++m) {
      const auto method = static_cast<Method>(m);
      const bool listed = allow.find(MethodName(method)) != std::string::npos;
      EXPECT_EQ(listed, IsMethodAllowed(route, method))
          << RouteTemplate(route) << " " << MethodName(method);
    }
    EXPECT_FALSE(IsMethodAllowed(route, Method::kOther));
  }
  EXPECT_EQ(AllowHeader(Route::kCounter), "GET, HEAD, PUT, DELETE");
  EXPECT_EQ(AllowHeader(Route::kCounterIncrement), "POST");
}

TEST(MethodsTest, WatchesAnswerGetOnly) {
  for (const Route route : {Route::kWatch, Route::kCounterWatch}) {
    EXPECT_TRUE(IsMethodAllowed(route, Method::kGet));
    EXPECT_FALSE(IsMethodAllowed(route, Method::kHead));
    EXPECT_EQ(AllowHeader(route), "GET");
  }
  EXPECT_EQ(RouteTemplate(Route::kCounterWatch), "/counters/{name}/watch");
  EXPECT_EQ(RouteTemplate(Route::kWatch), "/watch");
}

}  // namespace
}  // namespace counterd::http
