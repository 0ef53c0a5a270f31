#include "server/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>

#include "server/metric_families.h"

namespace jambalancer {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces),
// so that fields[0] is the state (field 3 of proc(5)).
std::vector<std::string> StatFields() {
  std::ifstream file("/proc/self/stat");
  std::string line;
  std::getline(file, line);
  const size_t end_of_name = line.rfind(')');
  if (end_of_name == std::string::npos) return {};
  std::istringstream rest(line.substr(end_of_name + 1));
  return {std::istream_iterator<std::string>(rest),
          std::istream_iterator<std::string>()};
}

// Boot time from /proc/stat's btime line; 0 if unreadable.
double BootTimeSeconds() {
  std::ifstream file("/proc/stat");
  std::string key;
  double value = 0;
  while (file >> key) {
    if (key == "btime" && file >> value) return value;
    file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
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

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const std::vector<std::string> stat = StatFields();
  // proc(5): utime = field 14, stime = 15, vsize = 23, rss = 24 (pages).
  if (stat.size() > 21) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double cpu = (std::stod(stat[11]) + std::stod(stat[12])) / ticks;
    families.push_back(
        SingleValueFamily("process_cpu_seconds_total",
                          "Total user and system CPU time spent in "
                          "seconds.",
                          MetricType::Counter, cpu));
    families.push_back(SingleValueFamily(
        "process_virtual_memory_bytes", "Virtual memory size in bytes.",
        MetricType::Gauge, std::stod(stat[20])));
    families.push_back(SingleValueFamily(
        "process_resident_memory_bytes", "Resident memory size in bytes.",
        MetricType::Gauge,
        std::stod(stat[21]) * static_cast<double>(sysconf(_SC_PAGESIZE))));
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
  // proc(5): starttime = field 22, in clock ticks after boot.
  if (const double boot = BootTimeSeconds(); stat.size() > 19 && boot > 0) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    families.push_back(SingleValueFamily(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge, boot + std::stod(stat[19]) / ticks));
  }
  return families;
}

}  // namespace jambalancer
