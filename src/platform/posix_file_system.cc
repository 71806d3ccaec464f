// PosixFileSystem: the only file in counterd that makes file-system system
// calls (and, with fault_injection_file_system.cc, that knows errno).
#include "counterd/platform/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

namespace counterd::platform {

Status ErrnoStatus(std::string_view op, std::string_view path, int err) {
  std::string message(op);
  message += ' ';
  message += path;
  message += ": ";
  message += std::system_category().message(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return Status::ResourceExhausted(std::move(message));
    case ENOENT:
      return Status::NotFound(std::move(message));
    default:
      return Status::Unavailable(std::move(message));
  }
}

namespace {

// A file descriptor that closes itself; -1 means none (fmt's file).
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  // Closes and reports close(2)'s error (0 on success).
  int Close() {
    if (fd_ < 0) return 0;
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }

 private:
  void Reset() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }
  int fd_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, UniqueFd fd, std::uint64_t size)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;
  ~PosixWritableFile() override { (void)Close(); }

  Status Append(std::string_view data) override {
    // At our own end, not the descriptor's offset or O_APPEND's end of
    // file: zeros written ahead lie past it.
    return WriteAt(data, size_);
  }

  Status ZeroFillAhead(std::uint64_t bytes) override {
    // Only what is not zero-filled already; a write, not fallocate: an
    // allocated but unwritten extent would still need converting (a
    // file-system journal commit) on the first append into it.
    static constexpr std::size_t kChunk = 64 << 10;
    static const std::string kZeros(kChunk, '\0');
    const std::string_view zeros = kZeros;
    const std::uint64_t end = size_ + bytes;
    zeroed_end_ = std::max(zeroed_end_, size_);
    while (zeroed_end_ < end) {
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(kChunk, end - zeroed_end_));
      if (Status s = WriteAt(zeros.substr(0, n), zeroed_end_); !s.ok()) {
        return s;
      }
    }
    return Status::Ok();
  }

  Status Sync() override {
    // fdatasync covers the data and the file size (the metadata needed to
    // read it back), which is all a journal append changes.
    if (::fdatasync(fd_.get()) != 0) {
      return ErrnoStatus("fdatasync", path_, errno);
    }
    return Status::Ok();
  }

  Status WriteBack() override {
    // Offsets are the file's: the writer appends from where it opened it.
    if (written_back_ > waited_) {
      if (::sync_file_range(fd_.get(), static_cast<off_t>(waited_),
                            static_cast<off_t>(written_back_ - waited_),
                            SYNC_FILE_RANGE_WAIT_BEFORE |
                                SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        return ErrnoStatus("sync_file_range", path_, errno);
      }
      waited_ = written_back_;
    }
    if (size_ > written_back_) {
      if (::sync_file_range(fd_.get(), static_cast<off_t>(written_back_),
                            static_cast<off_t>(size_ - written_back_),
                            SYNC_FILE_RANGE_WRITE) != 0) {
        return ErrnoStatus("sync_file_range", path_, errno);
      }
      written_back_ = size_;
    }
    return Status::Ok();
  }

  Status Close() override {
    if (const int err = fd_.Close(); err != 0) {
      return ErrnoStatus("close", path_, err);
    }
    return Status::Ok();
  }

  std::uint64_t Size() const override { return size_; }

 private:
  // pwrite of all of |data| at |at|, looping over partial writes and EINTR;
  // |at| advances as bytes land, so after an error it says how far the
  // file was written.
  Status WriteAt(std::string_view data, std::uint64_t& at) {
    while (!data.empty()) {
      const ssize_t n =
          ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", path_, errno);
      }
      data.remove_prefix(static_cast<std::size_t>(n));
      at += static_cast<std::uint64_t>(n);
    }
    return Status::Ok();
  }

  std::string path_;
  UniqueFd fd_;
  std::uint64_t size_;
  // Bytes below this are written (appended, or zeros written ahead).
  std::uint64_t zeroed_end_ = size_;
  // WriteBack: bytes below written_back_ have been started, bytes below
  // waited_ are out.
  std::uint64_t written_back_ = size_;
  std::uint64_t waited_ = size_;
};

