// Handlers as functions of (request, CounterService) over a FakeRepository:
// no sockets, no threads.
#include "api/handlers.h"

#include <climits>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "api/exchange.h"
#include "api/uri.h"
#include "support/fake_repository.h"

namespace counterd::http {
namespace {

using bhttp::field;
using bhttp::verb;
using Headers = std::map<std::string, std::string>;

struct NoConnections final : ConnectionGauges {
  std::size_t open() const override { return 0; }
  std::size_t requests_in_flight() const override { return 0; }
};

// One request in progress, as a session runs it: the response is rendered
// only when the session takes it (on its own thread), never by whoever
// completed the service call.
struct TestExchange final : Exchange::Sink {
  explicit TestExchange(Request r) : request(std::move(r)) {}
  void OnReady() override {
    EXPECT_FALSE(ready) << "ready twice";
    ready = true;
  }
  // The session's side: takes the response once ready.
  bool RunPosted() {
    if (!ready || response) return false;
    response = exchange.TakeResponse();
    return true;
  }

  Request request;
  Exchange exchange{*this};
  bool ready = false;
  std::optional<Response> response;
};

class HandlersTest : public ::testing::Test {
 protected:
  HandlersTest()
      : service_(store_),
        status_(ServerIdentity{"1.2.3", "pod-0"}, gauges_, clock_) {}

  static Request MakeRequest(verb method, std::string_view target,
                             std::string body, const Headers& headers) {
    Request req{method, target, 11};
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }

  // Starts a request; the caller commits and runs posted tasks.
  std::unique_ptr<TestExchange> Start(verb method, std::string_view target,
                                      std::string body = "",
                                      const Headers& headers = {}) {
    auto ex = std::make_unique<TestExchange>(
        MakeRequest(method, target, std::move(body), headers));
    const RouteMatch match = MatchRoute(SplitTarget(ex->request.target()).path);
    ex->exchange.Start(ex->request, Dispatch(ex->request, match, context_),
                       context_);
    return ex;
  }

  Response Call(verb method, std::string_view target, std::string body = "",
                const Headers& headers = {}) {
    auto ex = Start(method, target, std::move(body), headers);
    store_.CommitPending();
    ex->RunPosted();
    EXPECT_TRUE(ex->response) << "no response for " << target;
    return ex->response.value_or(Response{});
  }

  Response Json(verb method, std::string_view target, std::string body,
                Headers headers = {}) {
    headers.emplace("Content-Type", "application/json");
    return Call(method, target, std::move(body), headers);
  }

  static void ExpectProblem(const Response& res, unsigned status,
                            std::string_view slug) {
    EXPECT_EQ(res.result_int(), status) << res.body();
    EXPECT_EQ(res[field::content_type], "application/problem+json");
    EXPECT_NE(res.body().find("\"type\":\"urn:counterd:problem:" +
                              std::string(slug) + "\""),
              std::string::npos)
        << res.body();
    EXPECT_NE(res.body().find("\"status\":" + std::to_string(status)),
              std::string::npos);
    EXPECT_NE(res.body().find("\"detail\":"), std::string::npos);
    EXPECT_NE(res.body().find("\"title\":"), std::string::npos);
  }

  static void ExpectCounter(const Response& res, unsigned status,
                            const domain::Counter& c) {
    EXPECT_EQ(res.result_int(), status) << res.body();
    EXPECT_EQ(res[field::content_type], "application/json");
    EXPECT_EQ(res.body(), "{\"name\":\"" + c.name +
                              "\",\"value\":" + std::to_string(c.value) +
                              ",\"version\":" + std::to_string(c.version) +
                              "}");
    EXPECT_EQ(res[field::etag], "\"" + std::to_string(c.version) + "\"");
  }

  ManualClock clock_{std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1'763'683'200'000))};
  counterd::testing::FakeRepository store_{clock_};
  service::CounterService service_;
  NoConnections gauges_;
  ServerStatus status_;
  const HandlerContext context_{service_, status_};
};

// -- /counter ---------------------------------------------------------------

TEST_F(HandlersTest, DefaultCounterNeverWrittenIsZero) {
  ExpectCounter(Call(verb::get, "/counter"), 200, {"default", 0, 0});
}

