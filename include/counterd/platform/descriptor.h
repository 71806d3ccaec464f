// Duplicated descriptors: a number of one's own for an open file that
// another library owns (libpq's socket), for a reactor to register and,
// later, to deregister and close without touching the library's number.
#ifndef COUNTERD_PLATFORM_DESCRIPTOR_H_
#define COUNTERD_PLATFORM_DESCRIPTOR_H_

#include "counterd/core/result.h"

namespace counterd::platform {

// fcntl(F_DUPFD_CLOEXEC): a new descriptor for the open file |fd| names,
// closed on exec; kUnavailable (with the errno's text) if none is left.
Result<int> DuplicateDescriptor(int fd);

// close(2) of a duplicate that nothing else took over. Its error is of no
// use: nothing was written through it.
void CloseDescriptor(int fd);

}  // namespace counterd::platform

#endif  // COUNTERD_PLATFORM_DESCRIPTOR_H_
