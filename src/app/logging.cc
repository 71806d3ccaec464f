#include "counterd/app/logging.h"

#include <algorithm>
#include <array>
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

#include "counterd/core/log.h"

namespace counterd::app {
namespace {

std::string Timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      t.time_since_epoch())
                      .count() %
                  1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 96> buf{};  // roomy: the compiler cannot bound tm's fields
  (void)std::snprintf(buf.data(), buf.size(),
                      "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, static_cast<int>(ms));
  return buf.data();
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

std::string FormatJsonLogLine(std::string_view timestamp,
                              std::string_view level,
                              std::string_view payload) {
  std::string out = "{\"ts\":";
  log::AppendJsonString(out, timestamp);
  out += ",\"level\":";
  log::AppendJsonString(out, level);
  out += ',';
  if (payload.starts_with("\"msg\":")) {
    // Members log::Write built from the call's message and fields.
    out += payload;
  } else {
    // A line that did not come through log:: (a library's): its text is
    // the message, taken as it is.
    out += "\"msg\":";
    log::AppendJsonString(out, payload);
  }
  out.push_back('}');
  return out;
}

void SetUpLogging(LogFormat format, LogLevel level) {
  log::SetFormat(format == LogFormat::kJson ? log::Format::kJson
                                            : log::Format::kText);
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
