// The resync window after a restart: jams that front ends name are closed
// to new users until the window ends, unless their id was made here.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/jam_collection.h"

namespace jambalancer {
namespace {

using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);
constexpr absl::Duration kWindow = absl::Seconds(20);
constexpr absl::Duration kTtl = absl::Seconds(15);
constexpr char kUuidV4[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

class ResyncTest : public ::testing::Test {
 protected:
  void SetUp() override { jams_.StartResync(kStart + kWindow, kTtl); }

  void Refresh(const std::string& jam, std::vector<absl::string_view> users,
               absl::string_view frontend = "") {
    jams_.Refresh(jam, users, kStart, frontend);
  }

  JamCollection jams_{4};
};

TEST_F(ResyncTest, AJamAFrontEndResuppliedIsNotOfferedUntilTheWindowEnds) {
  Refresh("synced", {"a", "b"}, "A");
  EXPECT_TRUE(jams_.IsClosed("synced", kStart));
  EXPECT_EQ(jams_.NextExpiry(), kStart + kWindow);
  const CurrentJamResult answer = jams_.CurrentJam(kStart);
  EXPECT_TRUE(answer.new_jam);
  EXPECT_THAT(answer.jam_id, Not("synced"));
  EXPECT_FALSE(jams_.HasCapacity("synced", "", kStart).has_capacity);
  EXPECT_FALSE(jams_.HasCapacity("synced", "newcomer", kStart).has_capacity);
  EXPECT_TRUE(jams_.HasCapacity("synced", "a", kStart).has_capacity);
  // At the end of the window it opens.
  const absl::Time end = kStart + kWindow;
  EXPECT_FALSE(jams_.IsClosed("synced", end));
  EXPECT_EQ(jams_.CurrentJam(end).jam_id, "synced");
  EXPECT_TRUE(jams_.HasCapacity("synced", "", end).has_capacity);
  EXPECT_EQ(jams_.NextExpiry(), absl::InfiniteFuture());
}

TEST_F(ResyncTest, AddUserToAClosedJamRedirectsToAFreshJamWithASeat) {
  Refresh("synced", {"a"}, "A");
  const AddUserResult refused = jams_.AddUser("synced", "late", kStart, "B");
  EXPECT_FALSE(refused.added);
  EXPECT_EQ(refused.user_count, 1u);
  EXPECT_THAT(refused.redirect_jam_id, MatchesRegex(kUuidV4));
  // The seat waits there for the user, owned by the caller, and the fresh
  // jam is open: it was made here.
  EXPECT_EQ(jams_.CountsOf("B").reservation_count, 1u);
  EXPECT_FALSE(jams_.IsClosed(refused.redirect_jam_id, kStart));
  EXPECT_TRUE(
      jams_.AddUser(refused.redirect_jam_id, "late", kStart, "B").added);
  // Members and seat holders of the closed jam are still welcome.
  EXPECT_TRUE(jams_.AddUser("synced", "a", kStart, "A").added);
}

TEST_F(ResyncTest, UnknownJamsNamedByFrontEndsAreClosedToo) {
  jams_.RemoveUser("later", "x", kStart, "A");  // Names a jam not stored.
  EXPECT_TRUE(jams_.IsClosed("later", kStart));
  EXPECT_FALSE(jams_.HasCapacity("later", "", kStart).has_capacity);
  EXPECT_FALSE(jams_.AddUser("later", "x", kStart).added);
  // Once it is stored it stays closed for the window: never the best jam,
  // though it has room and more members than x's fresh jam.
  Refresh("later", {"y", "z"});
  EXPECT_NE(jams_.CurrentJam(kStart).jam_id, "later");
  EXPECT_EQ(jams_.CurrentJam(kStart + kWindow).jam_id, "later");
}

TEST_F(ResyncTest, JamsNamedOnlyWithoutAFrontEndBehaveAsBefore) {
  Refresh("plain", {"a"});
  EXPECT_FALSE(jams_.IsClosed("plain", kStart));
  EXPECT_EQ(jams_.CurrentJam(kStart).jam_id, "plain");
  EXPECT_TRUE(jams_.AddUser("plain", "b", kStart).added);
}

TEST_F(ResyncTest, FreshIdsMadeHereStayOpen) {
  const CurrentJamResult seat = jams_.ReserveSeat("u", kTtl, kStart, "A");
  ASSERT_TRUE(seat.new_jam);
  EXPECT_TRUE(jams_.AddUser(seat.jam_id, "u", kStart, "A").added);
  EXPECT_FALSE(jams_.IsClosed(seat.jam_id, kStart));
  EXPECT_EQ(jams_.ReserveSeat("v", kTtl, kStart, "B").jam_id, seat.jam_id);
  // Also the unstored fresh id of a CurrentJam without a user.
  const std::string fresh = jams_.CurrentJam(kStart).jam_id;
  EXPECT_TRUE(jams_.AddUser(fresh, "w", kStart, "C").added);
}

TEST_F(ResyncTest, RefreshAndReplaceFrontEndAlwaysApply) {
  Refresh("j", {"a", "b"}, "A");
  const std::vector<absl::string_view> users = {"a", "b", "c"};
  const JamMembers truth[] = {{"j", users}};
  EXPECT_EQ(jams_.ReplaceFrontEnd("A", truth, kStart).member_count, 3u);
  Refresh("j", {"a", "b", "c", "d"}, "A");
  EXPECT_EQ(jams_.HasCapacity("j", "d", kStart).user_count, 4u);
}

TEST(ResyncOffTest, WithoutAWindowNothingIsClosed) {
  JamCollection jams(4);
  const absl::Time now = kStart;
  jams.Refresh("j", std::vector<absl::string_view>{"a"}, now, "A");
  EXPECT_FALSE(jams.IsClosed("j", now));
  EXPECT_EQ(jams.CurrentJam(now).jam_id, "j");
  EXPECT_EQ(jams.NextExpiry(), absl::InfiniteFuture());
  EXPECT_THAT(jams.ListJams("", 10, now).jams, Not(IsEmpty()));
}

}  // namespace
}  // namespace jambalancer