TEST_F(HandlersTest, DefaultIncrementAddsOneOrBy) {
  ExpectCounter(Call(verb::post, "/counter/increment"), 200, {"default", 1, 1});
  ExpectCounter(Json(verb::post, "/counter/increment", R"({"by":5})"), 200,
                {"default", 6, 2});
  ExpectCounter(Call(verb::get, "/counter"), 200, {"default", 6, 2});
  ExpectCounter(Call(verb::get, "/counters/default"), 200, {"default", 6, 2});
}

// -- GET / PUT / DELETE -------------------------------------------------------

TEST_F(HandlersTest, GetMissingIs404) {
  ExpectProblem(Call(verb::get, "/counters/nope"), 404, "not-found");
}

TEST_F(HandlersTest, PutCreatesWithLocationThenReplaces) {
  Response res = Json(verb::put, "/counters/a", R"({"value":17})");
  ExpectCounter(res, 201, {"a", 17, 1});
  EXPECT_EQ(res[field::location], "/counters/a");
  res = Json(verb::put, "/counters/a", R"({"value":-3})");
  ExpectCounter(res, 200, {"a", -3, 2});
  EXPECT_EQ(res.count(field::location), 0u);
  ExpectCounter(Call(verb::get, "/counters/a"), 200, {"a", -3, 2});
}

TEST_F(HandlersTest, HeadIsAnsweredLikeGet) {
  Json(verb::put, "/counters/a", R"({"value":1})");
  ExpectCounter(Call(verb::head, "/counters/a"), 200, {"a", 1, 1});
}

TEST_F(HandlersTest, IfNoneMatchCurrentTagIs304WithETag) {
  Json(verb::put, "/counters/a", R"({"value":7})");
  Response res =
      Call(verb::get, "/counters/a", "", {{"If-None-Match", "\"1\""}});
  EXPECT_EQ(res.result_int(), 304);
  EXPECT_EQ(res[field::etag], "\"1\"");
  EXPECT_TRUE(res.body().empty());
  ExpectCounter(
      Call(verb::get, "/counters/a", "", {{"If-None-Match", "\"9\""}}), 200,
      {"a", 7, 1});
  EXPECT_EQ(
      Call(verb::get, "/counters/a", "", {{"If-None-Match", "*"}}).result_int(),
      304);
}

TEST_F(HandlersTest, IfMatchGuardsPut) {
  Json(verb::put, "/counters/a", R"({"value":1})");
  ExpectProblem(
      Json(verb::put, "/counters/a", R"({"value":2})", {{"If-Match", "\"2\""}}),
      412, "precondition-failed");
  ExpectProblem(Json(verb::put, "/counters/a", R"({"value":2})",
                     {{"If-Match", "W/\"1\""}}),
                412, "precondition-failed");
  ExpectCounter(Json(verb::put, "/counters/a", R"({"value":2})",
                     {{"If-Match", "\"5\", \"1\""}}),
                200, {"a", 2, 2});
  ExpectCounter(
      Json(verb::put, "/counters/a", R"({"value":3})", {{"If-Match", "*"}}),
      200, {"a", 3, 3});
  ExpectProblem(
      Json(verb::put, "/counters/b", R"({"value":3})", {{"If-Match", "*"}}),
      412, "precondition-failed");
}

TEST_F(HandlersTest, IfNoneMatchStarOnPutCreatesOnly) {
  ExpectCounter(Json(verb::put, "/counters/a", R"({"value":5})",
                     {{"If-None-Match", "*"}}),
                201, {"a", 5, 1});
  ExpectProblem(Json(verb::put, "/counters/a", R"({"value":6})",
                     {{"If-None-Match", "*"}}),
                412, "precondition-failed");
  // Other If-None-Match values mean nothing on PUT.
  ExpectCounter(Json(verb::put, "/counters/a", R"({"value":6})",
                     {{"If-None-Match", "\"1\""}}),
                200, {"a", 6, 2});
}

TEST_F(HandlersTest, DeleteThen404AndIfMatch) {
  Json(verb::put, "/counters/a", R"({"value":1})");
  ExpectProblem(Call(verb::delete_, "/counters/a", "", {{"If-Match", "\"2\""}}),
                412, "precondition-failed");
  Response res =
      Call(verb::delete_, "/counters/a", "", {{"If-Match", "\"1\""}});
  EXPECT_EQ(res.result_int(), 204);
  EXPECT_TRUE(res.body().empty());
  ExpectProblem(Call(verb::delete_, "/counters/a"), 404, "not-found");
  ExpectProblem(Call(verb::get, "/counters/a"), 404, "not-found");
}

