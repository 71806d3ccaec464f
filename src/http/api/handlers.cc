#include "api/handlers.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "api/content_type.h"
#include "api/etag.h"
#include "api/json_codec.h"
#include "api/metrics.h"
#include "api/router.h"
#include "api/uri.h"
#include "api/visible_list.h"
#include "counterd/domain/counter_name.h"
#include "counterd/domain/idempotency_key.h"

namespace counterd::http {
namespace {

using service::MutationRequest;

// Everything a handler needs from the request line, decoded once.
struct Call {
  const Request& request;
  const HandlerContext& context;
  Method method;
  std::string instance;  // the request path, for problem details
};

Response ProblemReply(ProblemType type, std::string detail, const Call& call) {
  return MakeProblemResponse(
      MakeProblem(type, std::move(detail), call.instance));
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  char buf[32];
  const int n = std::snprintf(
      buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()));
  return std::string(buf, static_cast<std::size_t>(n));
}

double UptimeSeconds(const ServerStatus& status) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       status.identity.started_steady)
      .count();
}

bool IsReady(const HandlerContext& context, Status* why) {
  if (context.status.draining.load()) {
    if (why) *why = Status::Unavailable("draining for shutdown");
    return false;
  }
  Status health = context.service.Health();
  if (!health.ok()) {
    if (why) *why = std::move(health);
    return false;
  }
  return true;
}

// A counter with its ETag; 304 if If-None-Match already has it.
Response CounterResponse(const Request& request,
                         const domain::Counter& counter) {
  const std::string etag = FormatETag(counter.version);
  for (auto [it, end] = request.equal_range(bhttp::field::if_none_match);
       it != end; ++it) {
    if (IfNoneMatchMatches(it->value(), counter.version)) {
      Response res{bhttp::status::not_modified, 11};
      res.set(bhttp::field::etag, etag);
      return res;
    }
  }
  Response res = MakeJsonResponse(bhttp::status::ok, EncodeCounter(counter));
  res.set(bhttp::field::etag, etag);
  return res;
}

std::optional<domain::CounterName> ParseName(std::string_view raw_name,
                                             const Call& call,
                                             Response* error) {
  Result<std::string> decoded = PercentDecode(raw_name);
  if (!decoded) {
    *error = ProblemReply(ProblemType::kInvalidName, decoded.error().message(),
                          call);
    return std::nullopt;
  }
  Result<domain::CounterName> name = domain::CounterName::Parse(*decoded);
  if (!name) {
    *error =
        ProblemReply(ProblemType::kInvalidName, name.error().message(), call);
    return std::nullopt;
  }
  return std::move(*name);
}

// A non-empty body must be JSON; an empty one is left to the body decoder.
std::optional<Response> CheckContentType(const Call& call) {
  if (call.request.body().empty()) return std::nullopt;
  const auto it = call.request.find(bhttp::field::content_type);
  if (it == call.request.end() || !IsJsonMediaType(it->value())) {
    return ProblemReply(
        ProblemType::kUnsupportedMediaType,
        "a request body must have Content-Type: application/json", call);
  }
  return std::nullopt;
}

domain::Precondition PreconditionOf(const Request& request,
                                    bool honour_if_none_match) {
  domain::Precondition pre;
  for (auto [it, end] = request.equal_range(bhttp::field::if_match); it != end;
       ++it) {
    AddIfMatch(it->value(), pre);
  }
  // On PUT only "If-None-Match: *" means something ("create, never
  // replace"); other values are ignored, as documented.
  if (honour_if_none_match) {
    for (auto [it, end] = request.equal_range(bhttp::field::if_none_match);
         it != end; ++it) {
      if (IsWildcard(it->value())) pre.must_be_absent = true;
    }
  }
  return pre;
}

// Reads the Idempotency-Key of a POST. Returns an error response for a bad
// or repeated header. |fingerprint| is called only when there is a key.
template <typename Fingerprint>
std::optional<Response> ParseIdempotency(const Call& call,
                                         Fingerprint fingerprint,
                                         MutationRequest& mutation) {
  const auto [begin, end] = call.request.equal_range("Idempotency-Key");
  if (begin == end) return std::nullopt;
  if (std::next(begin) != end) {
    return ProblemReply(ProblemType::kInvalidIdempotencyKey,
                        "Idempotency-Key must be sent once", call);
  }
  Result<domain::IdempotencyKey> key =
      domain::IdempotencyKey::Parse(begin->value());
  if (!key) {
    return ProblemReply(ProblemType::kInvalidIdempotencyKey,
                        key.error().message(), call);
  }
  // Scoped by token name: another token's key is another key.
  const Principal* principal = call.context.principal;
  mutation.idempotency = service::IdempotencyIntent{
      std::move(*key), fingerprint(), principal ? principal->name() : ""};
  return std::nullopt;
}

