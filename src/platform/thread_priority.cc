#include "counterd/platform/thread_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

namespace counterd::platform {
namespace {

id_t ThisThreadId() { return static_cast<id_t>(gettid()); }

}  // namespace

int ThisThreadNice() {
  errno = 0;  // -1 is a valid answer: only errno tells an error
  const int nice = getpriority(PRIO_PROCESS, ThisThreadId());
  return errno == 0 ? nice : 0;
}

bool LowerThisThreadPriority(int increment) {
  return setpriority(PRIO_PROCESS, ThisThreadId(),
                     ThisThreadNice() + increment) == 0;
}

}  // namespace counterd::platform
