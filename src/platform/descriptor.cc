#include "counterd/platform/descriptor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace counterd::platform {

Result<int> DuplicateDescriptor(int fd) {
  const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) {
    return Status::Unavailable(
        "duplicating descriptor " + std::to_string(fd) + ": " +
        std::error_code(errno, std::generic_category()).message());
  }
  return own;
}

void CloseDescriptor(int fd) { (void)::close(fd); }

}  // namespace counterd::platform
