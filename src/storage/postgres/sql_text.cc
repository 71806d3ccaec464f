#include "sql_text.h"

#include <charconv>

namespace counterd::storage::postgres {
namespace {

void AppendQuoted(std::string& out, std::string_view item) {
  out.push_back('"');
  for (char c : item) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string TextArray(std::span<const std::string> items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendQuoted(out, items[i]);
  }
  out.push_back('}');
  return out;
}

std::string Int64Array(std::span<const std::int64_t> items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += std::to_string(items[i]);
  }
  out.push_back('}');
  return out;
}

std::string ByteaArray(std::span<const std::string> items) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    std::string hex = "\\x";
    hex.reserve(2 + 2 * items[i].size());
    for (char ch : items[i]) {
      const auto c = static_cast<unsigned char>(ch);
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 0xf]);
    }
    AppendQuoted(out, hex);
  }
  out.push_back('}');
  return out;
}

std::optional<std::string> ParseByteaHex(std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' ||
      text.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int hi = HexValue(text[i]);
    const int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::optional<std::int64_t> ParseInt64(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

std::optional<std::string> PrefixUpperBound(std::string_view prefix) {
  std::string upper(prefix);
  while (!upper.empty()) {
    auto last = static_cast<unsigned char>(upper.back());
    if (last < 0xff) {
      upper.back() = static_cast<char>(last + 1);
      return upper;
    }
    upper.pop_back();
  }
  return std::nullopt;
}

}  // namespace counterd::storage::postgres