// -- increment / decrement ----------------------------------------------------

TEST_F(HandlersTest, IncrementCreatesAtZero) {
  ExpectCounter(Call(verb::post, "/counters/n/increment"), 200, {"n", 1, 1});
  ExpectCounter(Json(verb::post, "/counters/n/increment", R"({"by":-4})"), 200,
                {"n", -3, 2});
  ExpectCounter(Call(verb::post, "/counters/m/decrement"), 200, {"m", -1, 1});
  ExpectCounter(Json(verb::post, "/counters/m/decrement", R"({"by":-5})"), 200,
                {"m", 4, 2});
}

TEST_F(HandlersTest, EmptyBodyNeedsNoContentType) {
  ExpectCounter(Call(verb::post, "/counters/n/increment", "",
                     {{"Content-Type", "text/plain"}}),
                200, {"n", 1, 1});
}

TEST_F(HandlersTest, OverflowIs409AndChangesNothing) {
  Json(verb::put, "/counters/hi", R"({"value":9223372036854775807})");
  ExpectProblem(Call(verb::post, "/counters/hi/increment"), 409, "overflow");
  ExpectCounter(Call(verb::get, "/counters/hi"), 200, {"hi", INT64_MAX, 1});
  // 0 - INT64_MIN does not fit: decrement is a subtraction, not a negation.
  ExpectProblem(Json(verb::post, "/counters/z/decrement",
                     R"({"by":-9223372036854775808})"),
                409, "overflow");
  ExpectProblem(Call(verb::get, "/counters/z"), 404, "not-found");
}

TEST_F(HandlersTest, IfMatchGuardsIncrement) {
  ExpectProblem(
      Call(verb::post, "/counters/n/increment", "", {{"If-Match", "\"1\""}}),
      412, "precondition-failed");
  Call(verb::post, "/counters/n/increment");
  ExpectCounter(
      Call(verb::post, "/counters/n/decrement", "", {{"If-Match", "\"1\""}}),
      200, {"n", 0, 2});
}

// -- bad input ----------------------------------------------------------------

TEST_F(HandlersTest, BadBodiesAre400AndChangeNothing) {
  Json(verb::put, "/counters/a", R"({"value":1000})");
  for (const char* body :
       {"{", "[]", R"({"by":"1"})", R"({"by":1.5})", R"({"by":1,"x":2})",
        R"({"by":9223372036854775808})"}) {
    EXPECT_EQ(Json(verb::post, "/counters/a/increment", body).result_int(), 400)
        << body;
  }
  ExpectProblem(Json(verb::put, "/counters/a", "{}"), 400, "invalid-field");
  ExpectProblem(Json(verb::put, "/counters/a", "nul"), 400, "invalid-json");
  ExpectProblem(Call(verb::put, "/counters/a"), 400, "invalid-json");
  ExpectCounter(Call(verb::get, "/counters/a"), 200, {"a", 1000, 1});
  EXPECT_EQ(store_.mutations(), 1u);
}

TEST_F(HandlersTest, NonJsonContentTypeIs415) {
  ExpectProblem(Call(verb::post, "/counters/a/increment", R"({"by":1})",
                     {{"Content-Type", "text/plain"}}),
                415, "unsupported-media-type");
  ExpectProblem(Call(verb::put, "/counters/a", R"({"value":1})"), 415,
                "unsupported-media-type");
  ExpectProblem(Call(verb::post, "/counter/increment", R"({"by":1})",
                     {{"Content-Type", "application/x-www-form-urlencoded"}}),
                415, "unsupported-media-type");
  ExpectCounter(Call(verb::post, "/counters/a/increment", R"({"by":2})",
                     {{"Content-Type", "application/json; charset=utf-8"}}),
                200, {"a", 2, 1});
}

