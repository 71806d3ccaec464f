#include "api/handlers.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <climits>
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
#include "api/uri.h"
#include "counterd/domain/counter_name.h"
#include "counterd/domain/idempotency_key.h"

namespace counterd::http {
namespace {

using domain::OpKind;

// The request path: a problem's "instance".
std::string Instance(const Request& request) {
  return std::string(SplitTarget(request.target()).path);
}

Response ProblemReply(ProblemType type, std::string detail,
                      const Request& request) {
  return MakeProblemResponse(
      MakeProblem(type, std::move(detail), Instance(request)));
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  std::array<char, 32> buf{};
  const int n = std::snprintf(
      buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02dZ",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()));
  return {buf.data(), static_cast<std::size_t>(n)};
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

// Whole seconds from |now_ms| until |at_ms|, rounded up, at least 1.
std::int64_t SecondsUntil(std::int64_t at_ms, std::int64_t now_ms) {
  constexpr std::int64_t kMsPerSecond = 1000;
  return std::max<std::int64_t>(
      1, (at_ms - now_ms + kMsPerSecond - 1) / kMsPerSecond);
}

// draft-ietf-httpapi-ratelimit-headers: the policy (quota q per window w)
// and the state of this window (r remaining, t seconds until it resets).
void SetRateLimitFields(const RateLimitPolicy& policy,
                        const std::optional<domain::Counter>& counter,
                        std::int64_t now_ms, Response& res) {
  res.set("RateLimit-Policy",
          "\"counter\";q=" + std::to_string(policy.quota) +
              ";w=" + std::to_string(policy.window_seconds));
  const std::int64_t used = counter ? counter->value : 0;
  // Saturating: a counter below a negative quota cannot overflow this.
  std::int64_t remaining = 0;
  if (__builtin_sub_overflow(policy.quota, used, &remaining)) {
    remaining = used < 0 ? INT64_MAX : 0;
  }
  std::string state =
      "\"counter\";r=" + std::to_string(std::max<std::int64_t>(0, remaining));
  if (counter && counter->expires_at_ms != 0) {
    state +=
        ";t=" + std::to_string(SecondsUntil(counter->expires_at_ms, now_ms));
  }
  res.set("RateLimit", state);
}

Result<domain::CounterName> ParseName(std::string_view raw_name) {
  Result<std::string> decoded = PercentDecode(raw_name);
  if (!decoded) return decoded.error();
  return domain::CounterName::Parse(*decoded);
}

// A non-empty body must be JSON; an empty one is left to the body decoder.
std::optional<Response> CheckContentType(const Request& request) {
  if (request.body().empty()) return std::nullopt;
  const auto it = request.find(bhttp::field::content_type);
  if (it == request.end() || !IsJsonMediaType(it->value())) {
    return ProblemReply(
        ProblemType::kUnsupportedMediaType,
        "a request body must have Content-Type: application/json", request);
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

// Reads the Idempotency-Key of a POST into |tx|. Returns an error response
// for a bad or repeated header.
std::optional<Response> ParseIdempotency(const Request& request,
                                         const Principal* principal,
                                         domain::Transaction& tx) {
  const auto [begin, end] = request.equal_range("Idempotency-Key");
  if (begin == end) return std::nullopt;
  if (std::next(begin) != end) {
    return ProblemReply(ProblemType::kInvalidIdempotencyKey,
                        "Idempotency-Key must be sent once", request);
  }
  Result<domain::IdempotencyKey> key =
      domain::IdempotencyKey::Parse(begin->value());
  if (!key) {
    return ProblemReply(ProblemType::kInvalidIdempotencyKey,
                        key.error().message(), request);
  }
  // Scoped by token name: another token's key is another key.
  tx.idempotency = domain::IdempotencyIntent{
      principal != nullptr ? principal->name() : "", std::move(*key)};
  return std::nullopt;
}

domain::Operation MakeOperation(OpKind kind, domain::CounterName name,
                                std::int64_t operand,
                                domain::Precondition precondition) {
  domain::Operation op;
  op.kind = kind;
  op.name = std::move(name);
  op.operand = operand;
  op.precondition = std::move(precondition);
  return op;
}

// POST .../increment and .../decrement, and the classic /counter/increment.
Action AddDelta(const Request& request, const Principal* principal,
                domain::CounterName name, OpKind kind) {
  if (auto error = CheckContentType(request)) return std::move(*error);
  Decoded<DeltaBody> body = DecodeDeltaBody(request.body());
  if (auto* error = std::get_if<BodyError>(&body)) {
    return ProblemReply(error->type, std::move(error->detail), request);
  }
  DeltaBody& delta = std::get<DeltaBody>(body);
  domain::Operation op = MakeOperation(kind, std::move(name), delta.by,
                                       PreconditionOf(request, false));
  op.min = delta.min;
  op.max = delta.max;
  op.ttl_seconds = delta.ttl_seconds;
  CommitCall call{domain::SingleOperation(std::move(op)), CommitShape::kCounter,
                  std::nullopt};
  if (delta.max && delta.ttl_seconds) {
    call.rate_limit = RateLimitPolicy{*delta.max, *delta.ttl_seconds};
  }
  if (auto error = ParseIdempotency(request, principal, call.tx)) {
    return std::move(*error);
  }
  return call;
}

// A batch operation the token may not do: its scope (a get needs read; the
// batch itself needed write) or its prefixes. Nothing of the batch runs.
std::optional<Response> ForbidOperation(const Request& request,
                                        const HandlerContext& context,
                                        std::size_t index,
                                        const domain::Operation& op) {
  const Principal* principal = context.principal;
  if (principal == nullptr) return std::nullopt;
  std::string detail;
  if (op.kind == OpKind::kGet && !principal->HasScope(Scope::kRead)) {
    detail = "token '" + principal->name() +
             "' lacks the read scope that a get operation needs (it has: " +
             principal->ScopeList() + ")";
  } else if (!principal->MayTouch(op.name.str())) {
    detail = "token '" + principal->name() +
             "' may only touch counters whose names start with " +
             principal->PrefixList() + "; '" + op.name.str() + "' does not";
  } else {
    return std::nullopt;
  }
  context.status.auth.CountFailure(AuthFailure::kForbidden);
  Problem problem =
      MakeProblem(ProblemType::kForbidden,
                  "operations[" + std::to_string(index) + "]: " + detail,
                  Instance(request));
  problem.operation = index;
  Response res = MakeProblemResponse(problem);
  res.set(bhttp::field::www_authenticate,
          "Bearer realm=\"counterd\", error=\"insufficient_scope\"");
  return res;
}

// POST /batch: every operation validated before anything is committed.
Action ServeBatch(const Request& request, const HandlerContext& context) {
  const Principal* principal = context.principal;
  if (auto error = CheckContentType(request)) return std::move(*error);
  Decoded<std::vector<BatchOperation>> body = DecodeBatchBody(request.body());
  if (auto* error = std::get_if<BodyError>(&body)) {
    return ProblemReply(error->type, std::move(error->detail), request);
  }
  CommitCall call{{}, CommitShape::kBatch, std::nullopt};
  call.tx.batch = true;
  std::vector<BatchOperation>& ops =
      std::get<std::vector<BatchOperation>>(body);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    BatchOperation& sent = ops[i];
    Result<domain::CounterName> name = domain::CounterName::Parse(sent.name);
    if (!name) {
      Problem problem = MakeProblem(
          ProblemType::kInvalidName,
          "operations[" + std::to_string(i) + "]: " + name.error().message(),
          Instance(request));
      problem.operation = i;
      return MakeProblemResponse(problem);
    }
    domain::Precondition pre;
    if (sent.if_match) AddIfMatch(*sent.if_match, pre);
    pre.must_be_absent = sent.if_none_match;
    domain::Operation op = MakeOperation(sent.kind, std::move(*name),
                                         sent.operand, std::move(pre));
    op.min = sent.min;
    op.max = sent.max;
    op.ttl_seconds = sent.ttl_seconds;
    if (auto refused = ForbidOperation(request, context, i, op)) {
      return std::move(*refused);
    }
    call.tx.ops.push_back(std::move(op));
  }
  if (auto error = ParseIdempotency(request, principal, call.tx)) {
    return std::move(*error);
  }
  return call;
}

Action ServeCounter(const Request& request, Method method,
                    domain::CounterName name) {
  switch (method) {
    case Method::kGet:
    case Method::kHead:
      return ReadCall{std::move(name), false};
    case Method::kPut: {
      if (auto error = CheckContentType(request)) return std::move(*error);
      Decoded<SetBody> body = DecodeSetBody(request.body());
      if (auto* error = std::get_if<BodyError>(&body)) {
        return ProblemReply(error->type, std::move(error->detail), request);
      }
      domain::Operation op = MakeOperation(OpKind::kSet, std::move(name),
                                           std::get<SetBody>(body).value,
                                           PreconditionOf(request, true));
      op.ttl_seconds = std::get<SetBody>(body).ttl_seconds;
      return CommitCall{domain::SingleOperation(std::move(op)),
                        CommitShape::kPut, std::nullopt};
    }
    case Method::kDelete:
      return CommitCall{domain::SingleOperation(
                            MakeOperation(OpKind::kDelete, std::move(name), 0,
                                          PreconditionOf(request, false))),
                        CommitShape::kDelete, std::nullopt};
    case Method::kPost:
    case Method::kOther:
      break;
  }
  return ProblemReply(ProblemType::kInternal, "unrouted method", request);
}

Action ServeList(const Request& request, const Principal* principal,
                 std::string_view query) {
  auto params = ParseQuery(query);
  if (!params) {
    return ProblemReply(ProblemType::kInvalidQuery, params.error().message(),
                        request);
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
                            request);
      }
      list.limit = limit;
    } else if (key == "prefix" || key == "after") {
      for (const char c : value) {
        if (!domain::IsCounterNameChar(c)) {
          return ProblemReply(
              ProblemType::kInvalidQuery,
              key + " may only contain A-Z a-z 0-9 . _ - :", request);
        }
      }
      (key == "prefix" ? list.prefix : list.after) = std::move(value);
    }
  }
  // A token limited to prefixes sees only its counters: the listing walks
  // the name ranges it may read, in order.
  if (principal != nullptr && principal->is_limited()) {
    list.ranges = principal->ListPrefixes(list.prefix);
    list.restricted = true;
  }
  return ListCall{std::move(list)};
}

// GET /watch?prefix=p: validated as the listing's prefix, filtered for a
// token limited to prefixes as the listing is.
Action ServeWatch(const Request& request, const Principal* principal,
                  std::string_view query) {
  auto params = ParseQuery(query);
  if (!params) {
    return ProblemReply(ProblemType::kInvalidQuery, params.error().message(),
                        request);
  }
  WatchCall call;
  call.prefix = true;
  for (auto& [key, value] : *params) {
    if (key != "prefix") continue;  // unknown parameters: ignored, as listed
    for (const char c : value) {
      if (!domain::IsCounterNameChar(c)) {
        return ProblemReply(
            ProblemType::kInvalidQuery,
            "prefix may only contain A-Z a-z 0-9 . _ - :", request);
      }
    }
    call.name = std::move(value);
  }
  if (principal != nullptr && principal->is_limited()) {
    call.ranges = principal->ListPrefixes(call.name);
    call.restricted = true;
  }
  return call;
}

Response ServeRoot(const HandlerContext& context) {
  const ServerStatus& status = context.status;
  const std::string started_at = Rfc3339(status.identity.started_at);
  return MakeJsonResponse(
      bhttp::status::ok,
      EncodeServiceInfo(ServiceInfo{
          "counterd", status.identity.version, status.identity.hostname,
          static_cast<std::int64_t>(UptimeSeconds(status)), started_at}));
}

Response ServeReadyz(const Request& request, const HandlerContext& context) {
  Status why;
  if (!IsReady(context, &why)) {
    return ProblemReply(ProblemType::kNotReady, why.message(), request);
  }
  return MakeJsonResponse(bhttp::status::ok, EncodeHealth("ready"));
}

Response ServeMetrics(const HandlerContext& context) {
  const ServerStatus& status = context.status;
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, kPrometheusContentType);
  res.body() = RenderMetrics(
      status.metrics, context.service.Stats(),
      ServerGauges{
          status.identity.version, IsReady(context, nullptr),
          status.connections.open(), status.connections.requests_in_flight(),
          UptimeSeconds(status), status.auth.Read(),
          status.watch != nullptr ? status.watch->ReadWatch() : WatchCounts{}});
  return res;
}

}  // namespace

