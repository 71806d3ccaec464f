#include "auth/authorizer.h"

#include <utility>

#include "api/problem.h"
#include "api/uri.h"
#include "auth/bearer.h"
#include "auth/digest.h"
#include "counterd/domain/counter_name.h"

namespace counterd::http {
namespace {

// RFC 6750 section 3: the challenge of every 401; a token that was sent
// but is unusable adds error="invalid_token" (none when no token was
// sent, section 3.1).
constexpr std::string_view kChallenge = "Bearer realm=\"counterd\"";
constexpr std::string_view kInvalidTokenChallenge =
    "Bearer realm=\"counterd\", error=\"invalid_token\"";

bool IsRead(Method method) {
  return method == Method::kGet || method == Method::kHead;
}

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  out.append(text);
  out.push_back('"');
  return out;
}

Response Unauthorized(AuthFailure reason, std::string detail,
                      std::string instance) {
  Response res = MakeProblemResponse(MakeProblem(
      ProblemType::kUnauthorized, std::move(detail), std::move(instance)));
  res.set(
      boost::beast::http::field::www_authenticate,
      reason == AuthFailure::kMissing ? kChallenge : kInvalidTokenChallenge);
  return res;
}

Response Refuse(std::string detail, std::optional<Scope> scope,
                std::string instance) {
  Response res = MakeProblemResponse(MakeProblem(
      ProblemType::kForbidden, std::move(detail), std::move(instance)));
  // RFC 6750 section 3.1: insufficient_scope, naming the scope when one is
  // what is missing.
  std::string challenge(kChallenge);
  challenge += ", error=\"insufficient_scope\"";
  if (scope) challenge += ", scope=\"" + std::string(ScopeName(*scope)) + "\"";
  res.set(boost::beast::http::field::www_authenticate, challenge);
  return res;
}

}  // namespace

Requirement RequirementOf(Route route, Method method, std::string_view raw_name,
                          std::string_view query) {
  Requirement need;
  if ((route == Route::kLivez || route == Route::kReadyz) && IsRead(method)) {
    need.open = true;
    return need;
  }
  // A method the route does not serve gets its 405 from the handler, to
  // any known token: nothing is done, so no scope is needed.
  if (!IsMethodAllowed(route, method)) return need;
  switch (route) {
    case Route::kRoot:
    case Route::kAdminSnapshot:
      need.scope = Scope::kAdmin;
      break;
    case Route::kMetrics:
      need.scope = Scope::kMetrics;
      break;
    case Route::kDefaultCounter:
    case Route::kDefaultIncrement:
      need.scope = IsRead(method) ? Scope::kRead : Scope::kWrite;
      need.counter = domain::CounterName::kDefault;
      break;
    case Route::kCounterList:
    case Route::kWatch:
      // A prefix watch is authorised as the listing of the same prefix: a
      // prefix-limited token may watch within its prefixes, or everything
      // (no prefix), in which case the handler narrows the stream to the
      // token's prefixes as the listing does.
      need.scope = Scope::kRead;
      if (auto params = ParseQuery(query)) {
        for (auto& [key, value] : *params) {
          // An empty prefix is no prefix, as the handler reads it.
          if (key == "prefix" && !value.empty()) {
            need.list_prefixes.push_back(std::move(value));
          }
        }
      }
      break;
    case Route::kCounter:
    case Route::kCounterIncrement:
    case Route::kCounterDecrement:
    case Route::kCounterWatch: {
      need.scope = IsRead(method) ? Scope::kRead : Scope::kWrite;
      Result<std::string> decoded = PercentDecode(raw_name);
      if (decoded && domain::CounterName::Parse(*decoded)) {
        need.counter = std::move(*decoded);
      }
      break;
    }
    case Route::kBatch:
      // The operations are in the body, not read yet: a batch is a write
      // (POST), and the handler checks each operation's counter against the
      // token's prefixes (and reads against its read scope).
      need.scope = Scope::kWrite;
      break;
    case Route::kLivez:
    case Route::kReadyz:
    case Route::kOther:
      break;
  }
  return need;
}