TEST_F(HandlersTest, InvalidNamesAre400) {
  const std::vector<std::string> targets = {
      "/counters/%2e%2e",   "/counters/..",
      "/counters/.",        "/counters/a%2Fb",
      "/counters/a%zz",     "/counters/" + std::string(129, 'x'),
      "/counters/sp%20ace", "/counters/%00"};
  for (const std::string& target : targets) {
    ExpectProblem(Call(verb::get, target), 400, "invalid-name");
    ExpectProblem(Call(verb::post, target + "/increment"), 400, "invalid-name");
  }
  ExpectCounter(Call(verb::put, "/counters/" + std::string(128, 'y'),
                     R"({"value":1})", {{"Content-Type", "application/json"}}),
                201, {std::string(128, 'y'), 1, 1});
  ExpectCounter(Json(verb::put, "/counters/user%3A42", R"({"value":1})"), 201,
                {"user:42", 1, 1});
}

TEST_F(HandlersTest, UnknownPathIs404) {
  for (const char* target : {"/nope", "/counters/x/y", "/counters/x/multiply",
                             "/counter/x", "/counters/", "/livez/x"}) {
    ExpectProblem(Call(verb::get, target), 404, "route-not-found");
  }
}

TEST_F(HandlersTest, WrongMethodIs405WithAllow) {
  Response res = Call(verb::post, "/counters/a");
  ExpectProblem(res, 405, "method-not-allowed");
  EXPECT_EQ(res[field::allow], "GET, HEAD, PUT, DELETE");
  res = Call(verb::get, "/counters/a/increment");
  ExpectProblem(res, 405, "method-not-allowed");
  EXPECT_EQ(res[field::allow], "POST");
  res = Call(verb::patch, "/counter");
  EXPECT_EQ(res[field::allow], "GET, HEAD");
  EXPECT_EQ(Call(verb::delete_, "/").result_int(), 405);
}

TEST_F(HandlersTest, QueryIsIgnoredOffTheList) {
  ExpectCounter(Call(verb::get, "/counter?limit=abc"), 200, {"default", 0, 0});
}

// -- list ---------------------------------------------------------------------

TEST_F(HandlersTest, ListPagesWalkEveryCounterOnce) {
  for (const char* n : {"b", "a", "c", "d", "e"}) {
    Json(verb::put, std::string("/counters/") + n, R"({"value":1})");
  }
  Response res = Call(verb::get, "/counters?limit=2");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"counters":[{"name":"a","value":1,"version":1},)"
                        R"({"name":"b","value":1,"version":1}],"next":"b"})");
  res = Call(verb::get, "/counters?limit=2&after=b");
  EXPECT_NE(res.body().find(R"("next":"d")"), std::string::npos);
  res = Call(verb::get, "/counters?limit=2&after=d");
  EXPECT_NE(res.body().find(R"("next":null)"), std::string::npos);
  EXPECT_NE(res.body().find(R"("name":"e")"), std::string::npos);
}

TEST_F(HandlersTest, ListPrefixAndDefaults) {
  for (const char* n : {"user:1", "user:2", "other"}) {
    Json(verb::put, std::string("/counters/") + n, R"({"value":1})");
  }
  Response res = Call(verb::get, "/counters?prefix=user%3A");
  EXPECT_EQ(res.body(),
            R"({"counters":[{"name":"user:1","value":1,"version":1},)"
            R"({"name":"user:2","value":1,"version":1}],"next":null})");
  EXPECT_EQ(Call(verb::get, "/counters?unknown=1").result_int(), 200);
  EXPECT_EQ(Call(verb::get, "/counters?prefix=").result_int(), 200);
}

TEST_F(HandlersTest, BadListParametersAre400) {
  for (const char* target :
       {"/counters?limit=0", "/counters?limit=1001", "/counters?limit=abc",
        "/counters?limit=", "/counters?limit=-1", "/counters?limit=1.5",
        "/counters?prefix=a%2Fb", "/counters?after=a b",
        "/counters?prefix=%zz"}) {
    ExpectProblem(Call(verb::get, target), 400, "invalid-query");
  }
  EXPECT_EQ(Call(verb::get, "/counters?limit=1000").result_int(), 200);
  EXPECT_EQ(Call(verb::get, "/counters?limit=1").result_int(), 200);
}

// -- idempotency --------------------------------------------------------------

