// Request handlers: route one parsed request, validate it, call the
// CounterService and build the response. Handlers never touch a socket, so
// they are tested as plain functions of (request, service).
//
// Thread-safety: HandleRequest may run concurrently on any I/O threads. It
// never waits for another thread: reads are served at once and mutations go
// to the store, which may commit them on this very thread when fsyncs are
// fast (see counter_store.h). Completions arrive on whichever thread
// committed and are handed to Reply::dispatch at once, so the response is built
// on the session's executor (at once when the commit ran there).
#ifndef COUNTERD_HTTP_API_HANDLERS_H_
#define COUNTERD_HTTP_API_HANDLERS_H_

#include <functional>

#include "api/message.h"
#include "api/principal.h"
#include "api/server_status.h"
#include "counterd/service/counter_service.h"

namespace counterd::http {

// What handlers work with. Both references must outlive every request.
struct HandlerContext {
  service::CounterService& service;
  const ServerStatus& status;
  // Who the request runs as, once the session's authorizer let it through;
  // null with authentication off. Read only during HandleRequest: it scopes
  // Idempotency-Keys and filters GET /counters. Whether the request is
  // allowed at all was decided before its body was read (src/http/auth).
  const Principal* principal = nullptr;
};

// How a handler answers one request; the session provides both.
struct Reply {
  // Sends the response: called exactly once, on the thread that called
  // HandleRequest or from a task given to |dispatch|.
  std::function<void(Response)> send;
  // Runs |task| on the session's executor: at once when called there,
  // queued otherwise. Callable from any thread; a mutation's completion
  // calls nothing else.
  std::function<void(std::function<void()>)> dispatch;
};

// Serves |request|. The response still needs PreparePayload (HEAD, length)
// and connection handling, which are the session's business. |request| is
// not used after HandleRequest returns.
void HandleRequest(const Request& request, const HandlerContext& context,
                   Reply reply);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_HANDLERS_H_
