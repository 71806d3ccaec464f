// Logging set-up: spdlog's default logger on stderr, as readable text or as
// one JSON object per line. Messages follow one convention in every layer:
// a short text, then key=value fields ("compaction took_ms=12"); in JSON
// the text becomes "msg" and each field its own member.
#ifndef COUNTERD_APP_LOGGING_H_
#define COUNTERD_APP_LOGGING_H_

#include <string>
#include <string_view>

#include "counterd/app/config.h"

namespace counterd::app {

// Replaces the default logger. Call before any other thread logs.
void SetUpLogging(LogFormat format, LogLevel level);

// |value| as a field value: unchanged if it has no space, quote, backslash
// or '=', else double-quoted with escapes.
std::string LogValue(std::string_view value);

// One log line in JSON: {"ts":...,"level":...,"msg":...,<fields>}, from a
// message in the convention above. Exposed for tests.
std::string FormatJsonLogLine(std::string_view timestamp,
                              std::string_view level, std::string_view message);

}  // namespace counterd::app

#endif  // COUNTERD_APP_LOGGING_H_
