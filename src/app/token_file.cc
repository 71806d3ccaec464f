#include "counterd/app/token_file.h"

#include <utility>

namespace counterd::app {
namespace {

std::optional<platform::FileIdentity> Identify(const std::string& path) {
  Result<platform::FileIdentity> id = platform::StatFile(path);
  if (!id) return std::nullopt;
  return *id;
}

}  // namespace

Result<TokenFile> TokenFile::Load(platform::FileSystem& fs, std::string path) {
  TokenFile file(fs, std::move(path));
  Result<std::shared_ptr<const http::TokenSet>> tokens = file.Reload();
  if (!tokens) return tokens.error();
  return file;
}

bool TokenFile::Changed() const { return Identify(path_) != identity_; }

Result<std::shared_ptr<const http::TokenSet>> TokenFile::Reload() {
  // Identity first, then the contents: a change between the two is seen
  // at the next check, never missed.
  identity_ = Identify(path_);
  Result<std::string> text = fs_->ReadFile(path_);
  if (!text) {
    return Status::InvalidArgument("--auth-tokens-file: " +
                                   text.error().message());
  }
  Result<std::shared_ptr<const http::TokenSet>> tokens =
      http::ParseTokenFile(path_, *text);
  if (!tokens) return tokens.error();
  tokens_ = *tokens;
  return tokens;
}

}  // namespace counterd::app
