// DuplicateDescriptor: a second number for the same open file, closed on
// exec, that outlives the original; and the error when there is none.
#include "counterd/platform/descriptor.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>

#include <gtest/gtest.h>

namespace counterd::platform {
namespace {

TEST(DescriptorTest, DuplicateIsTheSameFileAndOutlivesTheOriginal) {
  std::array<int, 2> ends{};
  ASSERT_EQ(::pipe(ends.data()), 0);
  Result<int> dup = DuplicateDescriptor(ends[1]);
  ASSERT_TRUE(dup) << dup.error().ToString();
  EXPECT_NE(*dup, ends[1]);
  EXPECT_EQ(::fcntl(*dup, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  // The original goes (as libpq closes its socket); the duplicate still
  // writes to the same pipe.
  ASSERT_EQ(::close(ends[1]), 0);
  ASSERT_EQ(::write(*dup, "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(ends[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  // Closing the duplicate closes the pipe's last write end: end of file.
  CloseDescriptor(*dup);
  EXPECT_EQ(::read(ends[0], &c, 1), 0);
  ::close(ends[0]);
}

TEST(DescriptorTest, NoDescriptorToDuplicateIsUnavailable) {
  Result<int> dup = DuplicateDescriptor(-1);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(dup.error().message().find("Bad file descriptor"),
            std::string::npos)
      << dup.error().message();
}

}  // namespace
}  // namespace counterd::platform
