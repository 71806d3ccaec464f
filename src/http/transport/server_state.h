// ServerState: what the listener and the sessions share: the options, the
// service, the connection registry, the ServerStatus the API reports
// (identity, draining flag, request metrics) and the Authorizer that holds
// the bearer tokens in force.
//
// Thread-safety: the mutable parts are thread-safe classes. Sessions hold
// it by shared_ptr so that a session outliving the Server object (its last
// handler still queued) never dangles.
#ifndef COUNTERD_HTTP_TRANSPORT_SERVER_STATE_H_
#define COUNTERD_HTTP_TRANSPORT_SERVER_STATE_H_

#include <utility>

#include "api/server_status.h"
#include "auth/authorizer.h"
#include "counterd/http/server.h"
#include "counterd/service/counter_service.h"
#include "transport/connection_registry.h"

namespace counterd::http {

struct ServerState {
  // |svc| must outlive this ServerState.
  ServerState(ServerOptions opts, service::CounterService& svc)
      : options(std::move(opts)),
        service(svc),
        connections(options.max_connections),
        status(ServerIdentity{options.version, options.hostname}, connections,
               clock),
        authorizer(options.tokens, status.auth) {}
  ServerState(const ServerState&) = delete;
  ServerState& operator=(const ServerState&) = delete;

  const ServerOptions options;
  service::CounterService& service;
  const SystemClock clock;
  ConnectionRegistry connections;
  ServerStatus status;
  Authorizer authorizer;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_SERVER_STATE_H_
