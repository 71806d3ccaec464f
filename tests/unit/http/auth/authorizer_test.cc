// The Authorizer: the full decision table (every route x method x scope
// set x prefix rule), the 401 cases with their challenges, the 403 details,
// the metrics, and a reload swapping the token set.
#include "auth/authorizer.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/uri.h"
#include "auth/digest.h"
#include "auth/token_set.h"

namespace counterd::http {
namespace {

using bhttp::field;
using bhttp::verb;

// Token i of the table: its scope set is the bits of |mask|, its prefix
// rule one of kPrefixRules. The token's text is its name.
const std::vector<std::vector<std::string>> kPrefixRules = {
    {}, {"a:"}, {"b:", "default"}};

std::string TokenName(unsigned mask, std::size_t rule) {
  return "s" + std::to_string(mask) + "-p" + std::to_string(rule);
}

std::vector<Scope> ScopesOf(unsigned mask) {
  std::vector<Scope> scopes;
  for (const Scope s : kAllScopes) {
    if ((mask & (1u << static_cast<unsigned>(s))) != 0) scopes.push_back(s);
  }
  return scopes;
}

std::shared_ptr<const TokenSet> TableTokens() {
  std::vector<TokenSet::Entry> entries;
  for (unsigned mask = 0; mask < 16; ++mask) {
    for (std::size_t rule = 0; rule < kPrefixRules.size(); ++rule) {
      const std::string name = TokenName(mask, rule);
      entries.push_back(
          {Sha256(name), Principal(name, ScopesOf(mask), kPrefixRules[rule])});
    }
  }
  return std::make_shared<const TokenSet>(std::move(entries));
}

Request Header(verb method, std::string_view target,
               std::optional<std::string> authorization) {
  Request req{method, target, 11};
  if (authorization) req.set(field::authorization, *authorization);
  return req;
}

// The spec, restated independently of the code under test: for each
// target, what each method needs. A method absent from |needs| is not
// served there (405 from the handler, to any known token).
struct Row {
  std::string target;
  std::map<verb, Scope> needs;
  std::string counter;              // touched by the request, if any
  std::optional<std::string> list;  // ?prefix= of GET /counters
  bool probe = false;
};

const Scope R = Scope::kRead, W = Scope::kWrite, M = Scope::kMetrics,
            A = Scope::kAdmin;

std::vector<Row> Table() {
  return {
      {"/", {{verb::get, A}, {verb::head, A}}, "", std::nullopt},
      {"/livez", {}, "", std::nullopt, true},
      {"/readyz", {}, "", std::nullopt, true},
      {"/metrics", {{verb::get, M}, {verb::head, M}}, "", std::nullopt},
      {"/counter", {{verb::get, R}, {verb::head, R}}, "default", std::nullopt},
      {"/counter/increment", {{verb::post, W}}, "default", std::nullopt},
      {"/counters", {{verb::get, R}, {verb::head, R}}, "", std::nullopt},
      {"/counters?prefix=a:x&limit=5",
       {{verb::get, R}, {verb::head, R}},
       "",
       "a:x"},
      {"/counters?prefix=b", {{verb::get, R}, {verb::head, R}}, "", "b"},
      {"/counters/a:x",
       {{verb::get, R}, {verb::head, R}, {verb::put, W}, {verb::delete_, W}},
       "a:x",
       std::nullopt},
      {"/counters/a%3Ax",  // percent-encoded ':' is the same counter
       {{verb::get, R}, {verb::head, R}, {verb::put, W}, {verb::delete_, W}},
       "a:x",
       std::nullopt},
      {"/counters/a:x/increment", {{verb::post, W}}, "a:x", std::nullopt},
      {"/counters/a:x/decrement", {{verb::post, W}}, "a:x", std::nullopt},
      {"/counters/b:y/increment", {{verb::post, W}}, "b:y", std::nullopt},
      {"/counters/default",
       {{verb::get, R}, {verb::head, R}, {verb::put, W}, {verb::delete_, W}},
       "default",
       std::nullopt},
      {"/counters/zz",
       {{verb::get, R}, {verb::head, R}, {verb::put, W}, {verb::delete_, W}},
       "zz",
       std::nullopt},
      {"/nope", {}, "", std::nullopt},
      {"/counters/a:x/nope", {}, "", std::nullopt},
      // Watches need read, GET only; a name watch is a read of that
      // counter, a prefix watch the listing of that prefix.
      {"/counters/a:x/watch", {{verb::get, R}}, "a:x", std::nullopt},
      {"/counters/zz/watch", {{verb::get, R}}, "zz", std::nullopt},
      {"/watch", {{verb::get, R}}, "", std::nullopt},
      {"/watch?prefix=", {{verb::get, R}}, "", std::nullopt},
      {"/watch?prefix=a:x", {{verb::get, R}}, "", "a:x"},
      {"/watch?prefix=b", {{verb::get, R}}, "", "b"},
  };
}

bool Touches(const std::vector<std::string>& prefixes, const std::string& s) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes) {
    if (s.rfind(p, 0) == 0) return true;
  }
  return false;
}

