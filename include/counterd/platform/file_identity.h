// FileIdentity: what tells one version of a file from the next without
// reading it: device, inode, size and modification time of the file a path
// resolves to. Symlinks are followed on every call, so when Kubernetes
// updates a mounted Secret by swapping its "..data" symlink to a new
// directory, the same path reports another inode. A value type.
#ifndef COUNTERD_PLATFORM_FILE_IDENTITY_H_
#define COUNTERD_PLATFORM_FILE_IDENTITY_H_

#include <cstdint>
#include <string>

#include "counterd/core/result.h"

namespace counterd::platform {

struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;

  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

// stat(2) of |path| (following symlinks). Errors as ErrnoStatus: kNotFound
// when it does not exist, kUnavailable otherwise.
Result<FileIdentity> StatFile(const std::string& path);

}  // namespace counterd::platform

#endif  // COUNTERD_PLATFORM_FILE_IDENTITY_H_