Action Dispatch(const Request& request, const RouteMatch& match,
                const HandlerContext& context) {
  const Target target = SplitTarget(request.target());
  const Method method = MethodOf(request.method());

  if (target.path.empty() || target.path.front() != '/') {
    return ProblemReply(ProblemType::kBadRequest,
                        "the request target must be an absolute path", request);
  }
  if (match.route == Route::kOther) {
    return ProblemReply(ProblemType::kRouteNotFound, "no resource at this path",
                        request);
  }
  if (!IsMethodAllowed(match.route, method)) {
    Response res = ProblemReply(
        ProblemType::kMethodNotAllowed,
        "allowed methods: " + std::string(AllowHeader(match.route)), request);
    res.set(bhttp::field::allow, AllowHeader(match.route));
    return res;
  }

  switch (match.route) {
    case Route::kRoot:
      return ServeRoot(context);
    case Route::kLivez:
      return MakeJsonResponse(bhttp::status::ok, EncodeHealth("ok"));
    case Route::kReadyz:
      return ServeReadyz(request, context);
    case Route::kMetrics:
      return ServeMetrics(context);
    case Route::kDefaultCounter:
      return ReadCall{domain::CounterName::Default(), true};
    case Route::kDefaultIncrement:
      return AddDelta(request, context.principal,
                      domain::CounterName::Default(), OpKind::kAdd);
    case Route::kCounterList:
      return ServeList(request, context.principal, target.query);
    case Route::kBatch:
      return ServeBatch(request, context);
    case Route::kAdminSnapshot:
      return SnapshotCall{};
    case Route::kWatch:
    case Route::kCounterWatch:
    case Route::kCounter:
    case Route::kCounterIncrement:
    case Route::kCounterDecrement:
    case Route::kOther:  // answered above
      break;
  }

  std::optional<std::uint64_t> last_event_id;
  if (match.route == Route::kWatch || match.route == Route::kCounterWatch) {
    Result<std::optional<std::uint64_t>> parsed = ParseLastEventId(request);
    if (!parsed) {
      return ProblemReply(ProblemType::kBadRequest, parsed.error().message(),
                          request);
    }
    last_event_id = *parsed;
  }
  if (match.route == Route::kWatch) {
    Action action = ServeWatch(request, context.principal, target.query);
    if (auto* call = std::get_if<WatchCall>(&action)) {
      call->last_event_id = last_event_id;
    }
    return action;
  }

  Result<domain::CounterName> name = ParseName(match.raw_name);
  if (!name) {
    return ProblemReply(ProblemType::kInvalidName, name.error().message(),
                        request);
  }
  if (match.route == Route::kCounterWatch) {
    WatchCall call;
    call.name = name->str();
    call.last_event_id = last_event_id;
    return call;
  }
  if (match.route == Route::kCounter) {
    return ServeCounter(request, method, std::move(*name));
  }
  return AddDelta(request, context.principal, std::move(*name),
                  match.route == Route::kCounterIncrement ? OpKind::kAdd
                                                          : OpKind::kSubtract);
}

