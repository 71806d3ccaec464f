// TokenFile: the --auth-tokens-file as the application keeps it current:
// parsed at start-up, and parsed again when the file a path resolves to
// changes (Changed(), polled about once a second by Serve) or on SIGHUP.
// Kubernetes updates a mounted Secret by swapping the "..data" symlink to a
// new directory; the path is resolved afresh at every check, so that swap,
// an in-place rewrite and a rename over the file are all seen.
// Not thread-safe: the main thread owns it.
#ifndef COUNTERD_APP_TOKEN_FILE_H_
#define COUNTERD_APP_TOKEN_FILE_H_

#include <memory>
#include <optional>
#include <string>

#include "counterd/core/result.h"
#include "counterd/http/auth.h"
#include "counterd/platform/file_identity.h"
#include "counterd/platform/file_system.h"

namespace counterd::app {

class TokenFile {
 public:
  // Reads and parses |path|. kInvalidArgument with one line naming the file
  // (and the entry) when it is invalid or cannot be read; start-up turns it
  // into exit code 2. |fs| must outlive the TokenFile.
  static Result<TokenFile> Load(platform::FileSystem& fs, std::string path);

  const std::string& path() const { return path_; }
  const std::shared_ptr<const http::TokenSet>& tokens() const {
    return tokens_;
  }

  // True if the file the path resolves to now is not the one last read
  // (another device, inode, size or modification time, or it appeared or
  // went away).
  bool Changed() const;

  // Reads and parses the file again. Returns the new set (also kept as
  // tokens()), or why it is unusable; the previous set then stays. The
  // file's identity is remembered either way, so a bad file is reported
  // once, not at every poll, and its repair is seen as a change.
  Result<std::shared_ptr<const http::TokenSet>> Reload();

 private:
  TokenFile(platform::FileSystem& fs, std::string path)
      : fs_(&fs), path_(std::move(path)) {}

  platform::FileSystem* fs_;
  std::string path_;
  std::shared_ptr<const http::TokenSet> tokens_;
  // Of the file as last read; nullopt if stat failed then.
  std::optional<platform::FileIdentity> identity_;
};

}  // namespace counterd::app

#endif  // COUNTERD_APP_TOKEN_FILE_H_
