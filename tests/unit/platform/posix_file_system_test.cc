// PosixFileSystem against the real kernel, in a temp dir: each call, and
// each error path it maps through ErrnoStatus to the exact Status
// ("<op> <path>: <strerror>"). Files are set up and checked with
// std::filesystem and fstreams, never with the code under test.
//
// Errors that need another user or a mount run in a forked child (see
// RunInChild): permission errors as uid 65534 (root ignores file modes, and
// CI runs as root); ENOSPC and EROFS on a tmpfs mounted in a private mount
// namespace. Where the sandbox refuses the mount the tmpfs tests skip and
// say so; ENOSPC on write is still covered by /dev/full.
#include "counterd/platform/posix_file_system.h"

#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace counterd::platform {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<std::size_t>(in.gcount()));
  }
  return data;
}

void Spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// What a forked child reported: its exit code and what it wrote.
struct ChildResult {
  int exit_code = -1;
  std::string output;
};

// The child exits 77 when it cannot set up what the test needs.
constexpr int kChildCannot = 77;

// Runs |body| in a forked child (its own credentials, mount namespace and
// working directory cannot leak into other tests). |body| appends what it
// observed to its string and returns the exit code.
ChildResult RunInChild(const std::function<int(std::string&)>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    const int code = body(out);
    const char* p = out.data();
    std::size_t left = out.size();
    while (left > 0) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildResult result;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

// In a child: stops being root (65534 is "nobody"), so that file modes
// apply. A non-root user is left as it is: modes apply already.
bool DropRoot(std::string& out) {
  if (::geteuid() != 0) return true;
  if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 ||
      ::setuid(65534) != 0) {
    out += "cannot drop root: errno " + std::to_string(errno) + "\n";
    return false;
  }
  return true;
}

bool WriteProcFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// In a child: a private mount namespace (inside a user namespace of its
// own where a plain one is not allowed) with a tmpfs at |dir|.
bool MountTmpfs(const std::string& dir, const std::string& options,
                unsigned long flags, std::string& out) {
  if (::unshare(CLONE_NEWNS) != 0) {
    const int plain_errno = errno;
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
      out += "unshare(CLONE_NEWNS): errno " + std::to_string(plain_errno) +
             ", with CLONE_NEWUSER: errno " + std::to_string(errno) + "\n";
      return false;
    }
    if (!WriteProcFile("/proc/self/setgroups", "deny") ||
        !WriteProcFile("/proc/self/uid_map",
                       "0 " + std::to_string(uid) + " 1") ||
        !WriteProcFile("/proc/self/gid_map",
                       "0 " + std::to_string(gid) + " 1")) {
      out += "user namespace id maps refused\n";
      return false;
    }
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", dir.c_str(), "tmpfs", flags, options.c_str()) != 0) {
    out += "mount tmpfs: errno " + std::to_string(errno) + "\n";
    return false;
  }
  return true;
}

std::string Line(const Status& s) { return s.ToString() + "\n"; }

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "counterd-pfs-XXXXXX");
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    // Traversable by the unprivileged child of the permission tests.
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec |
                              fs::perms::others_exec);
  }
  void TearDown() override {
    std::error_code ec;
    for (const auto& entry : fs::recursive_directory_iterator(dir_, ec)) {
      fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add,
                      ec);
    }
    fs::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<FileSystem> fs_ = NewPosixFileSystem();
  std::string dir_;
};

// ---------------------------------------------------------------- ErrnoStatus

TEST(ErrnoStatusTest, SaysOpPathAndTheSystemMessage) {
  EXPECT_EQ(
      ErrnoStatus("open", "/d/f", ENOENT),
      Status(StatusCode::kNotFound, "open /d/f: No such file or directory"));
  EXPECT_EQ(ErrnoStatus("fdatasync", "/d/journal", EIO),
            Status(StatusCode::kUnavailable,
                   "fdatasync /d/journal: Input/output error"));
}

