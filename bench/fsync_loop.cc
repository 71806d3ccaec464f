// fsync_loop: the physical floor for one client's durable round trip on the
// disk under a directory. Built by bench/run with plain g++ (no CMake).
//
//   fsync_loop --dir DIR [--seconds S] [--mode append|replace]
//
//   append   write 64 B at the end of a file, then fdatasync, in a loop: what
//            one journal commit costs (the file grows, so every fdatasync
//            also commits the new size, as counterd's journal appends do).
//   zeroed   the same 64 B records and fdatasyncs, into space written with
//            zeros ahead of them 1 MiB at a time, as counterd's journal
//            does (journal.h): most fdatasyncs then have no new file size
//            to commit.
//   replace  write a 64 B temp file, fsync, rename over the target, fsync
//            the directory: the atomic-replace recipe, per operation.
//
// Prints one line: mode=... ops=N seconds=S ops_per_s=X p50_ms=Y p99_ms=Z
// cpu_us=C (this process's user + system CPU per operation).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fsync_loop: %s: %s\n", what.c_str(),
               std::strerror(errno));
  std::exit(1);
}

void WriteAll(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      Die("write " + path);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void PwriteAll(int fd, const char* p, std::size_t n, off_t at,
               const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      Die("pwrite " + path);
    }
    p += w;
    at += w;
    n -= static_cast<std::size_t>(w);
  }
}

double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto k =
      static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::string mode = "append";
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--dir") {
      dir = argv[i + 1];
    } else if (flag == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    } else if (flag == "--mode") {
      mode = argv[i + 1];
    } else {
      std::fprintf(stderr, "fsync_loop: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (dir.empty() ||
      (mode != "append" && mode != "zeroed" && mode != "replace")) {
    std::fprintf(stderr,
                 "usage: fsync_loop --dir DIR [--seconds S] "
                 "[--mode append|zeroed|replace]\n");
    return 2;
  }

  char record[64];
  std::memset(record, 'r', sizeof(record));
  record[63] = '\n';
  const std::string target = dir + "/fsync_loop." + mode;
  const std::string temp = target + ".tmp";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) Die("open " + dir);
  int fd = -1;
  if (mode == "append" || mode == "zeroed") {
    // zeroed writes at its own offsets (pwrite): no O_APPEND.
    const int append = mode == "append" ? O_APPEND : 0;
    fd = ::open(target.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | append | O_CLOEXEC, 0644);
    if (fd < 0) Die("open " + target);
    if (::fsync(fd) != 0 || ::fsync(dir_fd) != 0) Die("fsync " + target);
  }
  constexpr off_t kAhead = 1 << 20;
  const std::vector<char> zeros(kAhead, '\0');
  off_t end = 0;     // zeroed: where the next record goes
  off_t zeroed = 0;  // zeroed: where the zeros written ahead end

  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  const double cpu_start = CpuSeconds();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(seconds));
  auto now = start;
  while (now < deadline) {
    const auto t0 = now;
    if (mode == "append") {
      WriteAll(fd, record, sizeof(record), target);
      if (::fdatasync(fd) != 0) Die("fdatasync " + target);
    } else if (mode == "zeroed") {
      PwriteAll(fd, record, sizeof(record), end, target);
      end += static_cast<off_t>(sizeof(record));
      if (end >= zeroed) {
        PwriteAll(fd, zeros.data(), zeros.size(), end, target);
        zeroed = end + kAhead;
      }
      if (::fdatasync(fd) != 0) Die("fdatasync " + target);
    } else {
      const int t =
          ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (t < 0) Die("open " + temp);
      WriteAll(t, record, sizeof(record), temp);
      if (::fsync(t) != 0) Die("fsync " + temp);
      if (::close(t) != 0) Die("close " + temp);
      if (::rename(temp.c_str(), target.c_str()) != 0) Die("rename " + temp);
      if (::fsync(dir_fd) != 0) Die("fsync " + dir);
    }
    now = Clock::now();
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(now - t0).count());
  }
  const double elapsed = std::chrono::duration<double>(now - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  const std::size_t ops = latencies_ms.size();
  const double p50 = Percentile(latencies_ms, 0.50);
  const double p99 = Percentile(latencies_ms, 0.99);
  std::printf(
      "mode=%s ops=%zu seconds=%.3f ops_per_s=%.1f p50_ms=%.4f p99_ms=%.4f "
      "cpu_us=%.1f\n",
      mode.c_str(), ops, elapsed, static_cast<double>(ops) / elapsed, p50, p99,
      ops > 0 ? cpu * 1e6 / static_cast<double>(ops) : 0.0);
  if (fd >= 0) ::close(fd);
  ::unlink(target.c_str());
  ::close(dir_fd);
  return 0;
}