Result<std::optional<std::uint64_t>> ParseLastEventId(const Request& request) {
  const auto [begin, end] = request.equal_range("Last-Event-ID");
  if (begin == end) return std::optional<std::uint64_t>();
  const std::string_view value = begin->value();
  std::uint64_t id = 0;
  const auto [stop, ec] =
      std::from_chars(value.data(), value.data() + value.size(), id);
  // from_chars takes no sign and no spaces: only digits get through.
  if (std::next(begin) != end || value.empty() || ec != std::errc() ||
      stop != value.data() + value.size()) {
    return Status::InvalidArgument(
        "Last-Event-ID must be sent once, as a decimal integer from 0 to "
        "18446744073709551615 (an id this server sent)");
  }
  return std::optional<std::uint64_t>(id);
}

Response RenderRead(const Request& request, const ReadCall& call,
                    const Result<std::optional<domain::Counter>>& result) {
  if (!result) {
    return MakeProblemResponse(
        ProblemFromStatus(result.error(), Instance(request)));
  }
  if (*result) return CounterResponse(request, **result);
  if (call.classic) {
    return CounterResponse(request, domain::Counter{call.name.str(), 0, 0});
  }
  return ProblemReply(ProblemType::kNotFound,
                      "counter '" + call.name.str() + "' does not exist",
                      request);
}