TEST_F(HandlersTest, IdempotentRepeatReplaysFirstResponse) {
  const Headers key{{"Idempotency-Key", "k1"}};
  Response first =
      Json(verb::post, "/counters/a/increment", R"({"by":3})", key);
  ExpectCounter(first, 200, {"a", 3, 1});
  EXPECT_EQ(first.count("Idempotent-Replayed"), 0u);
  // Whitespace does not make another request.
  Response again =
      Json(verb::post, "/counters/a/increment", R"( { "by" : 3 } )", key);
  EXPECT_EQ(again.result_int(), first.result_int());
  EXPECT_EQ(again.body(), first.body());
  EXPECT_EQ(again[field::etag], first[field::etag]);
  EXPECT_EQ(again["Idempotent-Replayed"], "true");
  ExpectCounter(Call(verb::get, "/counters/a"), 200, {"a", 3, 1});
}

TEST_F(HandlersTest, AbsentBodyIsTheSameRequestAsByOne) {
  const Headers key{{"Idempotency-Key", "k1"}};
  ExpectCounter(Call(verb::post, "/counters/a/increment", "", key), 200,
                {"a", 1, 1});
  Response again =
      Json(verb::post, "/counters/a/increment", R"({"by":1})", key);
  EXPECT_EQ(again["Idempotent-Replayed"], "true");
}

TEST_F(HandlersTest, SameKeyForAnotherRequestIs422) {
  const Headers key{{"Idempotency-Key", "k1"}};
  Json(verb::post, "/counters/a/increment", R"({"by":1})", key);
  ExpectProblem(Json(verb::post, "/counters/a/increment", R"({"by":2})", key),
                422, "idempotency-key-reused");
  ExpectProblem(Json(verb::post, "/counters/a/decrement", R"({"by":1})", key),
                422, "idempotency-key-reused");
  ExpectProblem(Json(verb::post, "/counters/b/increment", R"({"by":1})", key),
                422, "idempotency-key-reused");
  ExpectProblem(Json(verb::post, "/counter/increment", R"({"by":1})", key), 422,
                "idempotency-key-reused");
  ExpectCounter(Call(verb::get, "/counters/a"), 200, {"a", 1, 1});
  ExpectProblem(Call(verb::get, "/counters/b"), 404, "not-found");
}

TEST_F(HandlersTest, RefusalsReplayToo) {
  Json(verb::put, "/counters/hi", R"({"value":9223372036854775807})");
  const Headers key{{"Idempotency-Key", "k-overflow"}};
  Response first = Call(verb::post, "/counters/hi/increment", "", key);
  ExpectProblem(first, 409, "overflow");
  Response again = Call(verb::post, "/counters/hi/increment", "", key);
  EXPECT_EQ(again.result_int(), 409);
  EXPECT_EQ(again.body(), first.body());
  EXPECT_EQ(again["Idempotent-Replayed"], "true");
}

TEST_F(HandlersTest, RepeatWhileInFlightIs409) {
  store_.hold_commits = true;
  const Headers key{{"Idempotency-Key", "k1"}};
  auto first = Start(verb::post, "/counters/a/increment", "", key);
  EXPECT_FALSE(first->response);
  Response second = Call(verb::post, "/counters/a/increment", "", key);
  ExpectProblem(second, 409, "idempotency-key-in-flight");
  store_.CommitPending();
  first->RunPosted();
  ASSERT_TRUE(first->response);
  ExpectCounter(*first->response, 200, {"a", 1, 1});
}

TEST_F(HandlersTest, InvalidIdempotencyKeyIs400) {
  const std::vector<std::string> bad_keys = {std::string(256, 'k'), "a b",
                                             "\x7f", "\xc3\xa9"};
  for (const std::string& bad : bad_keys) {
    ExpectProblem(Call(verb::post, "/counters/a/increment", "",
                       {{"Idempotency-Key", bad}}),
                  400, "invalid-idempotency-key");
  }
  ExpectProblem(
      Call(verb::post, "/counters/a/increment", "", {{"Idempotency-Key", ""}}),
      400, "invalid-idempotency-key");
  EXPECT_EQ(store_.mutations(), 0u);
  EXPECT_EQ(Call(verb::post, "/counters/a/increment", "",
                 {{"Idempotency-Key", std::string(255, 'k')}})
                .result_int(),
            200);
}

TEST_F(HandlersTest, IdempotencyKeyIgnoredOffPost) {
  const Headers key{{"Idempotency-Key", "not valid at all"}};
  EXPECT_EQ(Json(verb::put, "/counters/a", R"({"value":1})", key).result_int(),
            201);
  EXPECT_EQ(Call(verb::get, "/counters/a", "", key).result_int(), 200);
}

