#include "api/visible_list.h"

#include <string>
#include <utility>
#include <vector>

namespace counterd::http {

service::ListPage ListVisible(const service::CounterService& service,
                              const service::ListQuery& query,
                              const Principal& principal) {
  if (!principal.is_limited()) return service.List(query);
  // Sorted prefixes none of which extends another cover disjoint name
  // ranges in the same order, so the listing is their pages in turn.
  const std::vector<std::string> prefixes =
      principal.ListPrefixes(query.prefix);
  service::ListPage page;
  std::size_t need = query.limit;
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    service::ListQuery part{prefixes[i], query.after, need};
    service::ListPage got = service.List(part);
    need -= got.counters.size();
    for (domain::Counter& c : got.counters) {
      page.counters.push_back(std::move(c));
    }
    if (got.next) {  // this range alone has more than the page holds
      page.next = std::move(got.next);
      return page;
    }
    if (need > 0) continue;
    // The page is full at the end of a range: it has a next page only if
    // a later range holds a counter after |after|.
    for (std::size_t j = i + 1; j < prefixes.size(); ++j) {
      if (!service.List({prefixes[j], query.after, 1}).counters.empty()) {
        page.next = page.counters.back().name;
        break;
      }
    }
    return page;
  }
  return page;
}

}  // namespace counterd::http