// The response for a finished mutation, identical for a replay except for
// the Idempotent-Replayed header.
Response RenderOutcome(const domain::MutationOutcome& outcome,
                       MutationRequest::Kind kind,
                       const std::string& instance) {
  Response res;
  if (!outcome.status.ok()) {
    res = MakeProblemResponse(ProblemFromStatus(outcome.status, instance));
  } else if (kind == MutationRequest::Kind::kDelete) {
    res = Response{bhttp::status::no_content, 11};
  } else if (!outcome.counter) {
    res = MakeProblemResponse(
        MakeProblem(ProblemType::kInternal,
                    "mutation succeeded without a counter state", instance));
  } else {
    const bool created = kind == MutationRequest::Kind::kSet && outcome.created;
    res = MakeJsonResponse(created ? bhttp::status::created : bhttp::status::ok,
                           EncodeCounter(*outcome.counter));
    res.set(bhttp::field::etag, FormatETag(outcome.counter->version));
    if (created) {
      res.set(bhttp::field::location, "/counters/" + outcome.counter->name);
    }
  }
  if (outcome.replayed) res.set("Idempotent-Replayed", "true");
  return res;
}

void Submit(const Call& call, MutationRequest mutation, Reply reply) {
  const MutationRequest::Kind kind = mutation.kind;
  // The completion runs on whichever thread committed the batch. It hands
  // the outcome to the session's executor, where the response is built:
  // from the store's committer thread that is a post, and the committer
  // gets back to committing at once; on the session's own I/O thread (an
  // inline commit) the response is written there and then.
  call.context.service.Mutate(
      std::move(mutation),
      [kind, instance = call.instance,
       reply = std::move(reply)](domain::MutationOutcome outcome) mutable {
        auto dispatch = reply.dispatch;
        dispatch([kind, instance = std::move(instance),
                  send = std::move(reply.send), outcome = std::move(outcome)] {
          send(RenderOutcome(outcome, kind, instance));
        });
      });
}

// POST .../increment and .../decrement, or the classic /counter/increment
// (|classic_path| set).
void AddDelta(const Call& call, domain::CounterName name,
              MutationRequest::Kind kind, std::string_view classic_path,
              Reply reply) {
  if (auto error = CheckContentType(call)) return reply.send(*error);
  IntegerOrError by = DecodeDeltaBody(call.request.body());
  if (auto* error = std::get_if<BodyError>(&by)) {
    return reply.send(
        ProblemReply(error->type, std::move(error->detail), call));
  }
  MutationRequest mutation{kind, std::move(name), std::get<std::int64_t>(by),
                           PreconditionOf(call.request, false), std::nullopt};
  // The fingerprint is semantic: the same effective delta on the same
  // counter is the same request, whatever the body's spelling.
  // Built only for a request with an Idempotency-Key.
  const auto fingerprint = [&] {
    std::string f = "POST ";
    if (classic_path.empty()) {
      f.append("/counters/").append(mutation.name.str());
      f.append(kind == MutationRequest::Kind::kAdd ? "/increment"
                                                   : "/decrement");
    } else {
      f.append(classic_path);
    }
    return f.append(" by=").append(std::to_string(mutation.operand));
  };
  if (auto error = ParseIdempotency(call, fingerprint, mutation)) {
    return reply.send(*error);
  }
  Submit(call, std::move(mutation), std::move(reply));
}

void ServeCounter(const Call& call, domain::CounterName name, Reply reply) {
  switch (call.method) {
    case Method::kGet:
    case Method::kHead: {
      Result<domain::Counter> counter = call.context.service.Get(name);
      if (!counter) {
        return reply.send(MakeProblemResponse(
            ProblemFromStatus(counter.error(), call.instance)));
      }
      return reply.send(CounterResponse(call.request, *counter));
    }
    case Method::kPut: {
      if (auto error = CheckContentType(call)) return reply.send(*error);
      IntegerOrError value = DecodeSetBody(call.request.body());
      if (auto* error = std::get_if<BodyError>(&value)) {
        return reply.send(
            ProblemReply(error->type, std::move(error->detail), call));
      }
      return Submit(
          call,
          MutationRequest{MutationRequest::Kind::kSet, std::move(name),
                          std::get<std::int64_t>(value),
                          PreconditionOf(call.request, true), std::nullopt},
          std::move(reply));
    }
    case Method::kDelete:
      return Submit(
          call,
          MutationRequest{MutationRequest::Kind::kDelete, std::move(name), 0,
                          PreconditionOf(call.request, false), std::nullopt},
          std::move(reply));
    case Method::kPost:
    case Method::kOther:
      break;
  }
  reply.send(ProblemReply(ProblemType::kInternal, "unrouted method", call));
}

