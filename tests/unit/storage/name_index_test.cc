#include "name_index.h"

#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace counterd::storage {
namespace {

using Map = std::map<std::string, int, std::less<>>;

// Random inserts and erases against std::map as the model; deletion's
// backward shift is where an open-addressing table usually goes wrong.
TEST(NameIndexTest, AgreesWithAModelUnderRandomInsertsAndErases) {
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    Map map;
    NameIndex<Map::iterator> index;
    for (int step = 0; step < 20000; ++step) {
      std::string name = "n";
      name.append(std::to_string(rng() % 3000));
      if (rng() % 3 == 0) {
        const bool present = map.count(name) > 0;
        ASSERT_EQ(index.Erase(name), present);
        map.erase(name);
      } else if (map.count(name) == 0) {
        index.Insert(map.emplace(name, step).first);
      }
      ASSERT_EQ(index.size(), map.size());
    }
    for (int i = 0; i < 3000; ++i) {
      std::string name = "n";
      name.append(std::to_string(i));
      const auto* found = index.Find(name);
      const auto it = map.find(name);
      if (it == map.end()) {
        EXPECT_EQ(found, nullptr) << name;
      } else {
        ASSERT_NE(found, nullptr) << name;
        EXPECT_EQ(*found, it);
      }
    }
  }
}

TEST(NameIndexTest, EmptyAndClear) {
  Map map;
  NameIndex<Map::iterator> index;
  EXPECT_EQ(index.Find("x"), nullptr);
  EXPECT_FALSE(index.Erase("x"));
  index.Insert(map.emplace("x", 1).first);
  EXPECT_NE(index.Find("x"), nullptr);
  index.Clear();
  EXPECT_EQ(index.Find("x"), nullptr);
}

}  // namespace
}  // namespace counterd::storage
