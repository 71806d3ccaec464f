#include "counterd/core/log.h"

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <spdlog/spdlog.h>

namespace counterd::log {
namespace {

std::atomic<Format> g_format{Format::kText};

spdlog::level::level_enum ToSpdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      break;
  }
  return spdlog::level::err;
}

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

}  // namespace

void SetFormat(Format format) { g_format.store(format); }

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
          (void)std::snprintf(
              buf, sizeof(buf), "\\u%04x",
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

std::string TextValue(std::string_view value) {
  const bool plain =
      !value.empty() && value.find_first_of(" \"\\=\n\t") == value.npos;
  if (plain) return std::string(value);
  std::string out;
  AppendJsonString(out, value);
  return out;
}

void Field::AppendText(std::string& out) const {
  out += key_;
  out += '=';
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          out += TextValue(v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else {
          AppendNumber(out, v);
        }
      },
      value_);
}

void Field::AppendJson(std::string& out) const {
  AppendJsonString(out, key_);
  out += ':';
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          AppendJsonString(out, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isfinite(v)) {
            AppendNumber(out, v);
          } else {
            out += "null";  // JSON has no inf/nan
          }
        } else {
          AppendNumber(out, v);
        }
      },
      value_);
}

std::string RenderText(std::string_view message, Fields fields) {
  std::string out(message);
  for (const Field& f : fields) {
    out += ' ';
    f.AppendText(out);
  }
  return out;
}

std::string RenderJsonMembers(std::string_view message, Fields fields) {
  std::string out = "\"msg\":";
  AppendJsonString(out, message);
  for (const Field& f : fields) {
    // The line's own members cannot be overwritten by a field.
    if (f.key() == "ts" || f.key() == "level" || f.key() == "msg") continue;
    out += ',';
    f.AppendJson(out);
  }
  return out;
}

bool Enabled(Level level) {
  return spdlog::default_logger_raw()->should_log(ToSpdlog(level));
}

void Write(Level level, std::string_view message, Fields fields) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  const spdlog::level::level_enum spd = ToSpdlog(level);
  if (!logger->should_log(spd)) return;
  const std::string payload = g_format.load() == Format::kJson
                                  ? RenderJsonMembers(message, fields)
                                  : RenderText(message, fields);
  logger->log(spd, "{}", payload);
}

}  // namespace counterd::log
