#include "server/core/session_table.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);
constexpr absl::Duration kTtl = absl::Seconds(10);

TEST(SessionTableTest, StartOpensALeaseUntilItsTtl) {
  SessionTable sessions;
  EXPECT_FALSE(sessions.IsLive("f", kStart));
  EXPECT_EQ(sessions.Start("f", kTtl, kStart), kStart + kTtl);
  EXPECT_TRUE(sessions.IsLive("f", kStart + kTtl - absl::Nanoseconds(1)));
  // At its expiry a lease is over, even before Expire runs.
  EXPECT_FALSE(sessions.IsLive("f", kStart + kTtl));
  EXPECT_EQ(sessions.NextExpiry(), kStart + kTtl);
  EXPECT_EQ(sessions.size(), 1u);
}

TEST(SessionTableTest, RenewExtendsALiveSessionByItsOwnTtl) {
  SessionTable sessions;
  sessions.Start("f", absl::Seconds(3), kStart);
  EXPECT_EQ(sessions.Renew("f", kStart + absl::Seconds(2)),
            kStart + absl::Seconds(5));
  EXPECT_EQ(sessions.NextExpiry(), kStart + absl::Seconds(5));
  // Not live any more: renewing changes nothing.
  EXPECT_EQ(sessions.Renew("f", kStart + absl::Seconds(5)), std::nullopt);
  EXPECT_EQ(sessions.Renew("unknown", kStart), std::nullopt);
  EXPECT_FALSE(sessions.IsLive("f", kStart + absl::Seconds(5)));
}

TEST(SessionTableTest, StartAgainSetsANewTtl) {
  SessionTable sessions;
  sessions.Start("f", absl::Seconds(3), kStart);
  sessions.Start("f", absl::Seconds(30), kStart + absl::Seconds(1));
  EXPECT_EQ(sessions.Renew("f", kStart + absl::Seconds(2)),
            kStart + absl::Seconds(32));
  EXPECT_EQ(sessions.size(), 1u);
}

TEST(SessionTableTest, ExpireRemovesLapsedSessionsEarliestFirst) {
  SessionTable sessions;
  sessions.Start("late", absl::Seconds(30), kStart);
  sessions.Start("b", absl::Seconds(2), kStart);
  sessions.Start("a", absl::Seconds(1), kStart);
  EXPECT_THAT(sessions.Expire(kStart + absl::Seconds(1) - absl::Nanoseconds(1)),
              IsEmpty());
  EXPECT_THAT(sessions.Expire(kStart + absl::Seconds(2)),
              ElementsAre("a", "b"));
  EXPECT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions.NextExpiry(), kStart + absl::Seconds(30));
  // An expired front end may start again.
  sessions.Start("a", kTtl, kStart + absl::Seconds(3));
  EXPECT_TRUE(sessions.IsLive("a", kStart + absl::Seconds(3)));
}

TEST(SessionTableTest, EndForgetsTheSession) {
  SessionTable sessions;
  sessions.Start("f", kTtl, kStart);
  EXPECT_TRUE(sessions.End("f"));
  EXPECT_FALSE(sessions.End("f"));
  EXPECT_FALSE(sessions.IsLive("f", kStart));
  EXPECT_EQ(sessions.NextExpiry(), absl::InfiniteFuture());
  EXPECT_THAT(sessions.Expire(absl::InfiniteFuture()), IsEmpty());
}

TEST(SessionTableTest, ListIsInFrontEndOrderWithExpiries) {
  SessionTable sessions;
  sessions.Start("zed", kTtl, kStart);
  sessions.Start("amy", absl::Seconds(1), kStart);
  const std::vector<SessionInfo> list = sessions.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].frontend_id, "amy");
  EXPECT_EQ(list[0].lease_expires, kStart + absl::Seconds(1));
  EXPECT_EQ(list[1].frontend_id, "zed");
  EXPECT_EQ(list[1].lease_expires, kStart + kTtl);
}

}  // namespace
}  // namespace jambalancer
