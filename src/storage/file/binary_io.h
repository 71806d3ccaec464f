// Little-endian fixed-width integers and length-prefixed strings, as the
// journal formats (docs/storage-format.md) use them: an appender for
// encoding and a Cursor for decoding that remembers its first failure.
// Thread-compatible.
#ifndef COUNTERD_STORAGE_FILE_BINARY_IO_H_
#define COUNTERD_STORAGE_FILE_BINARY_IO_H_

#include <cstddef>
#include <cstdint>
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

// True if |s| is well-formed UTF-8 (Unicode 15, table 3-7: no overlong
// forms, no surrogates, nothing past U+10FFFF). Strings the snapshot keeps
// as JSON strings (scopes, messages) must be.
inline bool IsUtf8(std::string_view s) {
  std::size_t i = 0;
  const auto byte = [&](std::size_t at) {
    return static_cast<unsigned char>(s[at]);
  };
  while (i < s.size()) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (std::size_t k = 2; k <= n; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return false;
    }
    i += n + 1;
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
