// LowerThisThreadPriority lowers the calling thread alone.
#include "counterd/platform/thread_priority.h"

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

namespace counterd::platform {
namespace {

TEST(ThreadPriorityTest, LowersTheCallingThreadOnly) {
  const int before = ThisThreadNice();
  int inside = before;
  bool lowered = false;
  std::thread background([&] {
    lowered = LowerThisThreadPriority(3);
    inside = ThisThreadNice();
  });
  background.join();
  ASSERT_TRUE(lowered);  // raising one's own nice value needs no privilege
  EXPECT_EQ(inside, std::min(before + 3, 19));
  EXPECT_EQ(ThisThreadNice(), before);
}

}  // namespace
}  // namespace counterd::platform
