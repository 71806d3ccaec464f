#include "counterd/platform/fault_injection_file_system.h"

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  Status WriteBack() override { return base_->WriteBack(); }
  Status ZeroFillAhead(std::uint64_t bytes) override {
    return base_->ZeroFillAhead(bytes);
  }
  Status Close() override { return base_->Close(); }
  std::uint64_t Size() const override { return base_->Size(); }

 private:
  FaultInjectionFileSystem& fs_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

class FaultyReleasedFile final : public ReleasedFile {
 public:
  FaultyReleasedFile(FaultInjectionFileSystem& fs, std::string path,
                     std::unique_ptr<ReleasedFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  Status FreeInSteps(std::uint64_t step_bytes) override {
    COUNTERD_RETURN_IF_ERROR(fs_.Check(FsOp::kTruncate, path_));
    return base_->FreeInSteps(step_bytes);
  }

 private:
  FaultInjectionFileSystem& fs_;
  std::string path_;
  std::unique_ptr<ReleasedFile> base_;
};

// "op:errno[:skip][:path]" split at its first three colons (the path may
// itself contain ':').
std::vector<std::string_view> SplitRule(std::string_view item) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t colon = item.find(':');
    parts.push_back(item.substr(0, colon));
    if (colon == std::string_view::npos) break;
    item = item.substr(colon + 1);
    if (parts.size() == 3) {
      parts.push_back(item);
      break;
    }
  }
  return parts;
}

Result<FsOp> ParseOp(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, FsOp>, 8> kOps = {{
      {"open", FsOp::kOpen},
      {"write", FsOp::kWrite},
      {"sync", FsOp::kSync},
      {"rename", FsOp::kRename},
      {"remove", FsOp::kRemove},
      {"truncate", FsOp::kTruncate},
      {"syncdir", FsOp::kSyncDir},
      {"read", FsOp::kRead},
  }};
  for (const auto& [op_name, op] : kOps) {
    if (name == op_name) return op;
  }
  return Status::InvalidArgument("unknown fault op " + std::string(name));
}

Result<int> ParseErrno(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, int>, 4> kErrs = {
      {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EDQUOT", EDQUOT}}};
  for (const auto& [err_name, err] : kErrs) {
    if (name == err_name) return err;
  }
  return Status::InvalidArgument("unknown fault errno " + std::string(name));
}

// An empty skip count is 0.
Result<std::uint64_t> ParseSkip(std::string_view text) {
  std::uint64_t skip = 0;
  if (text.empty()) return skip;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, skip);
  if (ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("bad fault skip count " + std::string(text));
  }
  return skip;
}

Result<FaultRule> ParseFaultRule(std::string_view item) {
  const std::vector<std::string_view> parts = SplitRule(item);
  if (parts.size() < 2) {
    return Status::InvalidArgument("fault rule needs op:errno");
  }
  FaultRule rule;
  Result<FsOp> op = ParseOp(parts[0]);
  if (!op) return op.error();
  rule.op = *op;
  Result<int> err = ParseErrno(parts[1]);
  if (!err) return err.error();
  rule.err = *err;
  Result<std::uint64_t> skip = ParseSkip(parts.size() > 2 ? parts[2] : "");
  if (!skip) return skip.error();
  rule.skip = *skip;
  if (parts.size() > 3) rule.path_contains = std::string(parts[3]);
  return rule;
}

}  // namespace

Result<std::vector<FaultRule>> ParseFaultRules(std::string_view spec) {
  std::vector<FaultRule> rules;
  while (!spec.empty()) {
    const std::size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{}
                                           : spec.substr(comma + 1);
    Result<FaultRule> rule = ParseFaultRule(item);
    if (!rule) return rule.error();
    rules.push_back(std::move(*rule));
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

Result<std::unique_ptr<ReleasedFile>> FaultInjectionFileSystem::OpenToRelease(
    const std::string& path) {
  auto base = base_.OpenToRelease(path);
  if (!base || *base == nullptr) return base;
  return std::unique_ptr<ReleasedFile>(
      std::make_unique<FaultyReleasedFile>(*this, path, std::move(*base)));
}

}  // namespace counterd::platform
