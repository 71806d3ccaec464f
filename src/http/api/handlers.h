// Request handlers: what the API does for one request, decided from the
// request and the route the transport matched once. Handlers never touch a
// socket and never wait: Dispatch answers at once (a Response) or names
// one call to the service (an Action), whose result the matching Render
// function turns into the response. Exchange (exchange.h) runs that call.
// So handlers are tested as plain functions of (request, service).
//
// Thread-safety: pure functions of their arguments; the service is
// thread-safe.
#ifndef COUNTERD_HTTP_API_HANDLERS_H_
#define COUNTERD_HTTP_API_HANDLERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "api/message.h"
#include "api/principal.h"
#include "api/router.h"
#include "api/server_status.h"
#include "counterd/core/result.h"
#include "counterd/domain/counter.h"
#include "counterd/domain/transaction.h"
#include "counterd/service/counter_service.h"

namespace counterd::http {

// What handlers work with. Both references must outlive every request.
struct HandlerContext {
  service::CounterService& service;
  const ServerStatus& status;
  // Who the request runs as, once the session's authorizer let it through;
  // null with authentication off. It scopes Idempotency-Keys and filters
  // GET /counters; whether the request is allowed at all was decided
  // before its body was read (src/http/auth). The session points it at the
  // current request's principal.
  const Principal* principal = nullptr;
};

// GET/HEAD of one counter. |classic|: /counter, where a counter never
// written reads as 0 at version 0 instead of 404.
struct ReadCall {
  domain::CounterName name;
  bool classic = false;
};
struct ListCall {
  service::ListQuery query;
};
// How a committed transaction is answered.
enum class CommitShape {
  kCounter,  // the counter, 200 (increment, decrement)
  kPut,      // the counter, 201 + Location when created, else 200
  kDelete,   // 204
  kBatch,    // {"results": [...]}, 200
};
// A fixed-window rate limit a request asked for (an increment with both
// "max" and "ttl_seconds"): its answers carry the IETF RateLimit fields.
struct RateLimitPolicy {
  std::int64_t quota = 0;            // max
  std::uint32_t window_seconds = 0;  // ttl_seconds
};
struct CommitCall {
  domain::Transaction tx;
  CommitShape shape = CommitShape::kCounter;
  std::optional<RateLimitPolicy> rate_limit;
};

// GET/HEAD /admin/snapshot.
struct SnapshotCall {};

// GET /counters/{name}/watch or /watch?prefix=: not a call to the service
// but a stream the connection serves until it ends (src/http/stream holds
// the stream; the transport carries it). Mirrors stream's WatchTarget, which
// this room cannot name.
struct WatchCall {
  bool prefix = false;  // false: the one counter |name|
  std::string name;     // the counter, or the prefix ("" = every counter)
  // A token limited to prefixes: the name ranges it may see under the
  // prefix (Principal::ListPrefixes, as GET /counters filters).
  bool restricted = false;
  std::vector<std::string> ranges;
  std::optional<std::uint64_t> last_event_id;  // Last-Event-ID, if sent
};

using Action = std::variant<Response, ReadCall, ListCall, CommitCall,
                            SnapshotCall, WatchCall>;

// The Last-Event-ID request header (Server-Sent Events reconnection): none
// -> nullopt; one decimal uint64 -> its value; anything else (sent twice,
// empty, a sign, spaces inside, not digits, past 2^64-1) -> an error whose
// message names the header.
Result<std::optional<std::uint64_t>> ParseLastEventId(const Request& request);

// Decides what |request| asks. |match| is MatchRoute of its path. The
// response still needs PreparePayload (HEAD, length) and connection
// handling, which are the session's business.
Action Dispatch(const Request& request, const RouteMatch& match,
                const HandlerContext& context);

Response RenderRead(const Request& request, const ReadCall& call,
                    const Result<std::optional<domain::Counter>>& result);
Response RenderList(const Request& request,
                    const Result<service::ListPage>& result);
// The snapshot document, with its seq in Counterd-Snapshot-Seq.
Response RenderSnapshot(const Result<storage::SnapshotImage>& result,
                        const Request& request);
// |now_ms|: the server's wall clock, for Retry-After and RateLimit.
Response RenderCommit(const Request& request, const CommitCall& call,
                      const domain::TransactionOutcome& outcome,
                      std::int64_t now_ms);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_HANDLERS_H_
