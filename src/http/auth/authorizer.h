// Authorizer: decides, from a request's header alone, whether it may go on:
// the bearer token is hashed and looked up in the TokenSet in force, and
// the Principal found must have the scope the route and method need and,
// for a token limited to prefixes, the counter (or the listed prefix) must
// lie within them. A refusal is a complete 401/403 response: the session
// sends it before reading the body and closes the connection, so a refused
// request changes nothing.
//
// Thread-safety: thread-safe. Authorize runs on every I/O thread; Replace
// (a reload) may run at the same time on another thread: each request sees
// either the old set or the new one, whole.
#ifndef COUNTERD_HTTP_AUTH_AUTHORIZER_H_
#define COUNTERD_HTTP_AUTH_AUTHORIZER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/message.h"
#include "api/metrics.h"
#include "api/principal.h"
#include "api/router.h"
#include "auth/token_set.h"

namespace counterd::http {

// What a request needs, from its route, method and target.
struct Requirement {
  // GET/HEAD /livez and /readyz: no token (probes).
  bool open = false;
  // The scope needed; nullopt for a path or method the server does not
  // serve (any known token then gets its 404/405/501).
  std::optional<Scope> scope;
  // The counter touched (percent-decoded, a valid name): "default" for
  // /counter. Empty for routes without one, and for a {name} that is not a
  // valid name, which the handler refuses with 400 before touching anything.
  std::string counter;
  // Every non-empty ?prefix= of GET /counters (the handler uses the last;
  // an empty one means no prefix there too).
  std::vector<std::string> list_prefixes;
};

Requirement RequirementOf(Route route, Method method, std::string_view raw_name,
                          std::string_view query);

// Why |principal| may not do what |need| asks, for a 403 problem's detail
// (naming the missing scope or the prefix rule), or nullopt if it may.
// |what| names the request in the message ("PUT /counters/{name}").
std::optional<std::string> Forbidden(const Principal& principal,
                                     const Requirement& need,
                                     std::string_view what);

class Authorizer {
 public:
  struct Decision {
    // Who the request runs as; null with authentication off and for the
    // open probes.
    std::shared_ptr<const Principal> principal;
    // The 401 or 403 to send instead of serving the request.
    std::optional<Response> refusal;
  };

  // |tokens| null: authentication is off and every request is allowed.
  // |metrics| must outlive the Authorizer.
  Authorizer(std::shared_ptr<const TokenSet> tokens, AuthMetrics& metrics);
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;
  ~Authorizer() = default;

  bool enabled() const { return enabled_; }

  // |header| is the request with its header parsed (its body not yet
  // read); |match| its route. Counts refusals in the metrics.
  Decision Authorize(const Request& header, const RouteMatch& match) const;

  // Puts |tokens| in force for requests authorised from now on. Requests
  // already let through keep their Principal. REQUIRES: enabled(), tokens.
  void Replace(std::shared_ptr<const TokenSet> tokens);

  std::shared_ptr<const TokenSet> tokens() const { return tokens_.load(); }

 private:
  const bool enabled_;
  std::atomic<std::shared_ptr<const TokenSet>> tokens_;
  AuthMetrics& metrics_;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_AUTH_AUTHORIZER_H_
