#include "server/metrics/process_metrics.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

// Fields 3 to 52 of a /proc/<pid>/stat line (proc(5)): utime 250 (14),
// stime 75 (15), starttime 987654 (22), vsize 123456789 (23), rss 4321 (24).
std::vector<std::string> StatFields() {
  return absl::StrSplit(
      "R 1 1234 1234 0 -1 4194560 1500 0 2 0 250 75 0 0 20 0 3 0 987654 "
      "123456789 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 "
      "0 0 0 0 0 0 0 0 0 0",
      ' ');
}

// A stat line for command `name` with `fields` from field 3 on.
std::string StatLine(absl::string_view name,
                     const std::vector<std::string>& fields) {
  return absl::StrCat("1234 (", name, ") ", absl::StrJoin(fields, " "), "\n");
}

// StatFields() with field `number` (proc(5) numbering) set to `value`.
std::string StatLineWith(int number, absl::string_view value) {
  std::vector<std::string> fields = StatFields();
  fields[number - 3] = std::string(value);
  return StatLine("jam-balancer", fields);
}

std::string ReadFile(const char* path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file),
                     std::istreambuf_iterator<char>());
}

const MetricFamily* Find(const std::vector<MetricFamily>& families,
                         absl::string_view name) {
  const auto it = std::find_if(
      families.begin(), families.end(),
      [name](const MetricFamily& family) { return family.name == name; });
  return it == families.end() ? nullptr : &*it;
}

TEST(ParseProcStatTest, ReadsTheFieldsAfterTheLastParenthesis) {
  const std::optional<ProcStat> stat =
      ParseProcStat(StatLine("a) b", StatFields()));
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->user_ticks, 250);
  EXPECT_EQ(stat->system_ticks, 75);
  EXPECT_EQ(stat->start_ticks, 987654);
  EXPECT_EQ(stat->virtual_bytes, 123456789);
  EXPECT_EQ(stat->resident_pages, 4321);
}

TEST(ParseProcStatTest, NameMayHoldSpacesParenthesesAndDigits) {
  for (absl::string_view name :
       {"jam balancer", "(sd-pam)", ") 1 2 3 4 5 6 7 8 9 10 11 12 (", "",
        "x)y) ) (z"}) {
    const std::optional<ProcStat> stat =
        ParseProcStat(StatLine(name, StatFields()));
    ASSERT_TRUE(stat.has_value()) << name;
    EXPECT_EQ(stat->user_ticks, 250) << name;
    EXPECT_EQ(stat->resident_pages, 4321) << name;
  }
}

TEST(ParseProcStatTest, NeedsFieldsOnlyUpToRss) {
  std::vector<std::string> fields = StatFields();
  fields.resize(24 - 2);  // Fields 3 to 24, no trailing newline.
  const std::optional<ProcStat> stat =
      ParseProcStat(absl::StrCat("1 (x) ", absl::StrJoin(fields, " ")));
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->resident_pages, 4321);
}

TEST(ParseProcStatTest, ReadsThisProcess) {
  const std::optional<ProcStat> stat =
      ParseProcStat(ReadFile("/proc/self/stat"));
  ASSERT_TRUE(stat.has_value());
  EXPECT_GT(stat->virtual_bytes, 0);
  EXPECT_GT(stat->resident_pages, 0);
  EXPECT_GT(stat->start_ticks, 0);
}

TEST(ParseProcStatTest, HugeNumbersAreStillNumbers) {
  const std::optional<ProcStat> stat =
      ParseProcStat(StatLineWith(23, "18446744073709551615"));
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->virtual_bytes, 18446744073709551616.0);  // 2^64 rounded.
}

// Only decimal integers: nothing that would export NaN or Inf.
TEST(ParseProcStatTest, NanInfinityHexAndFractionsGiveNullopt) {
  for (absl::string_view value : {"nan", "-nan", "inf", "infinity", "-inf",
                                  "1e999", "0x10", "-5", "1.5"}) {
    EXPECT_EQ(ParseProcStat(StatLineWith(14, value)), std::nullopt) << value;
  }
  // One past the largest 64-bit value does not fit.
  EXPECT_EQ(ParseProcStat(StatLineWith(23, "18446744073709551616")),
            std::nullopt);
}

TEST(ParseProcStatTest, EmptyOrNoClosingParenthesisGivesNullopt) {
  EXPECT_EQ(ParseProcStat(""), std::nullopt);
  EXPECT_EQ(ParseProcStat("\n"), std::nullopt);
  EXPECT_EQ(ParseProcStat(")"), std::nullopt);
  std::string unclosed = StatLine("jam", StatFields());
  unclosed.erase(unclosed.find(')'), 1);
  EXPECT_EQ(ParseProcStat(unclosed), std::nullopt);
}

