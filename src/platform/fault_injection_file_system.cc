#include "counterd/platform/fault_injection_file_system.h"

#include <cerrno>
#include <charconv>
#include <string>
#include <utility>

#include "counterd/platform/posix_file_system.h"

namespace counterd::platform {
namespace {

std::string_view OpName(FsOp op) {
  switch (op) {
    case FsOp::kOpen:
      return "open";
    case FsOp::kWrite:
      return "write";
    case FsOp::kSync:
      return "fdatasync";
    case FsOp::kRename:
      return "rename";
    case FsOp::kRemove:
      return "unlink";
    case FsOp::kTruncate:
      return "ftruncate";
    case FsOp::kSyncDir:
      return "fsync";
    case FsOp::kRead:
      return "read";
  }
  return "?";
}

class FaultyWritableFile final : public WritableFile {
 public:
  FaultyWritableFile(FaultInjectionFileSystem& fs, std::string path,
                     std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    COUNTERD_RETURN_IF_ERROR(fs_.Check(FsOp::kWrite, path_));
    return base_->Append(data);
  }
  Status Sync() override {
    COUNTERD_RETURN_IF_ERROR(fs_.Check(FsOp::kSync, path_));
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  std::uint64_t Size() const override { return base_->Size(); }

 private:
  FaultInjectionFileSystem& fs_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

Result<std::vector<FaultRule>> ParseFaultRules(std::string_view spec) {
  std::vector<FaultRule> rules;
  while (!spec.empty()) {
    const std::size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{}
                                           : spec.substr(comma + 1);
    std::vector<std::string_view> parts;
    while (true) {
      const std::size_t colon = item.find(':');
      parts.push_back(item.substr(0, colon));
      if (colon == std::string_view::npos) break;
      item = item.substr(colon + 1);
      if (parts.size() == 3) {  // the path part may itself contain ':'
        parts.push_back(item);
        break;
      }
    }
    if (parts.size() < 2) {
      return Status::InvalidArgument("fault rule needs op:errno");
    }
    FaultRule rule;
    static constexpr std::pair<std::string_view, FsOp> kOps[] = {
        {"open", FsOp::kOpen},       {"write", FsOp::kWrite},
        {"sync", FsOp::kSync},       {"rename", FsOp::kRename},
        {"remove", FsOp::kRemove},   {"truncate", FsOp::kTruncate},
        {"syncdir", FsOp::kSyncDir}, {"read", FsOp::kRead}};
    bool found = false;
    for (const auto& [name, op] : kOps) {
      if (parts[0] == name) {
        rule.op = op;
        found = true;
      }
    }
    if (!found) {
      return Status::InvalidArgument("unknown fault op " +
                                     std::string(parts[0]));
    }
    static constexpr std::pair<std::string_view, int> kErrs[] = {
        {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EDQUOT", EDQUOT}};
    found = false;
    for (const auto& [name, err] : kErrs) {
      if (parts[1] == name) {
        rule.err = err;
        found = true;
      }
    }
    if (!found) {
      return Status::InvalidArgument("unknown fault errno " +
                                     std::string(parts[1]));
    }
    if (parts.size() > 2 && !parts[2].empty()) {
      const auto [ptr, ec] = std::from_chars(
          parts[2].data(), parts[2].data() + parts[2].size(), rule.skip);
      if (ec != std::errc() || ptr != parts[2].data() + parts[2].size()) {
        return Status::InvalidArgument("bad fault skip count " +
                                       std::string(parts[2]));
      }
    }
    if (parts.size() > 3) rule.path_contains = std::string(parts[3]);
    rules.push_back(std::move(rule));
  }
  return rules;
}

void FaultInjectionFileSystem::AddRule(FaultRule rule) {
  std::lock_guard lock(mu_);
  rules_.push_back(ActiveRule{std::move(rule)});
}

void FaultInjectionFileSystem::ClearRules() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

Status FaultInjectionFileSystem::Check(FsOp op, std::string_view path) {
  if (op != FsOp::kRead) mutating_calls_.fetch_add(1);
  std::lock_guard lock(mu_);
  for (ActiveRule& active : rules_) {
    const FaultRule& rule = active.rule;
    if (rule.op != op) continue;
    if (!rule.path_contains.empty() &&
        path.find(rule.path_contains) == std::string_view::npos) {
      continue;
    }
    if (active.seen++ < rule.skip) continue;
    if (active.fired && !rule.sticky) continue;
    active.fired = true;
    return ErrnoStatus(std::string(OpName(op)) + " (injected)", path, rule.err);
  }
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewWritableFile(
    const std::string& path) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kOpen, path));
  auto file = base_.NewWritableFile(path);
  if (!file) return file.error();
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultyWritableFile>(*this, path, std::move(*file)));
}

Result<std::unique_ptr<WritableFile>>
FaultInjectionFileSystem::NewAppendableFile(const std::string& path) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kOpen, path));
  auto file = base_.NewAppendableFile(path);
  if (!file) return file.error();
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultyWritableFile>(*this, path, std::move(*file)));
}

Result<std::string> FaultInjectionFileSystem::ReadFile(
    const std::string& path) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kRead, path));
  return base_.ReadFile(path);
}

Result<bool> FaultInjectionFileSystem::FileExists(const std::string& path) {
  return base_.FileExists(path);
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(
    const std::string& dir) {
  return base_.ListDir(dir);
}

Status FaultInjectionFileSystem::Rename(const std::string& from,
                                        const std::string& to) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kRename, to));
  return base_.Rename(from, to);
}

Status FaultInjectionFileSystem::RemoveFile(const std::string& path) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kRemove, path));
  return base_.RemoveFile(path);
}

Status FaultInjectionFileSystem::TruncateFile(const std::string& path,
                                              std::uint64_t size) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kTruncate, path));
  return base_.TruncateFile(path, size);
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  COUNTERD_RETURN_IF_ERROR(Check(FsOp::kSyncDir, dir));
  return base_.SyncDir(dir);
}

Status FaultInjectionFileSystem::CreateDir(const std::string& dir) {
  return base_.CreateDir(dir);
}

Result<std::unique_ptr<FileLock>> FaultInjectionFileSystem::LockFile(
    const std::string& path) {
  return base_.LockFile(path);
}

Result<std::uint64_t> FaultInjectionFileSystem::FreeBytes(
    const std::string& dir) {
  return base_.FreeBytes(dir);
}

}  // namespace counterd::platform
