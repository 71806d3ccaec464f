#include "api/router.h"

#include <vector>

#include "api/uri.h"

namespace counterd::http {

RouteMatch MatchRoute(std::string_view path) {
  if (path.empty() || path.front() != '/') return {};
  if (path == "/") return {Route::kRoot, {}};
  if (path == "/livez") return {Route::kLivez, {}};
  if (path == "/readyz") return {Route::kReadyz, {}};
  if (path == "/metrics") return {Route::kMetrics, {}};
  if (path == "/counter") return {Route::kDefaultCounter, {}};
  if (path == "/counter/increment") return {Route::kDefaultIncrement, {}};
  if (path == "/counters") return {Route::kCounterList, {}};
  if (path == "/batch") return {Route::kBatch, {}};
  if (path == "/admin/snapshot") return {Route::kAdminSnapshot, {}};
  if (path == "/watch") return {Route::kWatch, {}};

  const std::vector<std::string_view> segments = SplitPath(path);
  if (segments.size() < 2 || segments.size() > 3 || segments[0] != "counters" ||
      segments[1].empty()) {
    return {};
  }
  if (segments.size() == 2) return {Route::kCounter, segments[1]};
  if (segments[2] == "increment") {
    return {Route::kCounterIncrement, segments[1]};
  }
  if (segments[2] == "decrement") {
    return {Route::kCounterDecrement, segments[1]};
  }
  if (segments[2] == "watch") return {Route::kCounterWatch, segments[1]};
  return {};
}

std::string_view RouteTemplate(Route route) {
  switch (route) {
    case Route::kRoot:
      return "/";
    case Route::kLivez:
      return "/livez";
    case Route::kReadyz:
      return "/readyz";
    case Route::kMetrics:
      return "/metrics";
    case Route::kDefaultCounter:
      return "/counter";
    case Route::kDefaultIncrement:
      return "/counter/increment";
    case Route::kCounterList:
      return "/counters";
    case Route::kCounter:
      return "/counters/{name}";
    case Route::kCounterIncrement:
      return "/counters/{name}/increment";
    case Route::kCounterDecrement:
      return "/counters/{name}/decrement";
    case Route::kBatch:
      return "/batch";
    case Route::kAdminSnapshot:
      return "/admin/snapshot";
    case Route::kCounterWatch:
      return "/counters/{name}/watch";
    case Route::kWatch:
      return "/watch";
    case Route::kOther:
      break;
  }
  return "other";
}

namespace {

enum class MethodSet { kNone, kRead, kPost, kCounter, kWatch };

MethodSet MethodsOf(Route route) {
  switch (route) {
    case Route::kRoot:
    case Route::kLivez:
    case Route::kReadyz:
    case Route::kMetrics:
    case Route::kDefaultCounter:
    case Route::kCounterList:
    case Route::kAdminSnapshot:
      return MethodSet::kRead;
    case Route::kDefaultIncrement:
    case Route::kCounterIncrement:
    case Route::kCounterDecrement:
    case Route::kBatch:
      return MethodSet::kPost;
    case Route::kCounter:
      return MethodSet::kCounter;
    case Route::kCounterWatch:
    case Route::kWatch:
      return MethodSet::kWatch;
    case Route::kOther:
      break;
  }
  return MethodSet::kNone;
}

}  // namespace

bool IsMethodAllowed(Route route, Method method) {
  switch (MethodsOf(route)) {
    case MethodSet::kRead:
      return method == Method::kGet || method == Method::kHead;
    case MethodSet::kPost:
      return method == Method::kPost;
    case MethodSet::kCounter:
      return method == Method::kGet || method == Method::kHead ||
             method == Method::kPut || method == Method::kDelete;
    case MethodSet::kWatch:
      return method == Method::kGet;
    case MethodSet::kNone:
      break;
  }
  return false;
}

std::string_view AllowHeader(Route route) {
  switch (MethodsOf(route)) {
    case MethodSet::kRead:
      return "GET, HEAD";
    case MethodSet::kPost:
      return "POST";
    case MethodSet::kCounter:
      return "GET, HEAD, PUT, DELETE";
    case MethodSet::kWatch:
      return "GET";
    case MethodSet::kNone:
      break;
  }
  return "";
}

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kGet:
      return "GET";
    case Method::kHead:
      return "HEAD";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kDelete:
      return "DELETE";
    case Method::kOther:
      break;
  }
  return "OTHER";
}

}  // namespace counterd::http