// -- threading rule -----------------------------------------------------------

TEST_F(HandlersTest, CompletionOnlyPostsToTheSession) {
  store_.hold_commits = true;
  auto ex = Start(verb::post, "/counters/a/increment");
  store_.CommitPending();  // the "committer thread" runs the completion
  EXPECT_TRUE(ex->ready);
  EXPECT_FALSE(ex->response) << "response built on the committer thread";
  ASSERT_TRUE(ex->RunPosted());
  ASSERT_TRUE(ex->response);
  ExpectCounter(*ex->response, 200, {"a", 1, 1});
}

// -- store failures -----------------------------------------------------------

TEST_F(HandlersTest, StoreRefusalsMapToProblems) {
  store_.health = Status::Unavailable("store failed closed");
  ExpectProblem(Call(verb::post, "/counters/a/increment"), 503,
                "store-unavailable");
  store_.health = Status::ResourceExhausted("disk full");
  ExpectProblem(Json(verb::put, "/counters/a", R"({"value":1})"), 507,
                "insufficient-storage");
}

// -- operations ---------------------------------------------------------------

TEST_F(HandlersTest, LivezAndReadyz) {
  EXPECT_EQ(Call(verb::get, "/livez").result_int(), 200);
  EXPECT_EQ(Call(verb::get, "/readyz").result_int(), 200);
  store_.health = Status::Unavailable("failed closed");
  ExpectProblem(Call(verb::get, "/readyz"), 503, "not-ready");
  EXPECT_EQ(Call(verb::get, "/livez").result_int(), 200);
  store_.health = Status::Ok();
  status_.draining = true;
  ExpectProblem(Call(verb::get, "/readyz"), 503, "not-ready");
}

TEST_F(HandlersTest, RootDescribesTheService) {
  Response res = Call(verb::get, "/");
  EXPECT_EQ(res.result_int(), 200);
  const std::regex shape(
      R"(\{"name":"counterd","version":"1\.2\.3","hostname":"pod-0",)"
      R"("uptime_seconds":\d+,"started_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\})");
  EXPECT_TRUE(std::regex_match(res.body(), shape)) << res.body();
}

