#include "server/util/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace jambalancer {
namespace {

std::atomic<LogFormat> log_format{LogFormat::kText};

// A JSON string literal (RFC 8259 escapes; other bytes pass through).
std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
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
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

void SetLogFormat(LogFormat format) { log_format.store(format); }

std::string FormatLogLine(LogFormat format, absl::Time time, LogLevel level,
                          absl::string_view message,
                          absl::Span<const LogField> fields) {
  const std::string stamp =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
  const bool error = level == LogLevel::kError;
  std::string line;
  if (format == LogFormat::kJson) {
    line = absl::StrCat("{\"time\":", JsonString(stamp),
                        ",\"level\":", error ? "\"error\"" : "\"info\"",
                        ",\"msg\":", JsonString(message));
    for (const LogField& field : fields) {
      absl::StrAppend(&line, ",", JsonString(field.first), ":",
                      JsonString(field.second));
    }
    line += "}\n";
  } else {
    line = absl::StrCat(stamp, error ? " ERROR " : " INFO ", message);
    for (const LogField& field : fields) {
      absl::StrAppend(&line, " ", field.first, "=", field.second);
    }
    line += "\n";
  }
  return line;
}

void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields) {
  const std::string line =
      FormatLogLine(log_format.load(), absl::Now(), level, message,
                    absl::MakeConstSpan(fields.begin(), fields.size()));
  // A single write keeps lines whole when threads log at once.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace jambalancer