TEST(ErrnoStatusTest, OutOfSpaceAndQuotaAreResourceExhausted) {
  EXPECT_EQ(ErrnoStatus("write", "f", ENOSPC),
            Status(StatusCode::kResourceExhausted,
                   "write f: No space left on device"));
  EXPECT_EQ(
      ErrnoStatus("write", "f", EDQUOT),
      Status(StatusCode::kResourceExhausted, "write f: Disk quota exceeded"));
}

TEST(ErrnoStatusTest, EveryOtherErrnoIsUnavailable) {
  for (const int err : {EIO, EACCES, EPERM, EROFS, EWOULDBLOCK, EISDIR, ENOTDIR,
                        EINVAL, EBADF, EMFILE}) {
    const Status s = ErrnoStatus("op", "p", err);
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_EQ(s.message(), "op p: " + std::system_category().message(err));
  }
}

// ----------------------------------------------------------- NewWritableFile

TEST_F(PosixFileSystemTest, NewWritableFileCreatesAnEmptyFile) {
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file) << file.error().ToString();
  EXPECT_EQ((*file)->Size(), 0u);
  EXPECT_TRUE(fs::is_regular_file(Path("f")));
  EXPECT_EQ(fs::file_size(Path("f")), 0u);
}

TEST_F(PosixFileSystemTest, NewWritableFileTruncatesAnExistingFile) {
  Spit(Path("f"), "old contents");
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file);
  EXPECT_EQ((*file)->Size(), 0u);
  EXPECT_EQ(Slurp(Path("f")), "");
}

TEST_F(PosixFileSystemTest, AppendWritesEveryByteAndCountsThem) {
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file);
  std::string big(3 << 20, '\0');  // larger than one write(2) may take
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>(i * 7);
  }
  ASSERT_TRUE((*file)->Append("head").ok());
  ASSERT_TRUE((*file)->Append(big).ok());
  ASSERT_TRUE((*file)->Append("").ok());
  EXPECT_EQ((*file)->Size(), 4 + big.size());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Slurp(Path("f")), "head" + big);
}

TEST_F(PosixFileSystemTest, WriteBackAsItGoesKeepsEveryByte) {
  Spit(Path("f"), "kept");
  auto file = fs_->NewAppendableFile(Path("f"));
  ASSERT_TRUE(file);
  std::string expected = "kept";
  for (int piece = 0; piece < 4; ++piece) {
    const std::string data(
        (std::size_t{1} << 20) + static_cast<std::size_t>(piece),
        static_cast<char>('a' + piece));
    ASSERT_TRUE((*file)->Append(data).ok());
    expected += data;
    const Status s = (*file)->WriteBack();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE((*file)->WriteBack().ok());  // nothing new: nothing to do
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Slurp(Path("f")), expected);
}

TEST_F(PosixFileSystemTest, ZeroFillAheadWritesZerosPastTheEndWithoutMovingIt) {
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file);
  ASSERT_TRUE((*file)->Append("head").ok());
  ASSERT_TRUE((*file)->ZeroFillAhead(10).ok());
  EXPECT_EQ((*file)->Size(), 4u);
  EXPECT_EQ(Slurp(Path("f")), "head" + std::string(10, '\0'));
  // The next append overwrites the zeros from the end it kept.
  ASSERT_TRUE((*file)->Append("abc").ok());
  EXPECT_EQ((*file)->Size(), 7u);
  EXPECT_EQ(Slurp(Path("f")), "headabc" + std::string(7, '\0'));
  // Only what lies past the zeros already written is written again.
  ASSERT_TRUE((*file)->ZeroFillAhead(10).ok());
  EXPECT_EQ(Slurp(Path("f")), "headabc" + std::string(10, '\0'));
  ASSERT_TRUE((*file)->Append(std::string(12, 'z')).ok());
  EXPECT_EQ((*file)->Size(), 19u);
  EXPECT_EQ(Slurp(Path("f")), "headabc" + std::string(12, 'z'));
  ASSERT_TRUE((*file)->Close().ok());
}

