#include "support/mem_file_system.h"

#include <cerrno>
#include <utility>

namespace counterd::testing {
namespace {

class MemWritableFile final : public platform::WritableFile {
 public:
  MemWritableFile(MemFileSystem& fs,
                  std::shared_ptr<MemFileSystem::Inode> inode)
      : fs_(fs), inode_(std::move(inode)) {}

  Status Append(std::string_view data) override {
    std::lock_guard lock(fs_.mu());
    inode_->data.append(data);
    return Status::Ok();
  }
  Status Sync() override {
    std::lock_guard lock(fs_.mu());
    inode_->synced = inode_->data.size();
    return Status::Ok();
  }
  Status Close() override { return Status::Ok(); }
  std::uint64_t Size() const override {
    std::lock_guard lock(fs_.mu());
    return inode_->data.size();
  }

 private:
  MemFileSystem& fs_;
  std::shared_ptr<MemFileSystem::Inode> inode_;
};

class MemFileLock final : public platform::FileLock {
 public:
  MemFileLock(MemFileSystem& fs, std::string path)
      : fs_(fs), path_(std::move(path)) {}
  ~MemFileLock() override { fs_.Unlock(path_); }

 private:
  MemFileSystem& fs_;
  std::string path_;
};

Status NotFound(const std::string& op, const std::string& path) {
  return Status::NotFound(op + " " + path + ": No such file or directory");
}

}  // namespace

std::string MemFileSystem::DirOf(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void MemFileSystem::SimulateCrash() {
  std::lock_guard lock(mu_);
  for (auto& [path, inode] : durable_) inode->data.resize(inode->synced);
  live_ = durable_;
  locks_.clear();
  ++epoch_;
}

std::string MemFileSystem::Contents(const std::string& path) {
  std::lock_guard lock(mu_);
  const auto it = live_.find(path);
  return it == live_.end() ? "" : it->second->data;
}

void MemFileSystem::SetContents(const std::string& path,
                                const std::string& data) {
  std::lock_guard lock(mu_);
  auto inode = std::make_shared<Inode>();
  inode->data = data;
  inode->synced = data.size();
  live_[path] = inode;
  durable_[path] = inode;
}

Result<std::unique_ptr<platform::WritableFile>> MemFileSystem::Open(
    const std::string& path, bool truncate) {
  std::lock_guard lock(mu_);
  auto& inode = live_[path];
  if (!inode) {
    inode = std::make_shared<Inode>();
  } else if (truncate) {
    // O_TRUNC changes the file itself: a new, empty, unsynced inode would
    // be wrong for hard links, but counterd never links.
    inode->data.clear();
    inode->synced = 0;
  }
  return std::unique_ptr<platform::WritableFile>(
      std::make_unique<MemWritableFile>(*this, inode));
}

Result<std::unique_ptr<platform::WritableFile>> MemFileSystem::NewWritableFile(
    const std::string& path) {
  return Open(path, true);
}

Result<std::unique_ptr<platform::WritableFile>>
MemFileSystem::NewAppendableFile(const std::string& path) {
  return Open(path, false);
}

Result<std::string> MemFileSystem::ReadFile(const std::string& path) {
  std::lock_guard lock(mu_);
  const auto it = live_.find(path);
  if (it == live_.end()) return NotFound("open", path);
  return it->second->data;
}

Result<bool> MemFileSystem::FileExists(const std::string& path) {
  std::lock_guard lock(mu_);
  return live_.count(path) > 0 || dirs_.count(path) > 0;
}

Result<std::unique_ptr<platform::ReleasedFile>> MemFileSystem::OpenToRelease(
    const std::string& path) {
  struct Held final : platform::ReleasedFile {
    Status FreeInSteps(std::uint64_t /*step_bytes*/) override {
      return Status::Ok();
    }
  };
  std::lock_guard lock(mu_);
  if (live_.count(path) == 0) {
    return std::unique_ptr<platform::ReleasedFile>();
  }
  return std::unique_ptr<platform::ReleasedFile>(std::make_unique<Held>());
}

Result<std::vector<std::string>> MemFileSystem::ListDir(
    const std::string& dir) {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [path, inode] : live_) {
    if (DirOf(path) == dir) names.push_back(path.substr(dir.size() + 1));
  }
  return names;
}

Status MemFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  const auto it = live_.find(from);
  if (it == live_.end()) return NotFound("rename", from);
  live_[to] = it->second;
  live_.erase(from);
  return Status::Ok();
}

Status MemFileSystem::RemoveFile(const std::string& path) {
  std::lock_guard lock(mu_);
  if (live_.erase(path) == 0) return NotFound("unlink", path);
  return Status::Ok();
}

Status MemFileSystem::TruncateFile(const std::string& path,
                                   std::uint64_t size) {
  std::lock_guard lock(mu_);
  const auto it = live_.find(path);
  if (it == live_.end()) return NotFound("open", path);
  it->second->data.resize(size);
  it->second->synced = it->second->data.size();
  return Status::Ok();
}

Status MemFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  for (auto it = durable_.begin(); it != durable_.end();) {
    it = DirOf(it->first) == dir ? durable_.erase(it) : std::next(it);
  }
  for (const auto& [path, inode] : live_) {
    if (DirOf(path) == dir) durable_[path] = inode;
  }
  return Status::Ok();
}

Status MemFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  dirs_.insert(dir);
  return Status::Ok();
}

Result<std::unique_ptr<platform::FileLock>> MemFileSystem::LockFile(
    const std::string& path) {
  std::lock_guard lock(mu_);
  if (!locks_.insert(path).second) {
    return Status::Unavailable(path +
                               " is locked: another counterd process "
                               "owns this data dir");
  }
  return std::unique_ptr<platform::FileLock>(
      std::make_unique<MemFileLock>(*this, path));
}

Result<std::uint64_t> MemFileSystem::FreeBytes(const std::string& /*dir*/) {
  std::lock_guard lock(mu_);
  ++free_bytes_calls_;
  if (!free_bytes_error_.ok()) return free_bytes_error_;
  return free_bytes_;
}

void MemFileSystem::SetFreeBytes(std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  free_bytes_ = bytes;
  free_bytes_error_ = Status::Ok();
}

void MemFileSystem::SetFreeBytesError(Status error) {
  std::lock_guard lock(mu_);
  free_bytes_error_ = std::move(error);
}

std::uint64_t MemFileSystem::free_bytes_calls() {
  std::lock_guard lock(mu_);
  return free_bytes_calls_;
}

void MemFileSystem::Unlock(const std::string& path) {
  std::lock_guard lock(mu_);
  locks_.erase(path);
}

}  // namespace counterd::testing
