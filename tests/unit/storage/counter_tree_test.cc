#include "counter_tree.h"

#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace counterd::storage {
namespace {

using Model = std::map<std::string, int, std::less<>>;
using Tree = CounterTree<int>;

std::vector<std::pair<std::string, int>> Contents(const Tree& tree) {
  std::vector<std::pair<std::string, int>> out;
  for (auto it = tree.begin(); it != tree.end(); ++it) {
    out.emplace_back(it.name(), it.value());
  }
  return out;
}

std::vector<std::pair<std::string, int>> Contents(const Model& model) {
  return {model.begin(), model.end()};
}

// A name from a small space, so inserts collide and erases hit; a few are
// longer than std::string keeps inline.
std::string RandomName(std::mt19937& rng, std::uint32_t space) {
  std::string name = (rng() % 8 == 0) ? "a-long-name-kept-on-the-heap-" : "n";
  name.append(std::to_string(rng() % space));
  return name;
}

TEST(CounterTreeTest, EmptyTreeFindsNothing) {
  Tree tree;
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.Find("x"), nullptr);
  EXPECT_EQ(tree.begin(), tree.end());
  EXPECT_EQ(tree.LowerBound("x"), tree.end());
  EXPECT_EQ(tree.UpperBound(""), tree.end());
  EXPECT_FALSE(tree.Erase("x"));
  EXPECT_TRUE(tree.Valid());
}

TEST(CounterTreeTest, InsertKeepsTheFirstValue) {
  Tree tree;
  EXPECT_TRUE(tree.Insert("a", 1));
  EXPECT_FALSE(tree.Insert("a", 2));
  ASSERT_NE(tree.Find("a"), nullptr);
  EXPECT_EQ(*tree.Find("a"), 1);
  *tree.Find("a") = 3;
  EXPECT_EQ(*tree.Find("a"), 3);
  EXPECT_EQ(tree.size(), 1U);
}

// Random inserts, erases, lookups and range reads against std::map: every
// split, merge and separator rule is exercised on trees of several levels
// that grow and shrink.
TEST(CounterTreeTest, AgreesWithAModelUnderRandomChanges) {
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    // Small spaces keep the tree shallow and churning; large ones grow it
    // to three levels (64 x 64 leaves hold 262,144 names).
    const std::uint32_t space = seed % 2 == 0 ? 500 : 40000;
    Tree tree;
    Model model;
    for (int step = 0; step < 60000; ++step) {
      std::string name = RandomName(rng, space);
      // Phases: grow, then shrink, then mixed, so that merges happen on a
      // tall tree too. Shrinking erases a name that is there (the next one
      // after a random point), so the tree empties through every shape.
      const int phase = step / 20000;
      if (phase == 1 && !model.empty()) {
        auto next = model.lower_bound(name);
        if (next == model.end()) next = model.begin();
        name = next->first;
      }
      const std::uint32_t erase_odds = phase == 0 ? 4 : phase == 1 ? 1 : 2;
      if (rng() % (erase_odds + 1) == 0 || phase == 1) {
        ASSERT_EQ(tree.Erase(name), model.erase(name) == 1) << name;
      } else {
        const bool added = model.emplace(name, step).second;
        ASSERT_EQ(tree.Insert(name, step), added) << name;
      }
      ASSERT_EQ(tree.size(), model.size());
      const std::string probe = RandomName(rng, space);
      const auto found = model.find(probe);
      const int* got = tree.Find(probe);
      ASSERT_EQ(got != nullptr, found != model.end()) << probe;
      if (got != nullptr) {
        ASSERT_EQ(*got, found->second) << probe;
      }
      const auto lower = model.lower_bound(probe);
      const auto tree_lower = tree.LowerBound(probe);
      ASSERT_EQ(tree_lower == tree.end(), lower == model.end()) << probe;
      if (lower != model.end()) {
        ASSERT_EQ(tree_lower.name(), lower->first);
      }
      const auto upper = model.upper_bound(probe);
      const auto tree_upper = tree.UpperBound(probe);
      ASSERT_EQ(tree_upper == tree.end(), upper == model.end()) << probe;
      if (upper != model.end()) {
        ASSERT_EQ(tree_upper.name(), upper->first);
      }
      if (step % 997 == 0) {
        ASSERT_TRUE(tree.Valid()) << "step " << step;
        ASSERT_EQ(Contents(tree), Contents(model)) << "step " << step;
      }
    }
    ASSERT_TRUE(tree.Valid());
    ASSERT_EQ(Contents(tree), Contents(model));
  }
}

// A sorted load fills every leaf but the last, which is where the memory
// per counter comes from.
TEST(CounterTreeTest, AppendFillsLeaves) {
  Tree tree;
  char name[16];
  for (int i = 0; i < 100000; ++i) {
    std::snprintf(name, sizeof name, "c%08d", i);
    tree.Append(name, i);
  }
  EXPECT_TRUE(tree.Valid());
  EXPECT_EQ(tree.size(), 100000U);
  EXPECT_EQ(tree.LeafCount(),
            (100000 + Tree::kLeafSlots - 1) / Tree::kLeafSlots);
  ASSERT_NE(tree.Find("c00054321"), nullptr);
  EXPECT_EQ(*tree.Find("c00054321"), 54321);
}

// Inserts of ever-growing names (counters per time window) fill leaves
// too, and erasing most names frees or merges their leaves: memory follows
// the names that are left, not the most there ever were.
TEST(CounterTreeTest, GrowingNamesFillLeavesAndErasuresFreeThem) {
  Tree tree;
  char name[16];
  constexpr int kNames = 64 * 1000;
  for (int i = 0; i < kNames; ++i) {
    std::snprintf(name, sizeof name, "w%08d", i);
    ASSERT_TRUE(tree.Insert(name, i));
  }
  EXPECT_EQ(tree.LeafCount(), kNames / Tree::kLeafSlots);
  // Keep one name in 64: at most a quarter-full leaf per neighbour pair
  // survives, so the leaves shrink to about 1/12 or fewer.
  for (int i = 0; i < kNames; ++i) {
    if (i % 64 == 0) continue;
    std::snprintf(name, sizeof name, "w%08d", i);
    ASSERT_TRUE(tree.Erase(name));
  }
  EXPECT_TRUE(tree.Valid());
  EXPECT_EQ(tree.size(), 1000U);
  EXPECT_LE(tree.LeafCount(), 1000U / (Tree::kLeafSlots / 4) + 1);
  for (int i = 0; i < kNames; i += 64) {
    std::snprintf(name, sizeof name, "w%08d", i);
    ASSERT_TRUE(tree.Erase(name));
  }
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.LeafCount(), 0U);
  EXPECT_EQ(tree.begin(), tree.end());
  EXPECT_TRUE(tree.Insert("again", 1));
  EXPECT_TRUE(tree.Valid());
}

TEST(CounterTreeTest, MovedFromTreeIsEmptyAndUsable) {
  Tree tree;
  for (int i = 0; i < 1000; ++i) tree.Insert("n" + std::to_string(i), i);
  Tree moved(std::move(tree));
  EXPECT_EQ(moved.size(), 1000U);
  EXPECT_TRUE(tree.empty());  // NOLINT(bugprone-use-after-move): the contract
  EXPECT_TRUE(tree.Insert("x", 1));
  tree = std::move(moved);
  EXPECT_EQ(tree.size(), 1000U);
  EXPECT_TRUE(tree.Valid());
}

}  // namespace
}  // namespace counterd::storage