class PosixReleasedFile final : public ReleasedFile {
 public:
  PosixReleasedFile(std::string path, UniqueFd fd, std::uint64_t size)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}

  Status FreeInSteps(std::uint64_t step_bytes) override {
    // Each step is its own file system commit (the fdatasync), so no
    // commit frees, and discards, more than one step of blocks. A crash
    // part-way leaves a nameless inode that the file system frees when it
    // next mounts. A failure stops here (never retried); closing frees the
    // rest at once.
    while (size_ > 0) {
      size_ = size_ > step_bytes ? size_ - step_bytes : 0;
      if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
        return ErrnoStatus("ftruncate", path_, errno);
      }
      if (::fdatasync(fd_.get()) != 0) {
        return ErrnoStatus("fdatasync", path_, errno);
      }
    }
    if (const int err = fd_.Close(); err != 0) {
      return ErrnoStatus("close", path_, err);
    }
    return Status::Ok();
  }

 private:
  std::string path_;
  UniqueFd fd_;
  std::uint64_t size_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  // Closing the descriptor releases the flock.

 private:
  UniqueFd fd_;
};

Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                   int flags) {
  UniqueFd fd(
      ::open(path.c_str(), flags | O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus("open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", path, errno);
  return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(
      path, std::move(fd), static_cast<std::uint64_t>(st.st_size)));
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return OpenWritable(path, O_TRUNC);
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return OpenWritable(path, 0);  // Append writes at the size it found
  }

  Result<std::string> ReadFile(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("open", path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", path, errno);
    // One byte more than the file, so that the read which finds its end
    // has room and the buffer never grows: growing copies every byte read
    // so far (a snapshot of ten million counters is 430 MB). A file that
    // grows meanwhile doubles the buffer.
    std::string data;
    data.resize(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t done = 0;
    while (true) {
      if (done == data.size()) data.resize(2 * data.size());
      const ssize_t n =
          ::read(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("read", path, errno);
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    data.resize(done);
    return data;
  }

  Result<std::unique_ptr<ReleasedFile>> OpenToRelease(
      const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      // No file; or one this process may not write (a read-only mode, a
      // file put there by another user): the rename or unlink that takes
      // its name needs only the directory, so it goes at once, as it did
      // before this existed, rather than failing what would work.
      if (errno == ENOENT || errno == EACCES || errno == EPERM ||
          errno == EROFS) {
        return std::unique_ptr<ReleasedFile>();
      }
      return ErrnoStatus("open", path, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", path, errno);
    return std::unique_ptr<ReleasedFile>(std::make_unique<PosixReleasedFile>(
        path, std::move(fd), static_cast<std::uint64_t>(st.st_size)));
  }

  Result<bool> FileExists(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT) return false;
    return ErrnoStatus("stat", path, errno);
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    // readdir is safe here: this DIR stream is used by this call only
    // (glibc's readdir_r, the "thread-safe" one, is deprecated).
    // NOLINTNEXTLINE(concurrency-mt-unsafe)
    while (const dirent* entry = ::readdir(d)) {
      const std::string_view name(entry->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir", dir, err);
    return names;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename", from + " -> " + to, errno);
    }
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::Ok();
  }

  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("open", path, errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("ftruncate", path, errno);
    }
    // The cut must be durable before anything is appended after it, or a
    // crash could bring the torn bytes back behind new records.
    if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", path, errno);
    if (const int err = fd.Close(); err != 0) {
      return ErrnoStatus("close", path, err);
    }
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("open", dir, errno);
    if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", dir, errno);
    return Status::Ok();
  }

  Status CreateDir(const std::string& dir) override {
    std::string partial;
    std::size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      partial = dir.substr(0, pos);
      if (partial.empty()) continue;
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("mkdir", partial, errno);
      }
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoStatus("open", path, errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Status::Unavailable(
            path + " is locked: another counterd process owns this data dir");
      }
      return ErrnoStatus("flock", path, errno);
    }
    return std::unique_ptr<FileLock>(
        std::make_unique<PosixFileLock>(std::move(fd)));
  }

  Result<std::uint64_t> FreeBytes(const std::string& dir) override {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) {
      return ErrnoStatus("statvfs", dir, errno);
    }
    // f_bavail, not f_bfree: the blocks reserved for root are not ours.
    return static_cast<std::uint64_t>(st.f_bavail) *
           static_cast<std::uint64_t>(st.f_frsize);
  }
};

}  // namespace

std::unique_ptr<FileSystem> NewPosixFileSystem() {
  return std::make_unique<PosixFileSystem>();
}

}  // namespace counterd::platform