TEST_F(PosixFileSystemTest, AnAppendableFileAppendsAtTheEndItFound) {
  // A journal reopened after its zeros were cut, then written ahead again:
  // appends land after the contents, never after the zeros.
  Spit(Path("f"), "kept");
  auto file = fs_->NewAppendableFile(Path("f"));
  ASSERT_TRUE(file);
  ASSERT_TRUE((*file)->ZeroFillAhead(6).ok());
  ASSERT_TRUE((*file)->Append("+1").ok());
  EXPECT_EQ((*file)->Size(), 6u);
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Slurp(Path("f")), "kept+1" + std::string(4, '\0'));
}

TEST_F(PosixFileSystemTest, ZeroFillAheadOnAFullDeviceIsResourceExhausted) {
  auto file = fs_->NewAppendableFile("/dev/full");
  ASSERT_TRUE(file) << file.error().ToString();
  EXPECT_EQ((*file)->ZeroFillAhead(1),
            Status(StatusCode::kResourceExhausted,
                   "write /dev/full: No space left on device"));
  EXPECT_EQ((*file)->Size(), 0u);
}

TEST_F(PosixFileSystemTest, WriteBackAfterCloseIsUnavailable) {
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file);
  ASSERT_TRUE((*file)->Append("x").ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ((*file)->WriteBack(),
            Status(StatusCode::kUnavailable,
                   "sync_file_range " + Path("f") + ": Bad file descriptor"));
}

TEST_F(PosixFileSystemTest, CloseTwiceIsOk) {
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file);
  EXPECT_TRUE((*file)->Close().ok());
  EXPECT_TRUE((*file)->Close().ok());
}

TEST_F(PosixFileSystemTest, AppendAndSyncAfterCloseAreUnavailable) {
  auto file = fs_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file);
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ((*file)->Append("x"),
            Status(StatusCode::kUnavailable,
                   "write " + Path("f") + ": Bad file descriptor"));
  EXPECT_EQ((*file)->Sync(),
            Status(StatusCode::kUnavailable,
                   "fdatasync " + Path("f") + ": Bad file descriptor"));
}

TEST_F(PosixFileSystemTest, NewWritableFileInAMissingDirIsNotFound) {
  auto file = fs_->NewWritableFile(Path("missing/f"));
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(),
            Status(StatusCode::kNotFound, "open " + Path("missing/f") +
                                              ": No such file or directory"));
}

TEST_F(PosixFileSystemTest, NewWritableFileOnADirectoryIsUnavailable) {
  auto file = fs_->NewWritableFile(dir_);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(), Status(StatusCode::kUnavailable,
                                 "open " + dir_ + ": Is a directory"));
}

TEST_F(PosixFileSystemTest, WriteToAFullDeviceIsResourceExhausted) {
  // /dev/full answers every write with ENOSPC: the real system call path.
  auto file = fs_->NewAppendableFile("/dev/full");
  ASSERT_TRUE(file) << file.error().ToString();
  EXPECT_EQ((*file)->Append("x"),
            Status(StatusCode::kResourceExhausted,
                   "write /dev/full: No space left on device"));
  EXPECT_EQ((*file)->Size(), 0u);
}

TEST_F(PosixFileSystemTest, SyncOfAFileThatCannotBeSyncedIsUnavailable) {
  auto file = fs_->NewAppendableFile("/dev/null");
  ASSERT_TRUE(file);
  ASSERT_TRUE((*file)->Append("x").ok());
  EXPECT_EQ((*file)->Sync(), Status(StatusCode::kUnavailable,
                                    "fdatasync /dev/null: Invalid argument"));
}

// --------------------------------------------------------- NewAppendableFile

TEST_F(PosixFileSystemTest, NewAppendableFileKeepsTheContentsAndAppends) {
  Spit(Path("f"), "hello");
  auto file = fs_->NewAppendableFile(Path("f"));
  ASSERT_TRUE(file);
  EXPECT_EQ((*file)->Size(), 5u);
  ASSERT_TRUE((*file)->Append(" world").ok());
  EXPECT_EQ((*file)->Size(), 11u);
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Slurp(Path("f")), "hello world");
}