std::optional<std::string> Forbidden(const Principal& principal,
                                     const Requirement& need,
                                     std::string_view what) {
  const std::string token = "token " + Quoted(principal.name());
  if (need.scope && !principal.HasScope(*need.scope)) {
    return token + " lacks the " + std::string(ScopeName(*need.scope)) +
           " scope that " + std::string(what) +
           " needs (it has: " + principal.ScopeList() + ")";
  }
  if (!need.counter.empty() && !principal.MayTouch(need.counter)) {
    return token + " may only touch counters whose names start with " +
           principal.PrefixList() + "; " + Quoted(need.counter) + " does not";
  }
  for (const std::string& prefix : need.list_prefixes) {
    if (!principal.MayListPrefix(prefix)) {
      return token + " may only list counters whose names start with " +
             principal.PrefixList() + "; prefix=" + Quoted(prefix) +
             " reaches outside them";
    }
  }
  return std::nullopt;
}

Authorizer::Authorizer(std::shared_ptr<const TokenSet> tokens,
                       AuthMetrics& metrics)
    : enabled_(tokens != nullptr),
      tokens_(std::move(tokens)),
      metrics_(metrics) {
  metrics_.set_enabled(enabled_);
}

void Authorizer::Replace(std::shared_ptr<const TokenSet> tokens) {
  if (!enabled_ || !tokens) return;
  tokens_.store(std::move(tokens));
}

Authorizer::Decision Authorizer::Authorize(const Request& header,
                                           const RouteMatch& match) const {
  Decision decision;
  if (!enabled_) return decision;
  const Target target = SplitTarget(header.target());
  const Method method = MethodOf(header.method());
  const Requirement need =
      RequirementOf(match.route, method, match.raw_name, target.query);
  if (need.open) return decision;
  std::string instance(target.path);

  const BearerCredentials credentials = ReadBearerCredentials(header);
  switch (credentials.kind) {
    case BearerCredentials::Kind::kMissing:
      metrics_.CountFailure(AuthFailure::kMissing);
      decision.refusal =
          Unauthorized(AuthFailure::kMissing,
                       "this request needs an \"Authorization: Bearer "
                       "<token>\" header",
                       std::move(instance));
      return decision;
    case BearerCredentials::Kind::kMalformed:
      metrics_.CountFailure(AuthFailure::kMalformed);
      decision.refusal = Unauthorized(
          AuthFailure::kMalformed,
          "malformed Authorization header: expected one \"Bearer <token>\"",
          std::move(instance));
      return decision;
    case BearerCredentials::Kind::kToken:
      break;
  }
  // One hash per request; the lookup compares digests only (token_set.h).
  // The set is held for the request: a reload cannot free the Principal.
  std::shared_ptr<const TokenSet> tokens = tokens_.load();
  const Principal* principal = tokens->Find(Sha256(credentials.token));
  if (principal == nullptr) {
    metrics_.CountFailure(AuthFailure::kUnknown);
    decision.refusal =
        Unauthorized(AuthFailure::kUnknown, "the bearer token is not known",
                     std::move(instance));
    return decision;
  }
  const std::string what = std::string(MethodName(method)) + " " +
                           std::string(RouteTemplate(match.route));
  if (auto why = Forbidden(*principal, need, what)) {
    metrics_.CountFailure(AuthFailure::kForbidden);
    const bool lacks_scope = need.scope && !principal->HasScope(*need.scope);
    decision.refusal =
        Refuse(std::move(*why), lacks_scope ? need.scope : std::nullopt,
               std::move(instance));
    return decision;
  }
  // Shares ownership of the whole set, points at one entry of it.
  decision.principal =
      std::shared_ptr<const Principal>(std::move(tokens), principal);
  return decision;
}

}  // namespace counterd::http
