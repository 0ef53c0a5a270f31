#include "server/rpc/pool_directory.h"

#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;

class NeverServes : public ServingGate {
 public:
  bool MayServe(absl::Time) const override { return false; }
  int64_t Epoch() const override { return 3; }
  std::string LeaderAddress() const override { return "10.0.0.9:1"; }
};

PoolDirectory::GateFor GateOnly(const std::string& gated,
                                const ServingGate* gate) {
  return [gated, gate](const std::string& pool) {
    return pool == gated ? gate : nullptr;
  };
}

TEST(PoolDirectoryTest, FindsPoolsByNameAndTheDefaultByEmptyName) {
  NeverServes gate;
  PoolDirectory pools({{"rock", 7}, {kDefaultPoolName, 5}, {"duo", 2}},
                      /*strand_inline=*/true, {},
                      {absl::Seconds(10), absl::Minutes(5)},
                      GateOnly("duo", &gate));
  ASSERT_EQ(pools.pools().size(), 3u);
  // In name order.
  EXPECT_EQ(pools.pools()[0]->config.name, "default");
  EXPECT_EQ(pools.pools()[1]->config.name, "duo");
  EXPECT_EQ(pools.pools()[2]->config.name, "rock");

  EXPECT_EQ(*pools.Find("pool", ""), &pools.default_pool());
  EXPECT_EQ(*pools.Find("pool", "default"), &pools.default_pool());
  ServedPool* duo = *pools.Find("pool", "duo");
  EXPECT_EQ(duo->config.max_users, 2u);
  EXPECT_EQ(duo->gate, &gate);
  EXPECT_FALSE(duo->Serving(absl::Now()));
  EXPECT_TRUE((*pools.Find("pool", "rock"))->Serving(absl::Now()));
}

TEST(PoolDirectoryTest, EachPoolHasItsOwnStrandAndState) {
  PoolDirectory pools({{kDefaultPoolName, 5}, {"duo", 2}},
                      /*strand_inline=*/false, {},
                      {absl::Seconds(10), absl::Minutes(5)}, nullptr);
  EXPECT_NE(&pools.pools()[0]->pool, &pools.pools()[1]->pool);
  absl::Notification done;
  uint32_t max_users = 0;
  (*pools.Find("pool", "duo"))->pool.Post([&](PoolState& state, absl::Time) {
    max_users = state.jams.max_users();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(max_users, 2u);
}

TEST(PoolDirectoryTest, UnconfiguredPoolsAreNotFoundAndBadNamesInvalid) {
  PoolDirectory pools({{kDefaultPoolName, 5}}, true, {},
                      {absl::Seconds(10), absl::Minutes(5)}, nullptr);
  absl::StatusOr<ServedPool*> missing = pools.Find("jams[].pool", "rock");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("jams[].pool: pool \"rock\" is not configured"));
  absl::StatusOr<ServedPool*> bad = pools.Find("pool", "Rock!");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("pool must be"));
}

}  // namespace
}  // namespace jambalancer
