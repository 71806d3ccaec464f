// Structured logging: a short message plus typed fields, in every layer.
//
//   log::Warn("slow fdatasync", {{"file", path}, {"took_ms", 143}});
//
// In text format the line reads `slow fdatasync file=/data/j.log took_ms=143`
// (values with spaces, quotes, '=' or backslashes are quoted); in JSON
// format the same call gives {"ts":..,"level":"warn","msg":"slow
// fdatasync","file":"/data/j.log","took_ms":143}: the JSON line is built
// from the fields, never by re-parsing text. Lines go to spdlog's default
// logger (app::SetUpLogging installs the sink and formatter).
//
// Thread-safe. Field holds views: build fields in the call expression.
#ifndef COUNTERD_CORE_LOG_H_
#define COUNTERD_CORE_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace counterd::log {

enum class Format { kText, kJson };
enum class Level { kTrace, kDebug, kInfo, kWarn, kError };

// How lines are rendered from now on. Call before other threads log.
void SetFormat(Format format);

class Field {
 public:
  Field(std::string_view key, std::string_view value)
      : key_(key), value_(value) {}
  Field(std::string_view key, const std::string& value)
      : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, const char* value)
      : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, bool value) : key_(key), value_(value) {}
  Field(std::string_view key, double value) : key_(key), value_(value) {}
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
      Field(std::string_view key, T value)
      : key_(key),
        value_(std::is_signed_v<T> ? Value(static_cast<std::int64_t>(value))
                                   : Value(static_cast<std::uint64_t>(value))) {
  }

  std::string_view key() const { return key_; }
  void AppendText(std::string& out) const;  // key=value
  void AppendJson(std::string& out) const;  // "key":value

 private:
  using Value =
      std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool>;
  std::string_view key_;
  Value value_;
};

using Fields = std::initializer_list<Field>;

bool Enabled(Level level);
void Write(Level level, std::string_view message, Fields fields);

inline void Trace(std::string_view message, Fields fields = {}) {
  Write(Level::kTrace, message, fields);
}
inline void Debug(std::string_view message, Fields fields = {}) {
  Write(Level::kDebug, message, fields);
}
inline void Info(std::string_view message, Fields fields = {}) {
  Write(Level::kInfo, message, fields);
}
inline void Warn(std::string_view message, Fields fields = {}) {
  Write(Level::kWarn, message, fields);
}
inline void Error(std::string_view message, Fields fields = {}) {
  Write(Level::kError, message, fields);
}

// The payload a line carries, in each format (exposed for tests and for
// the JSON formatter: in JSON format it is the members after "level").
std::string RenderText(std::string_view message, Fields fields);
std::string RenderJsonMembers(std::string_view message, Fields fields);
// |value| as a text field value: unchanged if it has no space, quote,
// backslash or '=', else double-quoted with escapes.
std::string TextValue(std::string_view value);
// Appends |s| as a JSON string literal.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace counterd::log

#endif  // COUNTERD_CORE_LOG_H_
