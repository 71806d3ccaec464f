// PosixFileSystem: FileSystem over POSIX calls. Thread-safe (stateless).
#ifndef COUNTERD_PLATFORM_POSIX_FILE_SYSTEM_H_
#define COUNTERD_PLATFORM_POSIX_FILE_SYSTEM_H_

#include <memory>
#include <string_view>

#include "counterd/core/status.h"
#include "counterd/platform/file_system.h"

namespace counterd::platform {

std::unique_ptr<FileSystem> NewPosixFileSystem();

// The one place errno becomes a Status: "<op> <path>: <strerror>".
// ENOSPC/EDQUOT -> kResourceExhausted, ENOENT -> kNotFound,
// EWOULDBLOCK/EAGAIN (a held lock) -> kUnavailable, others -> kUnavailable.
Status ErrnoStatus(std::string_view op, std::string_view path, int err);

}  // namespace counterd::platform

#endif  // COUNTERD_PLATFORM_POSIX_FILE_SYSTEM_H_
