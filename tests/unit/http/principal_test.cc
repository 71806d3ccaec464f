// Principal's prefix rules, and the restricted listing they drive through
// the service: a token limited to prefixes lists exactly its counters,
// paginated as an unlimited listing is.
#include "api/principal.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "counterd/service/counter_service.h"
#include "support/completions.h"
#include "support/fake_repository.h"

namespace counterd::http {
namespace {

TEST(PrincipalTest, ScopesAreIndependent) {
  const Principal p("w", {Scope::kWrite}, {});
  EXPECT_TRUE(p.HasScope(Scope::kWrite));
  EXPECT_FALSE(p.HasScope(Scope::kRead));
  EXPECT_FALSE(p.HasScope(Scope::kMetrics));
  EXPECT_FALSE(p.HasScope(Scope::kAdmin));
  EXPECT_TRUE(p.MayWrite("anything"));
  EXPECT_FALSE(p.MayRead("anything"));
  EXPECT_EQ(p.ScopeList(), "write");
  EXPECT_FALSE(p.is_limited());
}

TEST(PrincipalTest, PrefixesAreSortedAndCoveredOnesDropped) {
  const Principal p("p", {Scope::kRead},
                    {"billing:eu:", "orders:", "billing:", "orders:"});
  EXPECT_EQ(p.prefixes(), (std::vector<std::string>{"billing:", "orders:"}));
  EXPECT_TRUE(p.MayRead("billing:eu:x"));
  EXPECT_TRUE(p.MayRead("billing:"));
  EXPECT_TRUE(p.MayRead("orders:1"));
  EXPECT_FALSE(p.MayRead("billing"));
  EXPECT_FALSE(p.MayRead("default"));
  EXPECT_FALSE(p.MayWrite("billing:x")) << "no write scope";
  EXPECT_EQ(p.PrefixList(), "\"billing:\", \"orders:\"");
}

TEST(PrincipalTest, ListPrefixesIntersectWithTheQuery) {
  const Principal p("p", {Scope::kRead}, {"billing:", "bills:", "orders:"});
  EXPECT_EQ(p.ListPrefixes(""),
            (std::vector<std::string>{"billing:", "bills:", "orders:"}));
  EXPECT_EQ(p.ListPrefixes("bil"),
            (std::vector<std::string>{"billing:", "bills:"}));
  EXPECT_EQ(p.ListPrefixes("billing:eu"),
            (std::vector<std::string>{"billing:eu"}));
  EXPECT_TRUE(p.ListPrefixes("x").empty());
  EXPECT_TRUE(p.MayListPrefix("billing:eu"));
  EXPECT_FALSE(p.MayListPrefix("bil"));
  EXPECT_FALSE(p.MayListPrefix(""));
  const Principal all("all", {Scope::kRead}, {});
  EXPECT_EQ(all.ListPrefixes("q"), (std::vector<std::string>{"q"}));
  EXPECT_TRUE(all.MayListPrefix(""));
}

class VisibleListTest : public ::testing::Test {
 protected:
  VisibleListTest() : store_(clock_), service_(store_) {
    for (const char* name :
         {"a", "billing:1", "billing:2", "billing:3", "bz", "default",
          "orders:1", "orders:2", "shared:1", "zz"}) {
      Put(name);
    }
  }

  void Put(const std::string& name) {
    domain::Operation op;
    op.kind = domain::OpKind::kSet;
    op.name = *domain::CounterName::Parse(name);
    op.operand = 1;
    counterd::testing::Captured<domain::TransactionOutcome> done;
    service_.Commit(domain::SingleOperation(std::move(op)), done);
    ASSERT_TRUE(done.done() && done.value().status.ok());
  }

  // The page GET /counters shows |principal| (as the handler asks for it).
  service::ListPage ListVisible(service::ListQuery query,
                                const Principal& principal) {
    if (principal.is_limited()) {
      query.ranges = principal.ListPrefixes(query.prefix);
      query.restricted = true;
    }
    counterd::testing::Captured<Result<service::ListPage>> page;
    service_.List(query, page);
    EXPECT_TRUE(page.done());
    return std::move(*page.value());
  }

  // Every name |principal| sees, page by page with |limit|; also checks
  // that no page is empty while |next| promised more.
  std::vector<std::string> Walk(const Principal& principal, std::size_t limit,
                                const std::string& prefix = "") {
    std::vector<std::string> names;
    std::string after;
    for (int pages = 0; pages < 100; ++pages) {
      const service::ListPage page =
          ListVisible({prefix, after, limit, false, {}}, principal);
      EXPECT_LE(page.counters.size(), limit);
      for (const auto& c : page.counters) names.push_back(c.name);
      if (!page.next) return names;
      EXPECT_EQ(page.counters.size(), limit) << "a short page with next";
      EXPECT_EQ(*page.next, names.back());
      after = *page.next;
    }
    ADD_FAILURE() << "the listing never ended";
    return names;
  }

  ManualClock clock_;
  counterd::testing::FakeRepository store_;
  service::CounterService service_;
};

TEST_F(VisibleListTest, UnlimitedTokenSeesEverything) {
  const Principal all("all", {Scope::kRead}, {});
  EXPECT_EQ(Walk(all, 3).size(), 10u);
}

TEST_F(VisibleListTest, EveryPageSizeWalksExactlyTheTokensCounters) {
  const Principal p("p", {Scope::kRead}, {"orders:", "billing:", "zz"});
  const std::vector<std::string> expected{"billing:1", "billing:2", "billing:3",
                                          "orders:1",  "orders:2",  "zz"};
  for (std::size_t limit = 1; limit <= 8; ++limit) {
    SCOPED_TRACE(limit);
    EXPECT_EQ(Walk(p, limit), expected);
  }
}

TEST_F(VisibleListTest, LastPageFullAtTheEndOfARangeHasNoNext) {
  // billing: holds 3; a page of 3 ends that range and nothing follows.
  const Principal p("p", {Scope::kRead}, {"billing:", "nothing:"});
  const service::ListPage page = ListVisible({"", "", 3, false, {}}, p);
  EXPECT_EQ(page.counters.size(), 3u);
  EXPECT_FALSE(page.next);
}

TEST_F(VisibleListTest, QueryPrefixIsIntersected) {
  const Principal p("p", {Scope::kRead}, {"billing:", "orders:"});
  EXPECT_EQ(Walk(p, 2, "billing:2"), (std::vector<std::string>{"billing:2"}));
  EXPECT_EQ(Walk(p, 2, "b"),
            (std::vector<std::string>{"billing:1", "billing:2", "billing:3"}));
  EXPECT_TRUE(Walk(p, 2, "s").empty());
}

}  // namespace
}  // namespace counterd::http
