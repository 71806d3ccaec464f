// Router: maps a request path onto one of counterd's routes and knows which
// methods each route allows. Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_ROUTER_H_
#define COUNTERD_HTTP_API_ROUTER_H_

#include <cstddef>
#include <string_view>

namespace counterd::http {

// Every route the server answers, plus kOther for everything else. The
// enumerators index the per-route metrics, so kOther stays last.
enum class Route {
  kRoot,              // /
  kLivez,             // /livez
  kReadyz,            // /readyz
  kMetrics,           // /metrics
  kDefaultCounter,    // /counter
  kDefaultIncrement,  // /counter/increment
  kCounterList,       // /counters
  kCounter,           // /counters/{name}
  kCounterIncrement,  // /counters/{name}/increment
  kCounterDecrement,  // /counters/{name}/decrement
  kBatch,             // /batch
  kAdminSnapshot,     // /admin/snapshot
  kCounterWatch,      // /counters/{name}/watch
  kWatch,             // /watch
  kOther,             // no route: 404
};
inline constexpr std::size_t kRouteCount =
    static_cast<std::size_t>(Route::kOther) + 1;

// The methods counterd knows; anything else is kOther (and gets 405).
enum class Method { kGet, kHead, kPost, kPut, kDelete, kOther };
inline constexpr std::size_t kMethodCount =
    static_cast<std::size_t>(Method::kOther) + 1;

struct RouteMatch {
  Route route = Route::kOther;
  // The still percent-encoded {name} segment for the /counters/{name}...
  // routes; empty otherwise. Points into the path passed to MatchRoute.
  std::string_view raw_name;
};

// Matches a decoded-or-not path (no query). Segment boundaries are the raw
// '/' characters, so "%2F" inside a name never splits it. An empty {name}
// ("/counters/") and extra segments do not match.
RouteMatch MatchRoute(std::string_view path);

// The route template used as the metrics label: "/counters/{name}", and
// "other" for kOther, so the label set stays bounded.
std::string_view RouteTemplate(Route route);

// True if |route| answers |method|. HEAD is allowed wherever GET is, but
// on the watch routes, which answer GET only (a stream has no header
// without its body).
bool IsMethodAllowed(Route route, Method method);

// The Allow header for a 405 on |route|: "GET, HEAD" and the like.
std::string_view AllowHeader(Route route);

// "GET", "HEAD", ... and "OTHER".
std::string_view MethodName(Method method);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_ROUTER_H_