TEST_F(PosixFileSystemTest, NewAppendableFileCreatesAMissingFile) {
  auto file = fs_->NewAppendableFile(Path("f"));
  ASSERT_TRUE(file);
  EXPECT_EQ((*file)->Size(), 0u);
  EXPECT_TRUE(fs::is_regular_file(Path("f")));
}

TEST_F(PosixFileSystemTest, NewAppendableFileInAMissingDirIsNotFound) {
  auto file = fs_->NewAppendableFile(Path("missing/f"));
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(),
            Status(StatusCode::kNotFound, "open " + Path("missing/f") +
                                              ": No such file or directory"));
}

// ------------------------------------------------------------------ ReadFile

TEST_F(PosixFileSystemTest, ReadFileReturnsEveryByte) {
  std::string data(10000, 'x');
  data[17] = '\0';
  data += "tail";
  Spit(Path("f"), data);
  auto got = fs_->ReadFile(Path("f"));
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, data);
}

TEST_F(PosixFileSystemTest, ReadFileOfAnEmptyFileIsEmpty) {
  Spit(Path("f"), "");
  auto got = fs_->ReadFile(Path("f"));
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "");
}

TEST_F(PosixFileSystemTest, ReadFileReadsPastTheSizeStatReports) {
  // /proc files report size 0: the loop must read until EOF, not to st_size.
  ASSERT_EQ(fs::file_size("/proc/self/cmdline"), 0u);
  auto got = fs_->ReadFile("/proc/self/cmdline");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->empty());
  EXPECT_EQ(*got, Slurp("/proc/self/cmdline"));
}

TEST_F(PosixFileSystemTest, ReadFileOfAMissingFileIsNotFound) {
  auto got = fs_->ReadFile(Path("nope"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(),
            Status(StatusCode::kNotFound,
                   "open " + Path("nope") + ": No such file or directory"));
}

TEST_F(PosixFileSystemTest, ReadFileOfADirectoryIsUnavailable) {
  auto got = fs_->ReadFile(dir_);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), Status(StatusCode::kUnavailable,
                                "read " + dir_ + ": Is a directory"));
}

// ---------------------------------------------------------------- FileExists

TEST_F(PosixFileSystemTest, FileExistsForFilesAndDirectories) {
  Spit(Path("f"), "x");
  EXPECT_EQ(fs_->FileExists(Path("f")).value(), true);
  EXPECT_EQ(fs_->FileExists(dir_).value(), true);
  EXPECT_EQ(fs_->FileExists(Path("nope")).value(), false);
}

TEST_F(PosixFileSystemTest, FileExistsThroughAFileIsUnavailable) {
  Spit(Path("f"), "x");
  auto got = fs_->FileExists(Path("f/x"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), Status(StatusCode::kUnavailable,
                                "stat " + Path("f/x") + ": Not a directory"));
}

// ------------------------------------------------------------------- ListDir

TEST_F(PosixFileSystemTest, ListDirNamesEveryEntryButDotAndDotDot) {
  Spit(Path("a"), "");
  Spit(Path("b.log"), "");
  fs::create_directory(Path("sub"));
  auto got = fs_->ListDir(dir_);
  ASSERT_TRUE(got);
  std::vector<std::string> names = *got;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b.log", "sub"}));
}

TEST_F(PosixFileSystemTest, ListDirOfAnEmptyDirIsEmpty) {
  auto got = fs_->ListDir(dir_);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->empty());
}

