#include "server/util/log.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

// 2023-11-14T22:13:20.123Z.
const absl::Time kTime = absl::FromUnixMillis(1'700'000'000'123);

std::string Text(LogLevel level, absl::string_view message,
                 const std::vector<LogField>& fields = {}) {
  return FormatLogLine(LogFormat::kText, kTime, level, message, fields);
}

std::string Json(LogLevel level, absl::string_view message,
                 const std::vector<LogField>& fields = {}) {
  return FormatLogLine(LogFormat::kJson, kTime, level, message, fields);
}

TEST(FormatLogLineTest, TextHasTimeLevelMessageAndFields) {
  EXPECT_EQ(Text(LogLevel::kInfo, "serving",
                 {{"address", "0.0.0.0:50051"}, {"max_users", "7"}}),
            "2023-11-14T22:13:20.123Z INFO serving address=0.0.0.0:50051 "
            "max_users=7\n");
}

TEST(FormatLogLineTest, TextWithoutFields) {
  EXPECT_EQ(Text(LogLevel::kInfo, "stopped"),
            "2023-11-14T22:13:20.123Z INFO stopped\n");
}

TEST(FormatLogLineTest, TextNamesTheErrorLevel) {
  EXPECT_EQ(Text(LogLevel::kError, "bind failed", {{"port", "80"}}),
            "2023-11-14T22:13:20.123Z ERROR bind failed port=80\n");
}

TEST(FormatLogLineTest, TextWritesValuesAsGiven) {
  EXPECT_EQ(Text(LogLevel::kInfo, "a \"b\"", {{"k", "x y\\z"}}),
            "2023-11-14T22:13:20.123Z INFO a \"b\" k=x y\\z\n");
}

TEST(FormatLogLineTest, JsonHasTimeLevelMessageAndFields) {
  EXPECT_EQ(Json(LogLevel::kInfo, "serving",
                 {{"address", "0.0.0.0:50051"}, {"max_users", "7"}}),
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\","
            "\"msg\":\"serving\",\"address\":\"0.0.0.0:50051\","
            "\"max_users\":\"7\"}\n");
}

TEST(FormatLogLineTest, JsonNamesTheErrorLevelAndKeepsEmptyStrings) {
  EXPECT_EQ(Json(LogLevel::kError, "", {{"reason", ""}}),
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"error\","
            "\"msg\":\"\",\"reason\":\"\"}\n");
}

TEST(FormatLogLineTest, JsonEscapesQuotesBackslashesAndControlCharacters) {
  constexpr char kMessage[] = "q\" b\\ n\n r\r t\t nul\0 esc\x1b us\x1f";
  const std::string message(kMessage, sizeof(kMessage) - 1);
  EXPECT_EQ(Json(LogLevel::kInfo, message, {{"k\"ey", "v\\al\x01"}}),
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\","
            "\"msg\":\"q\\\" b\\\\ n\\n r\\r t\\t nul\\u0000 esc\\u001b "
            "us\\u001f\",\"k\\\"ey\":\"v\\\\al\\u0001\"}\n");
}

TEST(FormatLogLineTest, JsonPassesNonAsciiUtf8AndSpaceAndDelThrough) {
  EXPECT_EQ(Json(LogLevel::kInfo, "caf\xc3\xa9 \xe2\x99\xab \x7f",
                 {{"user", "\xf0\x9f\x8e\xb8 J\xc3\xb8rn"}}),
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\","
            "\"msg\":\"caf\xc3\xa9 \xe2\x99\xab \x7f\","
            "\"user\":\"\xf0\x9f\x8e\xb8 J\xc3\xb8rn\"}\n");
}

TEST(FormatLogLineTest, TimeIsUtcWithThreeDigitsOfMilliseconds) {
  const auto line_at = [](absl::Time time) {
    return FormatLogLine(LogFormat::kText, time, LogLevel::kInfo, "m", {});
  };
  EXPECT_EQ(line_at(absl::FromUnixSeconds(0)),
            "1970-01-01T00:00:00.000Z INFO m\n");
  EXPECT_EQ(line_at(absl::FromUnixMillis(1'700'000'000'007)),
            "2023-11-14T22:13:20.007Z INFO m\n");
  // Sub-millisecond digits are cut, never rounded up into the next second.
  EXPECT_EQ(line_at(absl::FromUnixMicros(1'700'000'000'999'999)),
            "2023-11-14T22:13:20.999Z INFO m\n");
}

}  // namespace
}  // namespace jambalancer
