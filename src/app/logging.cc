#include "counterd/app/logging.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace counterd::app {
namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          // Bytes >= 0x80 pass through: log text is UTF-8 or the bytes of a
          // path, and a JSON reader replaces what is not valid UTF-8.
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

bool IsKeyChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

// "-12", "3.5": emitted as JSON numbers; everything else as strings.
bool IsNumber(std::string_view v) {
  if (v.starts_with('-')) v.remove_prefix(1);
  if (v.empty() || v.size() > 18) return false;
  bool dot = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '.' && !dot && i > 0 && i + 1 < v.size()) {
      dot = true;
    } else if (v[i] < '0' || v[i] > '9') {
      return false;
    }
  }
  return v.size() == 1 || v[0] != '0' || v[1] == '.';
}

struct Field {
  std::string key;
  std::string value;
  bool quoted = false;
};

// If |token| (at the start of |s|) is key=value, consumes it.
std::optional<Field> TakeField(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && IsKeyChar(s[i], i == 0)) ++i;
  if (i == 0 || i >= s.size() || s[i] != '=') return std::nullopt;
  Field field{std::string(s.substr(0, i)), {}, false};
  std::size_t j = i + 1;
  if (j < s.size() && s[j] == '"') {
    field.quoted = true;
    for (++j; j < s.size() && s[j] != '"'; ++j) {
      if (s[j] == '\\' && j + 1 < s.size()) ++j;
      field.value.push_back(s[j]);
    }
    if (j < s.size()) ++j;  // the closing quote
  } else {
    while (j < s.size() && s[j] != ' ') field.value.push_back(s[j++]);
  }
  if (j < s.size() && s[j] != ' ') return std::nullopt;
  s.remove_prefix(j);
  return field;
}

std::string Timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      t.time_since_epoch())
                      .count() %
                  1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // roomy: the compiler cannot bound tm's fields
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line = FormatJsonLogLine(
        Timestamp(msg.time), std::string_view(level.data(), level.size()),
        std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      break;
  }
  return spdlog::level::err;
}

}  // namespace

std::string LogValue(std::string_view value) {
  if (!value.empty() && value.find_first_of(" \"\\=") == std::string::npos) {
    return std::string(value);
  }
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string FormatJsonLogLine(std::string_view timestamp,
                              std::string_view level,
                              std::string_view message) {
  // The text runs up to the first key=value token; fields follow. A stray
  // word among the fields goes back to the text.
  std::string text;
  std::vector<Field> fields;
  std::string_view rest = message;
  while (!rest.empty()) {
    if (rest.front() == ' ') {
      rest.remove_prefix(1);
      continue;
    }
    if (std::optional<Field> field = TakeField(rest)) {
      fields.push_back(std::move(*field));
      continue;
    }
    const std::size_t end = std::min(rest.find(' '), rest.size());
    if (!text.empty()) text.push_back(' ');
    text.append(rest.substr(0, end));
    rest.remove_prefix(end);
  }

  std::string out = "{\"ts\":";
  AppendJsonString(out, timestamp);
  out += ",\"level\":";
  AppendJsonString(out, level);
  out += ",\"msg\":";
  AppendJsonString(out, text);
  for (const Field& f : fields) {
    if (f.key == "ts" || f.key == "level" || f.key == "msg") continue;
    out.push_back(',');
    AppendJsonString(out, f.key);
    out.push_back(':');
    if (!f.quoted && IsNumber(f.value)) {
      out += f.value;
    } else {
      AppendJsonString(out, f.value);
    }
  }
  out.push_back('}');
  return out;
}

void SetUpLogging(LogFormat format, LogLevel level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (format == LogFormat::kJson) {
    sink->set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc));
  }
  auto logger = std::make_shared<spdlog::logger>("counterd", std::move(sink));
  logger->set_level(ToSpdlog(level));
  // Warnings and errors reach the terminal (or the collector) at once.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace counterd::app
