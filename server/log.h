#ifndef JAM_BALANCER_SERVER_LOG_H_
#define JAM_BALANCER_SERVER_LOG_H_

#include "absl/strings/string_view.h"

namespace jambalancer {

enum class LogLevel { kInfo, kError };

// Writes one line to stderr: RFC 3339 UTC time, level, message. Thread-safe
// (one write(2) per line). For events worth knowing, not per-call traffic.
void Log(LogLevel level, absl::string_view message);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_LOG_H_
