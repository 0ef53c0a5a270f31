#include "server/rpc/pool_config.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const PoolConfig kDefaults = {kDefaultPoolName, 7, absl::Seconds(15),
                              absl::Minutes(2)};

TEST(ParsePoolsTest, NamesAndCapacitiesTakeTheDefaultTimes) {
  absl::StatusOr<std::vector<PoolConfig>> pools =
      ParsePools("--pools", "rock:7, duo:2", kDefaults);
  ASSERT_TRUE(pools.ok()) << pools.status();
  EXPECT_THAT(
      *pools,
      ElementsAre(PoolConfig{"rock", 7, absl::Seconds(15), absl::Minutes(2)},
                  PoolConfig{"duo", 2, absl::Seconds(15), absl::Minutes(2)}));
}

TEST(ParsePoolsTest, ReservationTimesPerPool) {
  absl::StatusOr<std::vector<PoolConfig>> pools =
      ParsePools("f", "slow:4:30s:10m\nlong:3:5m\n", kDefaults);
  ASSERT_TRUE(pools.ok()) << pools.status();
  EXPECT_THAT(
      *pools,
      ElementsAre(PoolConfig{"slow", 4, absl::Seconds(30), absl::Minutes(10)},
                  // A default cap below the pool's own time is
                  // raised to it.
                  PoolConfig{"long", 3, absl::Minutes(5), absl::Minutes(5)}));
}

TEST(ParsePoolsTest, EmptyTextIsNoPool) {
  EXPECT_THAT(*ParsePools("--pools", "", kDefaults), IsEmpty());
  EXPECT_THAT(*ParsePools("f", "# none yet\n\n , \n", kDefaults), IsEmpty());
}

TEST(ParsePoolsTest, CommentsAndLinesInAFile) {
  const std::string path = ::testing::TempDir() + "/pools.txt";
  {
    std::ofstream file(path);
    file << "# genres\nrock:7   # loud\njazz:5:20s\n\nduo:2,trio:3\n";
  }
  absl::StatusOr<std::vector<PoolConfig>> pools =
      ReadPoolsFile(path, kDefaults);
  ASSERT_TRUE(pools.ok()) << pools.status();
  std::vector<std::string> names;
  for (const PoolConfig& pool : *pools) names.push_back(pool.name);
  EXPECT_THAT(names, ElementsAre("rock", "jazz", "duo", "trio"));
  EXPECT_EQ((*pools)[1].reservation_ttl, absl::Seconds(20));
  std::remove(path.c_str());
}

TEST(ParsePoolsTest, ErrorsNameTheSourceAndTheEntry) {
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"rock", "expected NAME:MAX_USERS"},
           {"rock:0", "MAX_USERS must be a whole number >= 1"},
           {"rock:x", "MAX_USERS must be a whole number >= 1"},
           {"Rock:7", "a-z, 0-9"},
           {"-rock:7", "starting with a letter"},
           {"rock:7,rock:3", "configured twice"},
           {"default:3", "configured by --max_users"},
           {"rock:7:soon", "RESERVATION_TTL must be a duration"},
           {"rock:7:1m:30s", "must not exceed MAX_RESERVATION_TTL"},
           {"rock:7:1s:2s:3s", "expected NAME:MAX_USERS"},
       }) {
    absl::StatusOr<std::vector<PoolConfig>> pools =
        ParsePools("--pools", c.text, kDefaults);
    ASSERT_FALSE(pools.ok()) << c.text;
    EXPECT_EQ(pools.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(pools.status().message(), HasSubstr("--pools: pool \""))
        << c.text;
    EXPECT_THAT(pools.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(ParsePoolsTest, AMissingFileIsNamed) {
  absl::StatusOr<std::vector<PoolConfig>> pools =
      ReadPoolsFile("/nonexistent/pools", kDefaults);
  EXPECT_EQ(pools.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pools.status().message(), HasSubstr("/nonexistent/pools"));
}

TEST(ValidatePoolNameTest, LabelFriendlyNamesOnly) {
  for (const char* good : {"rock", "a", "eu-west_2", "9lives"}) {
    EXPECT_TRUE(ValidatePoolName("pool", good).ok()) << good;
  }
  for (const std::string& bad :
       {std::string(""), std::string("UP"), std::string("a/b"),
        std::string("_x"), std::string("a b"), std::string(64, 'a')}) {
    const absl::Status status = ValidatePoolName("pool", bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("pool must be")) << bad;
  }
}

}  // namespace
}  // namespace jambalancer
