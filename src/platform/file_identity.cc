#include "counterd/platform/file_identity.h"

#include <sys/stat.h>

#include <cerrno>

#include "counterd/platform/posix_file_system.h"

namespace counterd::platform {

Result<FileIdentity> StatFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
  FileIdentity id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  return id;
}

}  // namespace counterd::platform