class AuthorizerTest : public ::testing::Test {
 protected:
  AuthorizerTest() : authorizer_(TableTokens(), metrics_) {}

  Authorizer::Decision Decide(verb method, std::string_view target,
                              std::optional<std::string> authorization) {
    const Request req = Header(method, target, std::move(authorization));
    return authorizer_.Authorize(req, MatchRoute(SplitTarget(target).path));
  }

  AuthMetrics metrics_;
  Authorizer authorizer_;
};

TEST_F(AuthorizerTest, DecisionTable) {
  const verb kMethods[] = {verb::get, verb::head,    verb::post,
                           verb::put, verb::delete_, verb::patch};
  int checked = 0;
  for (const Row& row : Table()) {
    for (const verb method : kMethods) {
      // Without a token: only the probes' GET/HEAD pass.
      const bool open =
          row.probe && (method == verb::get || method == verb::head);
      {
        auto d = Decide(method, row.target, std::nullopt);
        ASSERT_EQ(d.refusal.has_value(), !open) << row.target;
        if (d.refusal) {
          EXPECT_EQ(d.refusal->result_int(), 401u);
        }
      }
      for (unsigned mask = 0; mask < 16; ++mask) {
        for (std::size_t rule = 0; rule < kPrefixRules.size(); ++rule) {
          const std::string token = TokenName(mask, rule);
          SCOPED_TRACE(std::string(bhttp::to_string(method)) + " " +
                       row.target + " as " + token);
          bool allowed = true;
          std::string why;
          const auto need = row.needs.find(method);
          if (need != row.needs.end()) {
            const auto bit = 1u << static_cast<unsigned>(need->second);
            const auto& prefixes = kPrefixRules[rule];
            if ((mask & bit) == 0) {
              allowed = false;
              why = "lacks the " + std::string(ScopeName(need->second)) +
                    " scope";
            } else if (!row.counter.empty() &&
                       !Touches(prefixes, row.counter)) {
              allowed = false;
              why = "may only touch counters";
            } else if (row.list && !Touches(prefixes, *row.list)) {
              allowed = false;
              why = "may only list counters";
            } else if (!row.list && row.target == "/counters") {
              // Unfiltered listing is allowed; the handler filters.
            }
          }
          const auto d = Decide(method, row.target, "Bearer " + token);
          ++checked;
          if (allowed) {
            EXPECT_FALSE(d.refusal) << d.refusal->body();
            if (!open) {
              ASSERT_NE(d.principal, nullptr);
              EXPECT_EQ(d.principal->name(), token);
            }
            continue;
          }
          ASSERT_TRUE(d.refusal);
          EXPECT_EQ(d.refusal->result_int(), 403u);
          EXPECT_NE(d.refusal->body().find(why), std::string::npos)
              << d.refusal->body();
          EXPECT_NE(d.refusal->body().find("urn:counterd:problem:forbidden"),
                    std::string::npos);
          EXPECT_EQ(d.principal, nullptr);
        }
      }
    }
  }
  EXPECT_EQ(checked, 24 * 6 * 16 * 3);
}