TEST(ParseProcStatTest, TooFewFieldsGiveNullopt) {
  for (size_t last : {3, 13, 14, 22, 23}) {
    std::vector<std::string> fields = StatFields();
    fields.resize(last - 2);  // Fields 3 to `last`.
    EXPECT_EQ(ParseProcStat(StatLine("jam", fields)), std::nullopt)
        << "up to field " << last;
  }
}

TEST(ParseProcStatTest, NonNumericFieldGivesNullopt) {
  for (int number : {14, 15, 22, 23, 24}) {
    for (absl::string_view value : {"abc", "12x", "--1", "1,5", "\xff"}) {
      EXPECT_EQ(ParseProcStat(StatLineWith(number, value)), std::nullopt)
          << "field " << number << " = " << value;
    }
  }
}

TEST(ParseProcStatTest, GarbageBytesNeverThrowAndGiveNullopt) {
  constexpr char kBinary[] = "\xff\xfe\0)\x01 ) \x80\x81 9 9 9 )\0";
  EXPECT_EQ(ParseProcStat(absl::string_view(kBinary, sizeof(kBinary) - 1)),
            std::nullopt);
  std::mt19937 random(12345);  // Fixed seed: the same inputs every run.
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 200);
  for (int i = 0; i < 2000; ++i) {
    std::string text(length(random), '\0');
    for (char& c : text) c = static_cast<char>(byte(random));
    EXPECT_EQ(ParseProcStat(text), std::nullopt) << i;
    EXPECT_EQ(ParseBootTime(text), std::nullopt) << i;
  }
}

constexpr char kProcStat[] =
    "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 0 0\n"
    "cpu0 1393280 32966 572056 13343292 6130 0 17875 0 0 0\n"
    "intr 1462898 0 9 0 0 0 0 3 0 1 0\n"
    "ctxt 115315136\n"
    "btime 1700000000\n"
    "processes 86031\n"
    "procs_running 1\n";

TEST(ParseBootTimeTest, FindsTheBtimeLine) {
  EXPECT_EQ(ParseBootTime(kProcStat), 1700000000.0);
  EXPECT_EQ(ParseBootTime("btime 42"), 42.0);
}

TEST(ParseBootTimeTest, ReadsThisMachine) {
  const std::optional<double> boot = ParseBootTime(ReadFile("/proc/stat"));
  ASSERT_TRUE(boot.has_value());
  EXPECT_LE(*boot, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

TEST(ParseBootTimeTest, MissingZeroNegativeOrGarbageGivesNullopt) {
  for (absl::string_view text :
       {"", "\n", "cpu 1 2 3\nctxt 5\n", "btime", "btime \n", "btime 0\n",
        "btime -1700000000\n", "btime abc\n", "btime 17x\n", "btime 1 2\n",
        "btimes 1700000000\n", "xbtime 1700000000\n", "btime=1700000000\n",
        "btime nan\n", "btime inf\n", "btime infinity\n", "btime 1e999\n",
        "btime 0x10\n", "btime 1.5\n"}) {
    EXPECT_EQ(ParseBootTime(text), std::nullopt) << text;
  }
}

TEST(CollectProcessMetricsTest, ReportsThisProcess) {
  const std::vector<MetricFamily> families = CollectProcessMetrics();
  const MetricFamily* cpu = Find(families, "process_cpu_seconds_total");
  const MetricFamily* virtual_memory =
      Find(families, "process_virtual_memory_bytes");
  const MetricFamily* resident =
      Find(families, "process_resident_memory_bytes");
  const MetricFamily* max_fds = Find(families, "process_max_fds");
  const MetricFamily* start = Find(families, "process_start_time_seconds");
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(virtual_memory, nullptr);
  ASSERT_NE(resident, nullptr);
  ASSERT_NE(max_fds, nullptr);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(cpu->type, MetricType::Counter);
  EXPECT_GE(cpu->metric[0].counter.value, 0);
  EXPECT_EQ(resident->type, MetricType::Gauge);
  EXPECT_GT(resident->metric[0].gauge.value, 0);
  EXPECT_GT(virtual_memory->metric[0].gauge.value,
            resident->metric[0].gauge.value);
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(max_fds->metric[0].gauge.value,
            static_cast<double>(limit.rlim_cur));
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_EQ(start->type, MetricType::Gauge);
  EXPECT_NEAR(start->metric[0].gauge.value, now, 24 * 60 * 60);
}

// The descriptors open in this (single-threaded) test, counted by asking
// each possible number.
int OpenFds() {
  int count = 0;
  for (int fd = 0; fd < 65536; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) ++count;
  }
  return count;
}

TEST(CollectProcessMetricsTest, CountsOpenFdsExactly) {
  const auto reported = [] {
    const std::vector<MetricFamily> families = CollectProcessMetrics();
    const MetricFamily* fds = Find(families, "process_open_fds");
    return fds == nullptr ? -1.0 : fds->metric[0].gauge.value;
  };
  EXPECT_EQ(reported(), OpenFds());
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_EQ(reported(), OpenFds());
  EXPECT_GT(reported(), 2);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

}  // namespace
}  // namespace jambalancer
