#include "server/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "server/metrics/metric_families.h"

namespace jambalancer {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file),
                     std::istreambuf_iterator<char>());
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // Not the one opendir holds.
}

}  // namespace

std::optional<ProcStat> ParseProcStat(absl::string_view text) {
  const size_t end_of_name = text.rfind(')');
  if (end_of_name == absl::string_view::npos) return std::nullopt;
  // fields[0] is the state, field 3 of proc(5); field N is fields[N - 3].
  const std::vector<absl::string_view> fields = absl::StrSplit(
      text.substr(end_of_name + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  // Every field used is a decimal integer; SimpleAtoi refuses anything else
  // (signs aside), so nan, inf and hex do not become values.
  const auto field = [&fields](size_t number, double* value) {
    uint64_t integer = 0;
    if (number - 3 >= fields.size() ||
        !absl::SimpleAtoi(fields[number - 3], &integer)) {
      return false;
    }
    *value = static_cast<double>(integer);
    return true;
  };
  ProcStat stat;
  if (!field(14, &stat.user_ticks) || !field(15, &stat.system_ticks) ||
      !field(22, &stat.start_ticks) || !field(23, &stat.virtual_bytes) ||
      !field(24, &stat.resident_pages)) {
    return std::nullopt;
  }
  return stat;
}

std::optional<double> ParseBootTime(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t seconds = 0;
    if (words.size() == 2 && words[0] == "btime" &&
        absl::SimpleAtoi(words[1], &seconds) && seconds > 0) {
      return static_cast<double>(seconds);
    }
  }
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const std::optional<ProcStat> stat =
      ParseProcStat(ReadFile("/proc/self/stat"));
  if (stat.has_value()) {
    families.push_back(SingleValueFamily(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.", MetricType::Counter,
        (stat->user_ticks + stat->system_ticks) / ticks));
    families.push_back(SingleValueFamily(
        "process_virtual_memory_bytes", "Virtual memory size in bytes.",
        MetricType::Gauge, stat->virtual_bytes));
    families.push_back(SingleValueFamily(
        "process_resident_memory_bytes", "Resident memory size in bytes.",
        MetricType::Gauge,
        stat->resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE))));
  }
  if (const int fds = CountOpenFds(); fds >= 0) {
    families.push_back(SingleValueFamily("process_open_fds",
                                         "Number of open file descriptors.",
                                         MetricType::Gauge, fds));
  }
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    families.push_back(SingleValueFamily(
        "process_max_fds", "Maximum number of open file descriptors.",
        MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  const std::optional<double> boot = ParseBootTime(ReadFile("/proc/stat"));
  if (stat.has_value() && boot.has_value()) {
    families.push_back(SingleValueFamily(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge, *boot + stat->start_ticks / ticks));
  }
  return families;
}

}  // namespace jambalancer
