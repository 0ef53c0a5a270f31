#ifndef JAM_BALANCER_SERVER_UTIL_LOG_H_
#define JAM_BALANCER_SERVER_UTIL_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace jambalancer {

enum class LogLevel { kInfo, kError };
enum class LogFormat { kText, kJson };

// How Log writes lines from now on. Call before other threads log.
void SetLogFormat(LogFormat format);

// A named value attached to a log line.
using LogField = std::pair<absl::string_view, std::string>;

// Writes one line to stderr. Text: `TIME LEVEL message key=value ...`;
// JSON: `{"time":...,"level":...,"msg":...,"key":"value",...}`. Time is RFC
// 3339 UTC. Thread-safe (one write(2) per line). For events worth knowing,
// not per-call traffic.
void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields = {});

// The line Log writes, newline included: `time` in RFC 3339 UTC with
// milliseconds; in JSON every key and value a string literal (RFC 8259
// escapes for quotes, backslashes and control characters), in text as given.
std::string FormatLogLine(LogFormat format, absl::Time time, LogLevel level,
                          absl::string_view message,
                          absl::Span<const LogField> fields);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_UTIL_LOG_H_
