// ListVisible: GET /counters for a token limited to some name prefixes: the
// counters it may read, sorted, paginated exactly as an unlimited listing
// is (|next| is set only when more visible counters follow). Thread-safe
// (reads committed state through the service).
#ifndef COUNTERD_HTTP_API_VISIBLE_LIST_H_
#define COUNTERD_HTTP_API_VISIBLE_LIST_H_

#include "api/principal.h"
#include "counterd/service/counter_service.h"

namespace counterd::http {

// The page of |query| restricted to the counters |principal| may touch.
// A query prefix outside the principal's prefixes yields the counters in
// the intersection (the authorizer refuses such a query with 403 before it
// gets here; this is the mechanism that never shows more).
// REQUIRES: 1 <= query.limit <= service::ListQuery::kMaxLimit.
service::ListPage ListVisible(const service::CounterService& service,
                              const service::ListQuery& query,
                              const Principal& principal);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_VISIBLE_LIST_H_