TEST_F(AuthorizerTest, UnauthorizedCasesAndChallenges) {
  const std::string realm = "Bearer realm=\"counterd\"";
  const std::string invalid = realm + ", error=\"invalid_token\"";
  struct Case {
    std::optional<std::string> header;
    std::string challenge;
    AuthFailure reason;
  };
  const Case cases[] = {
      {std::nullopt, realm, AuthFailure::kMissing},
      {"Basic dXNlcjpwYXNz", realm, AuthFailure::kMissing},
      {"Token s15-p0", realm, AuthFailure::kMissing},
      {"Bearer", invalid, AuthFailure::kMalformed},
      {"Bearer ", invalid, AuthFailure::kMalformed},
      {"Bearer a b", invalid, AuthFailure::kMalformed},
      {"Bearer a,b", invalid, AuthFailure::kMalformed},
      {"Bearer s15-p0x", invalid, AuthFailure::kUnknown},
      {"Bearer S15-P0", invalid, AuthFailure::kUnknown},
      {"Bearer dG9rZW4=", invalid, AuthFailure::kUnknown},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header.value_or("(none)"));
    const AuthCounts before = metrics_.Read();
    const auto d = Decide(verb::get, "/counters/a:x", c.header);
    ASSERT_TRUE(d.refusal);
    EXPECT_EQ(d.refusal->result_int(), 401u);
    EXPECT_EQ((*d.refusal)[field::www_authenticate], c.challenge);
    EXPECT_EQ((*d.refusal)[field::content_type], "application/problem+json");
    EXPECT_NE(d.refusal->body().find("urn:counterd:problem:unauthorized"),
              std::string::npos);
    EXPECT_NE(d.refusal->body().find("\"instance\":\"/counters/a:x\""),
              std::string::npos);
    if (c.header && c.header->find(' ') != std::string::npos) {
      // The token itself never appears in the answer.
      const std::string sent = c.header->substr(c.header->find(' ') + 1);
      if (sent.size() > 2) {
        EXPECT_EQ(d.refusal->body().find(sent), std::string::npos);
      }
    }
    const AuthCounts after = metrics_.Read();
    const auto i = static_cast<std::size_t>(c.reason);
    EXPECT_EQ(after.failures[i], before.failures[i] + 1);
  }
}

TEST_F(AuthorizerTest, SchemeIsCaseInsensitiveAndSpacesMayRepeat) {
  EXPECT_FALSE(Decide(verb::get, "/counter", "bearer s1-p0").refusal);
  EXPECT_FALSE(Decide(verb::get, "/counter", "BEARER   s1-p0").refusal);
}

TEST_F(AuthorizerTest, TwoAuthorizationHeadersAreMalformed) {
  Request req = Header(verb::get, "/counter", "Bearer s1-p0");
  req.insert(field::authorization, "Bearer s15-p0");
  const auto d = authorizer_.Authorize(req, MatchRoute("/counter"));
  ASSERT_TRUE(d.refusal);
  EXPECT_EQ(d.refusal->result_int(), 401u);
  EXPECT_EQ(metrics_.Read()
                .failures[static_cast<std::size_t>(AuthFailure::kMalformed)],
            1u);
}

