// Logging set-up: spdlog's default logger on stderr, as readable text or as
// one JSON object per line. Every layer logs through core/log.h (a message
// plus typed fields); in JSON format each field is its own member.
#ifndef COUNTERD_APP_LOGGING_H_
#define COUNTERD_APP_LOGGING_H_

#include <string>
#include <string_view>

#include "counterd/app/config.h"

namespace counterd::app {

// Replaces the default logger. Call before any other thread logs.
void SetUpLogging(LogFormat format, LogLevel level);

// One log line in JSON: {"ts":...,"level":...,"msg":...,<fields>}, from
// the payload log::Write made (RenderJsonMembers); any other payload (a
// library's spdlog call) becomes "msg" as it is. Exposed for tests.
std::string FormatJsonLogLine(std::string_view timestamp,
                              std::string_view level, std::string_view payload);

}  // namespace counterd::app

#endif  // COUNTERD_APP_LOGGING_H_