TEST_F(PosixFileSystemTest, ListDirOfAMissingDirIsNotFound) {
  auto got = fs_->ListDir(Path("nope"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(),
            Status(StatusCode::kNotFound,
                   "opendir " + Path("nope") + ": No such file or directory"));
}

TEST_F(PosixFileSystemTest, ListDirOfAFileIsUnavailable) {
  Spit(Path("f"), "");
  auto got = fs_->ListDir(Path("f"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), Status(StatusCode::kUnavailable,
                                "opendir " + Path("f") + ": Not a directory"));
}

// -------------------------------------------------------------------- Rename

TEST_F(PosixFileSystemTest, RenameReplacesTheTarget) {
  Spit(Path("new.tmp"), "new");
  Spit(Path("state"), "old");
  ASSERT_TRUE(fs_->Rename(Path("new.tmp"), Path("state")).ok());
  EXPECT_EQ(Slurp(Path("state")), "new");
  EXPECT_FALSE(fs::exists(Path("new.tmp")));
}

TEST_F(PosixFileSystemTest, RenameOfAMissingFileIsNotFound) {
  EXPECT_EQ(
      fs_->Rename(Path("a"), Path("b")),
      Status(StatusCode::kNotFound, "rename " + Path("a") + " -> " + Path("b") +
                                        ": No such file or directory"));
}

TEST_F(PosixFileSystemTest, RenameOntoADirectoryIsUnavailable) {
  Spit(Path("a"), "");
  fs::create_directory(Path("d"));
  EXPECT_EQ(
      fs_->Rename(Path("a"), Path("d")),
      Status(StatusCode::kUnavailable,
             "rename " + Path("a") + " -> " + Path("d") + ": Is a directory"));
}

// ---------------------------------------------------------------- RemoveFile

TEST_F(PosixFileSystemTest, RemoveFileRemovesIt) {
  Spit(Path("f"), "x");
  ASSERT_TRUE(fs_->RemoveFile(Path("f")).ok());
  EXPECT_FALSE(fs::exists(Path("f")));
}

TEST_F(PosixFileSystemTest, RemoveFileOfAMissingFileIsNotFound) {
  EXPECT_EQ(fs_->RemoveFile(Path("f")),
            Status(StatusCode::kNotFound,
                   "unlink " + Path("f") + ": No such file or directory"));
}

TEST_F(PosixFileSystemTest, RemoveFileOfADirectoryIsUnavailable) {
  fs::create_directory(Path("d"));
  EXPECT_EQ(fs_->RemoveFile(Path("d")),
            Status(StatusCode::kUnavailable,
                   "unlink " + Path("d") + ": Is a directory"));
  EXPECT_TRUE(fs::is_directory(Path("d")));
}

// ------------------------------------------------------------- OpenToRelease

std::size_t OpenDescriptors() {
  return static_cast<std::size_t>(std::distance(
      fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
}

TEST_F(PosixFileSystemTest, OpenToReleaseOfAMissingFileIsNothing) {
  auto held = fs_->OpenToRelease(Path("nope"));
  ASSERT_TRUE(held) << held.error().ToString();
  EXPECT_EQ(*held, nullptr);
}

TEST_F(PosixFileSystemTest, OpenToReleaseOfADirectoryIsUnavailable) {
  fs::create_directory(Path("d"));
  auto held = fs_->OpenToRelease(Path("d"));
  ASSERT_FALSE(held);
  EXPECT_EQ(held.error(), Status(StatusCode::kUnavailable,
                                 "open " + Path("d") + ": Is a directory"));
}

// A file this process may not write is still replaced (a rename needs only
// the directory): there is nothing to hold, and no error.
TEST_F(PosixFileSystemTest, OpenToReleaseOfAFileItMayNotWriteIsNothing) {
  Spit(Path("readonly"), "x");
  fs::permissions(Path("readonly"), fs::perms::owner_read |
                                        fs::perms::group_read |
                                        fs::perms::others_read);
  const std::string d = dir_;
  const ChildResult child = RunInChild([&](std::string& out) {
    if (!DropRoot(out)) return kChildCannot;
    auto held = NewPosixFileSystem()->OpenToRelease(d + "/readonly");
    out += !held ? Line(held.status()) : *held ? "held\n" : "nothing\n";
    return 0;
  });
  if (child.exit_code == kChildCannot) {
    GTEST_SKIP() << "cannot run as another user here: " << child.output;
  }
  ASSERT_EQ(child.exit_code, 0) << child.output;
  EXPECT_EQ(child.output, "nothing\n");
}

// The compaction's sequence: held open, replaced by a rename (made
// durable), then freed in steps. The name serves the new file throughout,
// and freeing closes the held descriptor.
TEST_F(PosixFileSystemTest, AFileReplacedWhileHeldIsFreedInSteps) {
  const std::size_t before = OpenDescriptors();
  Spit(Path("state"), std::string((20 << 20) + 5, 'o'));
  Spit(Path("state.tmp"), "new");
  auto held = fs_->OpenToRelease(Path("state"));
  ASSERT_TRUE(held);
  ASSERT_NE(*held, nullptr);
  EXPECT_EQ(OpenDescriptors(), before + 1);
  ASSERT_TRUE(fs_->Rename(Path("state.tmp"), Path("state")).ok());
  ASSERT_TRUE(fs_->SyncDir(dir_).ok());
  const Status s = (*held)->FreeInSteps(std::uint64_t{8} << 20);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(OpenDescriptors(), before);
  EXPECT_EQ(Slurp(Path("state")), "new");
}

// -------------------------------------------------------------- TruncateFile

TEST_F(PosixFileSystemTest, TruncateFileCutsToTheSize) {
  Spit(Path("f"), "hello world");
  ASSERT_TRUE(fs_->TruncateFile(Path("f"), 5).ok());
  EXPECT_EQ(Slurp(Path("f")), "hello");
  ASSERT_TRUE(fs_->TruncateFile(Path("f"), 0).ok());
  EXPECT_EQ(Slurp(Path("f")), "");
}

TEST_F(PosixFileSystemTest, TruncateFileOfAMissingFileIsNotFound) {
  EXPECT_EQ(fs_->TruncateFile(Path("f"), 0),
            Status(StatusCode::kNotFound,
                   "open " + Path("f") + ": No such file or directory"));
  EXPECT_FALSE(fs::exists(Path("f")));
}

TEST_F(PosixFileSystemTest, TruncateFileOfADeviceIsUnavailable) {
  EXPECT_EQ(fs_->TruncateFile("/dev/null", 0),
            Status(StatusCode::kUnavailable,
                   "ftruncate /dev/null: Invalid argument"));
}

// ------------------------------------------------------------------- SyncDir

TEST_F(PosixFileSystemTest, SyncDirOfADirectoryIsOk) {
  EXPECT_TRUE(fs_->SyncDir(dir_).ok());
}

TEST_F(PosixFileSystemTest, SyncDirOfAMissingDirIsNotFound) {
  EXPECT_EQ(fs_->SyncDir(Path("nope")),
            Status(StatusCode::kNotFound,
                   "open " + Path("nope") + ": No such file or directory"));
}

TEST_F(PosixFileSystemTest, SyncDirOfAFileIsUnavailable) {
  Spit(Path("f"), "");
  EXPECT_EQ(fs_->SyncDir(Path("f")),
            Status(StatusCode::kUnavailable,
                   "open " + Path("f") + ": Not a directory"));
}

// ----------------------------------------------------------------- CreateDir

TEST_F(PosixFileSystemTest, CreateDirMakesEveryMissingLevel) {
  ASSERT_TRUE(fs_->CreateDir(Path("a/b/c")).ok());
  EXPECT_TRUE(fs::is_directory(Path("a/b/c")));
}

TEST_F(PosixFileSystemTest, CreateDirOfAnExistingDirIsOk) {
  fs::create_directories(Path("a/b"));
  EXPECT_TRUE(fs_->CreateDir(Path("a/b")).ok());
  EXPECT_TRUE(fs_->CreateDir(Path("a/b/")).ok());
}

TEST_F(PosixFileSystemTest, CreateDirTakesARelativePath) {
  const std::string dir = dir_;
  const ChildResult child = RunInChild([&](std::string& out) {
    if (::chdir(dir.c_str()) != 0) return 1;
    out += Line(NewPosixFileSystem()->CreateDir("x/y"));
    return 0;
  });
  ASSERT_EQ(child.exit_code, 0) << child.output;
  EXPECT_EQ(child.output, "OK\n");
  EXPECT_TRUE(fs::is_directory(Path("x/y")));
}

TEST_F(PosixFileSystemTest, CreateDirBelowAFileIsUnavailable) {
  Spit(Path("f"), "");
  EXPECT_EQ(fs_->CreateDir(Path("f/sub")),
            Status(StatusCode::kUnavailable,
                   "mkdir " + Path("f/sub") + ": Not a directory"));
}

// ------------------------------------------------------------------ LockFile

TEST_F(PosixFileSystemTest, LockFileCreatesTheFileAndHoldsTheLock) {
  auto lock = fs_->LockFile(Path("LOCK"));
  ASSERT_TRUE(lock) << lock.error().ToString();
  EXPECT_TRUE(fs::is_regular_file(Path("LOCK")));
  auto second = fs_->LockFile(Path("LOCK"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(),
            Status(StatusCode::kUnavailable,
                   Path("LOCK") +
                       " is locked: another counterd process owns this data "
                       "dir"));
}

TEST_F(PosixFileSystemTest, LockFileIsFreeAgainOnceTheLockIsGone) {
  auto lock = fs_->LockFile(Path("LOCK"));
  ASSERT_TRUE(lock);
  lock = Status::Unavailable("released");  // destroys the FileLock
  auto again = fs_->LockFile(Path("LOCK"));
  EXPECT_TRUE(again) << again.error().ToString();
}

TEST_F(PosixFileSystemTest, LockFileInAMissingDirIsNotFound) {
  auto lock = fs_->LockFile(Path("missing/LOCK"));
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error(),
            Status(StatusCode::kNotFound, "open " + Path("missing/LOCK") +
                                              ": No such file or directory"));
}

// ------------------------------------------- permissions (as an unprivileged
// user)

TEST_F(PosixFileSystemTest, PermissionDeniedIsUnavailable) {
  Spit(Path("secret"), "x");
  fs::permissions(Path("secret"), fs::perms::none);
  Spit(Path("readonly"), "x");
  fs::permissions(Path("readonly"), fs::perms::owner_read |
                                        fs::perms::group_read |
                                        fs::perms::others_read);
  fs::create_directory(Path("closed"));
  Spit(Path("closed/f"), "x");
  fs::permissions(Path("closed"),
                  fs::perms::owner_read | fs::perms::owner_exec |
                      fs::perms::others_read | fs::perms::others_exec);
  fs::create_directory(Path("private"));
  fs::permissions(Path("private"), fs::perms::none);

  const std::string d = dir_;
  const ChildResult child = RunInChild([&](std::string& out) {
    if (!DropRoot(out)) return kChildCannot;
    auto pfs = NewPosixFileSystem();
    out += Line(pfs->ReadFile(d + "/secret").status());
    out += Line(pfs->NewWritableFile(d + "/readonly").status());
    out += Line(pfs->NewAppendableFile(d + "/readonly").status());
    out += Line(pfs->TruncateFile(d + "/readonly", 0));
    out += Line(pfs->LockFile(d + "/readonly").status());
    out += Line(pfs->CreateDir(d + "/closed/sub"));
    out += Line(pfs->Rename(d + "/closed/f", d + "/closed/g"));
    out += Line(pfs->RemoveFile(d + "/closed/f"));
    out += Line(pfs->FileExists(d + "/private/x").status());
    out += Line(pfs->ListDir(d + "/private").status());
    return 0;
  });
  if (child.exit_code == kChildCannot) {
    GTEST_SKIP() << "cannot run as another user here: " << child.output;
  }
  ASSERT_EQ(child.exit_code, 0) << child.output;
  const std::string denied = ": Permission denied\n";
  EXPECT_EQ(child.output,
            "UNAVAILABLE: open " + d + "/secret" + denied +
                "UNAVAILABLE: open " + d + "/readonly" + denied +
                "UNAVAILABLE: open " + d + "/readonly" + denied +
                "UNAVAILABLE: open " + d + "/readonly" + denied +
                "UNAVAILABLE: open " + d + "/readonly" + denied +
                "UNAVAILABLE: mkdir " + d + "/closed/sub" + denied +
                "UNAVAILABLE: rename " + d + "/closed/f -> " + d + "/closed/g" +
                denied + "UNAVAILABLE: unlink " + d + "/closed/f" + denied +
                "UNAVAILABLE: stat " + d + "/private/x" + denied +
                "UNAVAILABLE: opendir " + d + "/private" + denied);
}

// ------------------------------------------------ a real full or read-only
// disk

TEST_F(PosixFileSystemTest, FullTmpfsIsResourceExhausted) {
  const std::string d = dir_;
  const ChildResult child = RunInChild([&](std::string& out) {
    if (!MountTmpfs(d, "size=64k,nr_inodes=8", 0, out)) return kChildCannot;
    auto pfs = NewPosixFileSystem();
    // Blocks: write until the 64 KiB are gone.
    auto file = pfs->NewWritableFile(d + "/journal");
    if (!file) return 1;
    const std::string chunk(4096, 'j');
    Status s;
    for (int i = 0; i < 100 && s.ok(); ++i) s = (*file)->Append(chunk);
    out += Line(s);
    // Inodes: create files until none is left (8, the root dir and the
    // journal included).
    Status open;
    for (int i = 0; i < 20 && open.ok(); ++i) {
      open = pfs->NewWritableFile(d + "/f" + std::to_string(i)).status();
    }
    out += Line(open);
    out += Line(pfs->CreateDir(d + "/sub"));
    return 0;
  });
  if (child.exit_code == kChildCannot) {
    GTEST_SKIP() << "no tmpfs here (" << child.output
                 << "); ENOSPC on write is covered by /dev/full";
  }
  ASSERT_EQ(child.exit_code, 0) << child.output;
  EXPECT_EQ(child.output, "RESOURCE_EXHAUSTED: write " + d +
                              "/journal: No space left on device\n"
                              "RESOURCE_EXHAUSTED: open " +
                              d +
                              "/f6: No space left on device\n"
                              "RESOURCE_EXHAUSTED: mkdir " +
                              d + "/sub: No space left on device\n");
}

TEST_F(PosixFileSystemTest, ReadOnlyTmpfsIsUnavailable) {
  const std::string d = dir_;
  const ChildResult child = RunInChild([&](std::string& out) {
    if (!MountTmpfs(d, "size=64k", 0, out)) return kChildCannot;
    Spit(d + "/f", "x");
    if (::mount(nullptr, d.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) !=
        0) {
      out += "remount read-only: errno " + std::to_string(errno) + "\n";
      return kChildCannot;
    }
    auto pfs = NewPosixFileSystem();
    out += Line(pfs->NewWritableFile(d + "/g").status());
    out += Line(pfs->NewAppendableFile(d + "/f").status());
    out += Line(pfs->Rename(d + "/f", d + "/g"));
    out += Line(pfs->RemoveFile(d + "/f"));
    out += Line(pfs->TruncateFile(d + "/f", 0));
    out += Line(pfs->CreateDir(d + "/sub"));
    auto read = pfs->ReadFile(d + "/f");
    out += read ? *read + "\n" : Line(read.error());
    return 0;
  });
  if (child.exit_code == kChildCannot) {
    GTEST_SKIP() << "no tmpfs here (" << child.output << ")";
  }
  ASSERT_EQ(child.exit_code, 0) << child.output;
  const std::string rofs = ": Read-only file system\n";
  EXPECT_EQ(child.output,
            "UNAVAILABLE: open " + d + "/g" + rofs + "UNAVAILABLE: open " + d +
                "/f" + rofs + "UNAVAILABLE: rename " + d + "/f -> " + d + "/g" +
                rofs + "UNAVAILABLE: unlink " + d + "/f" + rofs +
                "UNAVAILABLE: open " + d + "/f" + rofs + "UNAVAILABLE: mkdir " +
                d + "/sub" + rofs + "x\n");
}

}  // namespace
}  // namespace counterd::platform