Response RenderList(const Request& request,
                    const Result<service::ListPage>& result) {
  if (!result) {
    return MakeProblemResponse(
        ProblemFromStatus(result.error(), Instance(request)));
  }
  return MakeJsonResponse(bhttp::status::ok, EncodeCounterPage(*result));
}

Response RenderSnapshot(const Result<storage::SnapshotImage>& result,
                        const Request& request) {
  if (!result && result.error().code() == StatusCode::kFailedPrecondition) {
    // A backend without snapshots (CounterRepository::TakeSnapshot).
    return ProblemReply(ProblemType::kNotImplemented, result.error().message(),
                        request);
  }
  if (!result) {
    return MakeProblemResponse(
        ProblemFromStatus(result.error(), Instance(request)));
  }
  // The head only: the connection streams the body from the image's
  // reader (Exchange::TakeBodyReader), a piece at a time.
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("Counterd-Snapshot-Seq", std::to_string(result->seq));
  // The document is of its moment: never served from a cache.
  res.set(bhttp::field::cache_control, "no-store");
  return res;
}

Response RenderCommit(const Request& request, const CommitCall& call,
                      const domain::TransactionOutcome& outcome,
                      std::int64_t now_ms) {
  Response res;
  // The counter the answer is about: the new state, or the refused
  // operation's counter as it stood.
  std::optional<domain::Counter> subject = outcome.current;
  if (!outcome.status.ok()) {
    Problem problem = ProblemFromStatus(outcome.status, Instance(request));
    if (call.shape == CommitShape::kBatch)
      problem.operation = outcome.failed_op;
    res = MakeProblemResponse(problem);
    // A refused bounded change can succeed once its window is over.
    if (outcome.status.code() == StatusCode::kLimitExceeded && subject &&
        subject->expires_at_ms != 0) {
      res.set(bhttp::field::retry_after,
              std::to_string(SecondsUntil(subject->expires_at_ms, now_ms)));
    }
  } else if (call.shape == CommitShape::kDelete) {
    res = Response{bhttp::status::no_content, 11};
  } else if (call.shape == CommitShape::kBatch) {
    res = MakeJsonResponse(bhttp::status::ok,
                           EncodeBatchResults(outcome.results));
  } else if (outcome.results.empty() || !outcome.results[0].counter) {
    res = MakeProblemResponse(MakeProblem(
        ProblemType::kInternal, "mutation succeeded without a counter state",
        Instance(request)));
  } else {
    const domain::OpResult& result = outcome.results[0];
    subject = result.counter;
    const bool created = call.shape == CommitShape::kPut && result.created;
    res = MakeJsonResponse(created ? bhttp::status::created : bhttp::status::ok,
                           EncodeCounter(*result.counter));
    res.set(bhttp::field::etag, FormatETag(result.counter->version));
    if (created) {
      res.set(bhttp::field::location, "/counters/" + result.counter->name);
    }
  }
  if (call.rate_limit && res.result() != bhttp::status::internal_server_error) {
    SetRateLimitFields(*call.rate_limit, subject, now_ms, res);
  }
  if (outcome.replayed) res.set("Idempotent-Replayed", "true");
  return res;
}

}  // namespace counterd::http