TEST_F(AuthorizerTest, ForbiddenDetailsNameTheScopeOrThePrefixRule) {
  // s1 = read only.
  auto d = Decide(verb::put, "/counters/a:x", "Bearer s1-p0");
  ASSERT_TRUE(d.refusal);
  EXPECT_NE(d.refusal->body().find(
                "token \\\"s1-p0\\\" lacks the write scope that PUT "
                "/counters/{name} needs (it has: read)"),
            std::string::npos)
      << d.refusal->body();
  EXPECT_EQ((*d.refusal)[field::www_authenticate],
            "Bearer realm=\"counterd\", error=\"insufficient_scope\", "
            "scope=\"write\"");
  // s3 = read + write, limited to "a:".
  d = Decide(verb::post, "/counters/zz/increment", "Bearer s3-p1");
  ASSERT_TRUE(d.refusal);
  EXPECT_NE(d.refusal->body().find(
                "token \\\"s3-p1\\\" may only touch counters whose names "
                "start with \\\"a:\\\"; \\\"zz\\\" does not"),
            std::string::npos)
      << d.refusal->body();
  EXPECT_EQ((*d.refusal)[field::www_authenticate],
            "Bearer realm=\"counterd\", error=\"insufficient_scope\"");
  d = Decide(verb::get, "/counters?prefix=b", "Bearer s3-p1");
  ASSERT_TRUE(d.refusal);
  EXPECT_NE(d.refusal->body().find("prefix=\\\"b\\\" reaches outside them"),
            std::string::npos)
      << d.refusal->body();
  // Every ?prefix= is checked, not only the one the handler uses.
  d = Decide(verb::get, "/counters?prefix=a:&prefix=b", "Bearer s3-p1");
  ASSERT_TRUE(d.refusal);
  d = Decide(verb::get, "/counters?prefix=b&prefix=a:", "Bearer s3-p1");
  ASSERT_TRUE(d.refusal);
  // An empty prefix is no prefix: the filtered listing.
  EXPECT_FALSE(Decide(verb::get, "/counters?prefix=", "Bearer s3-p1").refusal);
  EXPECT_EQ(metrics_.Read()
                .failures[static_cast<std::size_t>(AuthFailure::kForbidden)],
            5u);
}

TEST_F(AuthorizerTest, InvalidNamesAreLeftToTheHandlersFourHundred) {
  // A prefix-limited write token and a name that is not a counter name:
  // nothing can be touched; the handler answers 400 invalid-name.
  EXPECT_FALSE(Decide(verb::put, "/counters/%zz", "Bearer s3-p1").refusal);
  EXPECT_FALSE(Decide(verb::put, "/counters/..", "Bearer s3-p1").refusal);
  // The scope still applies.
  EXPECT_TRUE(Decide(verb::put, "/counters/%zz", "Bearer s1-p1").refusal);
}

TEST_F(AuthorizerTest, ReplaceSwapsTheSetForLaterRequests) {
  const auto kept = Decide(verb::get, "/counter", "Bearer s1-p0");
  ASSERT_NE(kept.principal, nullptr);
  std::vector<TokenSet::Entry> entries;
  entries.push_back({Sha256("fresh"), Principal("fresh", {Scope::kRead}, {})});
  authorizer_.Replace(std::make_shared<const TokenSet>(std::move(entries)));
  EXPECT_TRUE(Decide(verb::get, "/counter", "Bearer s1-p0").refusal);
  const auto fresh = Decide(verb::get, "/counter", "Bearer fresh");
  ASSERT_NE(fresh.principal, nullptr);
  EXPECT_EQ(fresh.principal->name(), "fresh");
  // A request let through before the swap keeps its principal alive.
  EXPECT_EQ(kept.principal->name(), "s1-p0");
}

TEST(AuthorizerOffTest, EverythingPassesWithoutAPrincipal) {
  AuthMetrics metrics;
  Authorizer off(nullptr, metrics);
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(metrics.Read().enabled);
  const Request req = Header(verb::delete_, "/counters/x", std::nullopt);
  const auto d = off.Authorize(req, MatchRoute("/counters/x"));
  EXPECT_FALSE(d.refusal);
  EXPECT_EQ(d.principal, nullptr);
}

}  // namespace
}  // namespace counterd::http
