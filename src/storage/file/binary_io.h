// Little-endian fixed-width integers and length-prefixed strings, as the
// journal formats (docs/storage-format.md) use them: an appender for
// encoding and a Cursor for decoding that remembers its first failure.
// Thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_BINARY_IO_H_
#define COUNTERD_STORAGE_FILE_BINARY_IO_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace counterd::storage {

template <typename T>
void PutFixed(std::string& out, T v) {
  static_assert(std::is_integral_v<T>);
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  char bytes[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bytes[i] = static_cast<char>(u & 0xff);
    u = static_cast<std::make_unsigned_t<T>>(u >> 8);
  }
  out.append(bytes, sizeof(T));
}

// u32 length, then the bytes.
inline void PutString(std::string& out, std::string_view s) {
  PutFixed<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

template <typename T>
T LoadFixed(const char* p) {
  static_assert(std::is_integral_v<T>);
  std::make_unsigned_t<T> u = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    u = static_cast<std::make_unsigned_t<T>>(
        u |
        (static_cast<std::make_unsigned_t<T>>(static_cast<unsigned char>(p[i]))
         << (8 * i)));
  }
  return static_cast<T>(u);
}

// What a byte that leads a multi-byte UTF-8 sequence promises: how many
// continuation bytes follow and the range the first of them must be in
// (narrower than 80..BF after E0, ED, F0 and F4: that excludes overlong
// forms, surrogates and what lies past U+10FFFF).
struct Utf8Lead {
  std::size_t continuation_bytes = 0;
  unsigned char first_lo = 0x80;
  unsigned char first_hi = 0xbf;
};

// The promise of the lead byte |c|; nothing if |c| cannot lead a multi-byte
// sequence (ASCII, a continuation byte, C0, C1, F5..FF).
inline std::optional<Utf8Lead> DecodeUtf8Lead(unsigned char c) {
  Utf8Lead lead;
  if (c >= 0xc2 && c <= 0xdf) {
    lead.continuation_bytes = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    lead.continuation_bytes = 2;
    if (c == 0xe0) lead.first_lo = 0xa0;
    if (c == 0xed) lead.first_hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    lead.continuation_bytes = 3;
    if (c == 0xf0) lead.first_lo = 0x90;
    if (c == 0xf4) lead.first_hi = 0x8f;
  } else {
    return std::nullopt;
  }
  return lead;
}

// The length (1 to 4) of the well-formed UTF-8 sequence |s| starts with, or
// 0 if it does not start with one. REQUIRES: !s.empty().
inline std::size_t Utf8SequenceLength(std::string_view s) {
  const auto byte = [&](std::size_t at) {
    return static_cast<unsigned char>(s[at]);
  };
  if (byte(0) < 0x80) return 1;
  const std::optional<Utf8Lead> lead = DecodeUtf8Lead(byte(0));
  if (!lead) return 0;
  const std::size_t n = lead->continuation_bytes;
  if (s.size() - 1 < n) return 0;
  if (byte(1) < lead->first_lo || byte(1) > lead->first_hi) return 0;
  for (std::size_t k = 2; k <= n; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xbf) return 0;
  }
  return n + 1;
}

// True if |s| is well-formed UTF-8 (Unicode 15, table 3-7: no overlong
// forms, no surrogates, nothing past U+10FFFF). Strings the snapshot keeps
// as JSON strings (scopes, messages) must be.
inline bool IsUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Reads fields off a byte string; after the first failure (too few bytes,
// or Fail()) every read returns a zero value and ok() stays false.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}

  template <typename T>
  T Fixed() {
    if (!Need(sizeof(T))) return T{};
    T v = LoadFixed<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::string String() {
    const auto n = Fixed<std::uint32_t>();
    if (!Need(n)) return {};
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool done() const { return pos_ == data_.size(); }
  std::size_t pos() const { return pos_; }
  void Fail() { ok_ = false; }

 private:
  bool Need(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace counterd::storage

#endif  // COUNTERD_STORAGE_FILE_BINARY_IO_H_
