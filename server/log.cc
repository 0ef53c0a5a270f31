#include "server/log.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace jambalancer {

void Log(LogLevel level, absl::string_view message) {
  const std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                       absl::UTCTimeZone()),
      level == LogLevel::kError ? " ERROR " : " INFO ", message, "\n");
  // A single write keeps lines whole when threads log at once.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace jambalancer
