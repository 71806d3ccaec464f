// make_data_dir: writes a counterd data dir directly in the on-disk format
// of docs/storage-format.md (version 1), so that the large-store rows of
// bench/run need not seed a million counters over HTTP. Built by bench/run
// with plain g++; it shares no code with counterd on purpose: bench/run
// starts counterd on the result, so a drift between this writer and the
// format is caught as a refused start-up rather than hidden.
//
//   make_data_dir --dir DIR --counters N [--journal-records M] [--seed S]
//
// state.json holds N counters named c0000000, c0000001, ... (sorted, value
// i % 1000, version 1) at last_seq = N. With M > 0, journal file
// journal-<N+1>.log holds M records, seqs N+1 .. N+M, each one group commit
// with one "put counter" effect on a pseudo-random counter (value+1,
// version+1), as an increment writes it. Both files are fsynced.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::uint32_t kPolynomial = 0x82f63b78;  // reflected Castagnoli
constexpr std::uint8_t kPutCounterTag = 1;

std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ kPolynomial : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}

std::uint32_t Crc32c(std::string_view data) {
  static const std::array<std::uint32_t, 256> table = MakeTable();
  std::uint32_t crc = ~0u;
  for (const char c : data) {
    crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  }
  return ~crc;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "make_data_dir: %s: %s\n", what.c_str(),
               std::strerror(errno));
  std::exit(1);
}

// Buffered writer that fsyncs on Close.
class File {
 public:
  explicit File(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) Die("open " + path_);
    buf_.reserve(kFlushAt + 4096);
  }
  std::string& buf() { return buf_; }
  void MaybeFlush() {
    if (buf_.size() >= kFlushAt) Flush();
  }
  std::uint64_t Close() {
    Flush();
    if (::fsync(fd_) != 0) Die("fsync " + path_);
    if (::close(fd_) != 0) Die("close " + path_);
    return written_;
  }

 private:
  static constexpr std::size_t kFlushAt = 1 << 20;
  void Flush() {
    const char* p = buf_.data();
    std::size_t n = buf_.size();
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        Die("write " + path_);
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    written_ += buf_.size();
    buf_.clear();
  }
  std::string path_;
  int fd_ = -1;
  std::string buf_;
  std::uint64_t written_ = 0;
};

template <typename T>
void PutFixed(std::string& out, T v) {
  auto u = static_cast<std::uint64_t>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<char>(u & 0xff));
    u >>= 8;
  }
}

std::string Name(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "c%07" PRIu64, i);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::uint64_t counters = 0;
  std::uint64_t records = 0;
  std::uint64_t seed = 42;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--dir") {
      dir = value;
    } else if (flag == "--counters") {
      counters = std::strtoull(value, nullptr, 10);
    } else if (flag == "--journal-records") {
      records = std::strtoull(value, nullptr, 10);
    } else if (flag == "--seed") {
      seed = std::strtoull(value, nullptr, 10);
    } else {
      std::fprintf(stderr, "make_data_dir: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (dir.empty() || counters == 0 || counters > 10'000'000) {
    std::fprintf(stderr,
                 "usage: make_data_dir --dir DIR --counters N (1..10^7) "
                 "[--journal-records M] [--seed S]\n");
    return 2;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) Die("mkdir " + dir);

  std::vector<std::int64_t> values(counters);
  std::vector<std::uint64_t> versions(counters, 1);
  const std::uint64_t snapshot_seq = counters;

  // Snapshot: byte for byte what EncodeSnapshot writes, built in memory
  // (about 45 bytes per counter) so the checksum covers it in one pass.
  File snap(dir + "/state.json");
  std::string& s = snap.buf();
  s.reserve(64 + counters * 48);
  s += "{\"format\":\"counterd-snapshot\",\"version\":1,\"last_seq\":" +
       std::to_string(snapshot_seq) + ",\n\"counters\":[\n";
  for (std::uint64_t i = 0; i < counters; ++i) {
    values[i] = static_cast<std::int64_t>(i % 1000);
    if (i > 0) s += ",\n";
    s += "{\"name\":\"";
    s += Name(i);
    s += "\",\"value\":";
    s += std::to_string(values[i]);
    s += ",\"version\":1}";
  }
  s += "\n],\n\"idempotency\":[],\n";
  char line[64];
  std::snprintf(line, sizeof(line), "\"crc32c\":\"%08x\"}\n", Crc32c(s));
  s += line;
  const std::uint64_t snapshot_bytes = snap.Close();

  std::uint64_t journal_bytes = 0;
  if (records > 0) {
    char name[64];
    std::snprintf(name, sizeof(name), "/journal-%020" PRIu64 ".log",
                  snapshot_seq + 1);
    File journal(dir + name);
    std::uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
    std::string payload;
    std::string header;
    for (std::uint64_t k = 1; k <= records; ++k) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;  // PCG step
      const std::uint64_t j = (x >> 33) % counters;
      ++values[j];
      ++versions[j];
      payload.clear();
      PutFixed<std::uint32_t>(payload, 1);  // effect_count
      PutFixed<std::uint8_t>(payload, kPutCounterTag);
      const std::string n = Name(j);
      PutFixed<std::uint32_t>(payload, static_cast<std::uint32_t>(n.size()));
      payload += n;
      PutFixed<std::int64_t>(payload, values[j]);
      PutFixed<std::uint64_t>(payload, versions[j]);
      header.clear();
      PutFixed<std::uint32_t>(header,
                              static_cast<std::uint32_t>(payload.size()));
      PutFixed<std::uint64_t>(header, snapshot_seq + k);
      const std::uint32_t rc = Crc32c(header + payload);
      std::string& out = journal.buf();
      PutFixed<std::uint32_t>(out, rc);
      out += header;
      out += payload;
      journal.MaybeFlush();
    }
    journal_bytes = journal.Close();
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || ::fsync(dir_fd) != 0) Die("fsync " + dir);
  ::close(dir_fd);
  std::printf(
      "counters=%" PRIu64 " journal_records=%" PRIu64 " snapshot_bytes=%" PRIu64
      " journal_bytes=%" PRIu64 " last_seq=%" PRIu64 "\n",
      counters, records, snapshot_bytes, journal_bytes, snapshot_seq + records);
  return 0;
}