TEST_F(HandlersTest, MetricsPage) {
  Call(verb::post, "/counters/a/increment");
  status_.metrics.Record(Route::kCounter, Method::kGet, 200, 0.001);
  Response res = Call(verb::get, "/metrics");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[field::content_type],
            "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = res.body();
  for (const char* line :
       {"counterd_http_requests_total{route=\"/counters/"
        "{name}\",method=\"GET\","
        "code=\"200\"} 1\n",
        "# TYPE counterd_http_request_duration_seconds histogram\n",
        "counterd_http_request_duration_seconds_count{route=\"/counters/"
        "{name}\"} 1\n",
        "# TYPE counterd_commit_batch_size histogram\n",
        "counterd_commit_batch_size_bucket{le=\"+Inf\"} 1\n",
        "# TYPE counterd_fsync_duration_seconds histogram\n",
        "counterd_fsyncs_total 1\n",
        "counterd_mutations_total 1\n",
        "counterd_commits_total 1\n",
        "counterd_counters 1\n",
        "counterd_journal_bytes 0\n",
        "counterd_idempotency_keys 0\n",
        "counterd_store_failed 0\n",
        "counterd_ready 1\n",
        "counterd_http_connections 0\n",
        "counterd_build_info{version=\"1.2.3\"} 1\n",
        "# TYPE counterd_uptime_seconds gauge\n",
        "# TYPE counterd_watchers gauge\n",
        "counterd_watchers 0\n",
        "# TYPE counterd_watch_events_total counter\n",
        "counterd_watch_events_total 0\n",
        "# TYPE counterd_watch_resets_total counter\n",
        "counterd_watch_resets_total 0\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

// -- watch -------------------------------------------------------------------

class WatchDispatchTest : public HandlersTest {
 protected:
  Action Decide(std::string_view target, const Headers& headers = {},
                const Principal* principal = nullptr) {
    const Request req = MakeRequest(verb::get, target, "", headers);
    HandlerContext context{service_, status_, principal};
    return Dispatch(req, MatchRoute(SplitTarget(req.target()).path), context);
  }
  static WatchCall AsWatch(const Action& action) {
    const auto* call = std::get_if<WatchCall>(&action);
    EXPECT_NE(call, nullptr) << "not a watch";
    return call != nullptr ? *call : WatchCall{};
  }
};

TEST_F(WatchDispatchTest, NameWatchNamesTheDecodedCounter) {
  const WatchCall call = AsWatch(Decide("/counters/a%3Ab/watch"));
  EXPECT_FALSE(call.prefix);
  EXPECT_EQ(call.name, "a:b");
  EXPECT_FALSE(call.restricted);
  EXPECT_EQ(call.last_event_id, std::nullopt);
}

TEST_F(WatchDispatchTest, PrefixWatchTakesThePrefixParameter) {
  const WatchCall all = AsWatch(Decide("/watch"));
  EXPECT_TRUE(all.prefix);
  EXPECT_EQ(all.name, "");
  const WatchCall some = AsWatch(Decide("/watch?prefix=t%3A&other=1"));
  EXPECT_TRUE(some.prefix);
  EXPECT_EQ(some.name, "t:");
}

TEST_F(WatchDispatchTest, LastEventIdIsPassedOn) {
  EXPECT_EQ(AsWatch(Decide("/counters/a/watch", {{"Last-Event-ID", "42"}}))
                .last_event_id,
            42u);
  EXPECT_EQ(AsWatch(Decide("/watch?prefix=a",
                           {{"Last-Event-ID", "18446744073709551615"}}))
                .last_event_id,
            18446744073709551615u);
}

TEST_F(WatchDispatchTest, RefusalsAreTheOtherRoutesProblems) {
  ExpectProblem(std::get<Response>(Decide("/counters/bad%20name/watch")), 400,
                "invalid-name");
  ExpectProblem(std::get<Response>(Decide("/watch?prefix=a%20b")), 400,
                "invalid-query");
  for (const char* bad :
       {"", "x", "-1", "+1", "1 2", "0x1", "1.0", "18446744073709551616"}) {
    const Action action = Decide("/counters/a/watch", {{"Last-Event-ID", bad}});
    ASSERT_TRUE(std::holds_alternative<Response>(action)) << bad;
    const Response& res = std::get<Response>(action);
    ExpectProblem(res, 400, "bad-request");
    EXPECT_NE(res.body().find("Last-Event-ID"), std::string::npos);
  }
  Response res = Call(verb::head, "/counters/a/watch");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[field::allow], "GET");
  res = Call(verb::post, "/watch");
  ExpectProblem(res, 405, "method-not-allowed");
  EXPECT_EQ(res[field::allow], "GET");
}

TEST_F(WatchDispatchTest, APrefixLimitedTokenWatchesItsRangesOnly) {
  const Principal limited("t", {Scope::kRead}, {"a:", "b:x"});
  const WatchCall all = AsWatch(Decide("/watch", {}, &limited));
  EXPECT_TRUE(all.restricted);
  EXPECT_EQ(all.ranges, (std::vector<std::string>{"a:", "b:x"}));
  const WatchCall within = AsWatch(Decide("/watch?prefix=a:1", {}, &limited));
  EXPECT_TRUE(within.restricted);
  EXPECT_EQ(within.ranges, (std::vector<std::string>{"a:1"}));
  const Principal everything("u", {Scope::kRead}, {});
  EXPECT_FALSE(AsWatch(Decide("/watch", {}, &everything)).restricted);
}

TEST_F(WatchDispatchTest, AnExchangeCannotStream) {
  // The session serves watches; an Exchange given one answers without a
  // 500 (the fuzz target serves every request through one).
  ExpectProblem(Call(verb::get, "/counters/a/watch"), 501, "not-implemented");
}

TEST(ParseLastEventIdTest, AbsentOneValueOrAnError) {
  Request req{verb::get, "/watch", 11};
  EXPECT_EQ(*ParseLastEventId(req), std::nullopt);
  req.set("Last-Event-ID", "0");
  EXPECT_EQ(*ParseLastEventId(req), 0u);
  req.insert("Last-Event-ID", "0");
  EXPECT_FALSE(ParseLastEventId(req).has_value()) << "sent twice";
}

}  // namespace
}  // namespace counterd::http