Response ServeList(const Call& call, std::string_view query) {
  auto params = ParseQuery(query);
  if (!params) {
    return ProblemReply(ProblemType::kInvalidQuery, params.error().message(),
                        call);
  }
  service::ListQuery list;
  for (auto& [key, value] : *params) {
    if (key == "limit") {
      std::size_t limit = 0;
      const auto [end, ec] =
          std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || end != value.data() + value.size() ||
          limit < 1 || limit > service::ListQuery::kMaxLimit) {
        return ProblemReply(ProblemType::kInvalidQuery,
                            "limit must be an integer from 1 to " +
                                std::to_string(service::ListQuery::kMaxLimit),
                            call);
      }
      list.limit = limit;
    } else if (key == "prefix" || key == "after") {
      for (const char c : value) {
        if (!domain::IsCounterNameChar(c)) {
          return ProblemReply(
              ProblemType::kInvalidQuery,
              key + " may only contain A-Z a-z 0-9 . _ - :", call);
        }
      }
      (key == "prefix" ? list.prefix : list.after) = std::move(value);
    }
  }
  // A token limited to prefixes sees only its counters.
  const Principal* principal = call.context.principal;
  return MakeJsonResponse(
      bhttp::status::ok,
      EncodeCounterPage(
          principal ? ListVisible(call.context.service, list, *principal)
                    : call.context.service.List(list)));
}

Response ServeRoot(const Call& call) {
  const ServerStatus& status = call.context.status;
  const std::string started_at = Rfc3339(status.identity.started_at);
  return MakeJsonResponse(
      bhttp::status::ok,
      EncodeServiceInfo(ServiceInfo{
          "counterd", status.identity.version, status.identity.hostname,
          static_cast<std::int64_t>(UptimeSeconds(status)), started_at}));
}

Response ServeReadyz(const Call& call) {
  Status why;
  if (!IsReady(call.context, &why)) {
    return ProblemReply(ProblemType::kNotReady, why.message(), call);
  }
  return MakeJsonResponse(bhttp::status::ok, EncodeHealth("ready"));
}

Response ServeMetrics(const Call& call) {
  const ServerStatus& status = call.context.status;
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, kPrometheusContentType);
  res.body() = RenderMetrics(
      status.metrics, call.context.service,
      ServerGauges{status.identity.version, IsReady(call.context, nullptr),
                   status.connections.open(),
                   status.connections.requests_in_flight(),
                   UptimeSeconds(status), status.auth.Read()});
  return res;
}

}  // namespace

void HandleRequest(const Request& request, const HandlerContext& context,
                   Reply reply) {
  const Target target = SplitTarget(request.target());
  const RouteMatch match = MatchRoute(target.path);
  const Call call{request, context, MethodOf(request.method()),
                  std::string(target.path)};

  if (target.path.empty() || target.path.front() != '/') {
    return reply.send(
        ProblemReply(ProblemType::kBadRequest,
                     "the request target must be an absolute path", call));
  }
  if (match.route == Route::kOther) {
    return reply.send(ProblemReply(ProblemType::kRouteNotFound,
                                   "no resource at this path", call));
  }
  if (!IsMethodAllowed(match.route, call.method)) {
    Response res = ProblemReply(
        ProblemType::kMethodNotAllowed,
        "allowed methods: " + std::string(AllowHeader(match.route)), call);
    res.set(bhttp::field::allow, AllowHeader(match.route));
    return reply.send(std::move(res));
  }

  switch (match.route) {
    case Route::kRoot:
      return reply.send(ServeRoot(call));
    case Route::kLivez:
      return reply.send(
          MakeJsonResponse(bhttp::status::ok, EncodeHealth("ok")));
    case Route::kReadyz:
      return reply.send(ServeReadyz(call));
    case Route::kMetrics:
      return reply.send(ServeMetrics(call));
    case Route::kDefaultCounter:
      return reply.send(CounterResponse(request, context.service.GetDefault()));
    case Route::kDefaultIncrement:
      return AddDelta(call, domain::CounterName::Default(),
                      MutationRequest::Kind::kAdd, "/counter/increment",
                      std::move(reply));
    case Route::kCounterList:
      return reply.send(ServeList(call, target.query));
    case Route::kCounter:
    case Route::kCounterIncrement:
    case Route::kCounterDecrement:
      break;
    case Route::kOther:
      return;  // answered above
  }

  Response error;
  std::optional<domain::CounterName> name =
      ParseName(match.raw_name, call, &error);
  if (!name) return reply.send(std::move(error));
  if (match.route == Route::kCounter) {
    return ServeCounter(call, std::move(*name), std::move(reply));
  }
  const bool up = match.route == Route::kCounterIncrement;
  AddDelta(call, std::move(*name),
           up ? MutationRequest::Kind::kAdd : MutationRequest::Kind::kSubtract,
           {}, std::move(reply));
}

}  // namespace counterd::http
