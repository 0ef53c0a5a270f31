// Front-end ownership in the collection: scoped Refresh and RemoveUser,
// ownership moves, ReplaceFrontEnd (Sync) and RemoveFrontEnd.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/jam_collection.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
constexpr absl::Duration kTtl = absl::Seconds(15);

class FrontEndTest : public ::testing::Test {
 protected:
  // The members of `jam`, sorted; empty if it does not exist.
  std::vector<std::string> Members(const std::string& jam) {
    JamPage page = jams_.ListJams("", 1000, kNow);
    for (const JamSnapshot& snapshot : page.jams) {
      if (snapshot.jam_id == jam) return snapshot.user_ids;
    }
    return {};
  }
  void Refresh(const std::string& jam, std::vector<absl::string_view> users,
               absl::string_view frontend = "") {
    jams_.Refresh(jam, users, kNow, frontend);
  }

  JamCollection jams_{7};
};

FrontEndCounts Counts(uint64_t jams, uint64_t members, uint64_t reservations) {
  return {jams, members, reservations};
}

MATCHER_P(EqualsCounts, expected, "") {
  return arg.jam_count == expected.jam_count &&
         arg.member_count == expected.member_count &&
         arg.reservation_count == expected.reservation_count;
}

TEST_F(FrontEndTest, ScopedRefreshReplacesOnlyTheFrontEndsOwnMembers) {
  Refresh("j", {"a1", "a2"}, "A");
  Refresh("j", {"b1"}, "B");
  EXPECT_THAT(Members("j"), ElementsAre("a1", "a2", "b1"));
  Refresh("j", {"a2", "a3"}, "A");  // a1 left A; B's b1 stays.
  EXPECT_THAT(Members("j"), ElementsAre("a2", "a3", "b1"));
  Refresh("j", {}, "B");
  EXPECT_THAT(Members("j"), ElementsAre("a2", "a3"));
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(1, 2, 0)));
  EXPECT_THAT(jams_.CountsOf("B"), EqualsCounts(Counts(0, 0, 0)));
}

TEST_F(FrontEndTest, UnscopedRefreshReplacesTheWholeJamAndMakesItAnonymous) {
  Refresh("j", {"a1", "a2"}, "A");
  Refresh("j", {"a1", "x"});
  EXPECT_THAT(Members("j"), ElementsAre("a1", "x"));
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(0, 0, 0)));
  // Anonymous members are not A's to remove.
  EXPECT_FALSE(jams_.RemoveUser("j", "a1", kNow, "A").removed);
  EXPECT_TRUE(jams_.RemoveUser("j", "a1", kNow).removed);
}

TEST_F(FrontEndTest, ScopedRefreshTakesOverAListedMemberOfAnotherOwner) {
  Refresh("j", {"u"}, "A");
  Refresh("j", {"u"}, "B");  // u reconnected to B.
  EXPECT_THAT(Members("j"), ElementsAre("u"));
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(0, 0, 0)));
  EXPECT_THAT(jams_.CountsOf("B"), EqualsCounts(Counts(1, 1, 0)));
  Refresh("j", {}, "A");  // A's late, empty presence removes nothing.
  EXPECT_THAT(Members("j"), ElementsAre("u"));
}

TEST_F(FrontEndTest, LateRemoveUserOfTheOldFrontEndRemovesNothing) {
  ASSERT_TRUE(jams_.AddUser("j", "u", kNow, "A").added);
  ASSERT_TRUE(jams_.AddUser("j", "u", kNow, "B").added);  // Reconnected.
  const RemoveUserResult late = jams_.RemoveUser("j", "u", kNow, "A");
  EXPECT_FALSE(late.removed);
  EXPECT_EQ(late.user_count, 1u);
  EXPECT_THAT(Members("j"), ElementsAre("u"));
  EXPECT_TRUE(jams_.RemoveUser("j", "u", kNow, "B").removed);
  EXPECT_THAT(Members("j"), IsEmpty());
}

TEST_F(FrontEndTest, AnUnknownFrontEndRemovesNoAnonymousUser) {
  Refresh("j", {"u"});
  EXPECT_FALSE(jams_.RemoveUser("j", "u", kNow, "never-seen").removed);
  EXPECT_THAT(Members("j"), ElementsAre("u"));
}

TEST_F(FrontEndTest, ReplaceFrontEndAddsUpEntriesOfOneJam) {
  const std::vector<absl::string_view> part1 = {"a", "b"};
  const std::vector<absl::string_view> part2 = {"c", "a"};
  const JamMembers truth[] = {{"j", part1}, {"k", {}}, {"j", part2}};
  EXPECT_THAT(jams_.ReplaceFrontEnd("A", truth, kNow),
              EqualsCounts(Counts(1, 3, 0)));
  EXPECT_THAT(Members("j"), ElementsAre("a", "b", "c"));
}

TEST_F(FrontEndTest, AnonymousAddUserOfAMemberKeepsItsOwner) {
  ASSERT_TRUE(jams_.AddUser("j", "u", kNow, "A").added);
  ASSERT_TRUE(jams_.AddUser("j", "u", kNow).added);
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(1, 1, 0)));
}

TEST_F(FrontEndTest, ReservationsAreOwnedAndTakenOverOnJoin) {
  const CurrentJamResult seat = jams_.ReserveSeat("u", kTtl, kNow, "A");
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(0, 0, 1)));
  // B may not release A's seat; A may.
  EXPECT_FALSE(jams_.RemoveUser(seat.jam_id, "u", kNow, "B").removed);
  ASSERT_TRUE(jams_.AddUser(seat.jam_id, "u", kNow, "B").added);
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(0, 0, 0)));
  EXPECT_THAT(jams_.CountsOf("B"), EqualsCounts(Counts(1, 1, 0)));
}

TEST_F(FrontEndTest, ReplaceFrontEndMakesTheListTheWholeTruth) {
  Refresh("old", {"gone", "moved"}, "A");
  Refresh("other", {"stolen", "b1"}, "B");
  jams_.ReserveSeat("waiting", kTtl, kNow, "A");  // Not listed: stays.
  jams_.ReserveSeat("arriving", kTtl, kNow, "A");
  const std::vector<absl::string_view> first = {"moved", "stolen", "twice"};
  const std::vector<absl::string_view> second = {"twice", "arriving"};
  const JamMembers truth[] = {{"new", first}, {"later", second}};
  const FrontEndCounts counts = jams_.ReplaceFrontEnd("A", truth, kNow);
  // "twice" ends in the last jam listed; "arriving"'s seat became membership.
  EXPECT_THAT(counts, EqualsCounts(Counts(2, 4, 1)));
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(2, 4, 1)));
  EXPECT_THAT(Members("old"), IsEmpty());
  EXPECT_THAT(Members("new"), ElementsAre("moved", "stolen"));
  EXPECT_THAT(Members("later"), ElementsAre("arriving", "twice"));
  EXPECT_THAT(Members("other"), ElementsAre("b1"));  // B keeps its own.
  EXPECT_THAT(jams_.CountsOf("B"), EqualsCounts(Counts(1, 1, 0)));
  EXPECT_EQ(jams_.Snapshot(kNow).reservation_count, 1u);  // "waiting".
}

TEST_F(FrontEndTest, ReplaceFrontEndWithNothingRemovesItsMembers) {
  Refresh("j", {"a", "b"}, "A");
  Refresh("j", {"c"}, "B");
  EXPECT_THAT(jams_.ReplaceFrontEnd("A", {}, kNow),
              EqualsCounts(Counts(0, 0, 0)));
  EXPECT_THAT(Members("j"), ElementsAre("c"));
}

TEST_F(FrontEndTest, RemoveFrontEndWorksInBoundedStepsAndSparesOthers) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(absl::StrCat("a", i));
  for (int jam = 0; jam < 4; ++jam) {
    std::vector<absl::string_view> users;
    for (int i = 0; i < 5; ++i) users.push_back(ids[jam * 5 + i]);
    Refresh(absl::StrCat("j", jam), users, "A");
  }
  Refresh("j0", {"b"}, "B");
  jams_.ReserveSeat("r", kTtl, kNow, "A");
  uint64_t members = 0, reservations = 0;
  int steps = 0;
  for (;;) {
    const FrontEndRemoval step = jams_.RemoveFrontEnd("A", 6, kNow);
    ASSERT_LE(step.members_removed + step.reservations_removed, 6u);
    members += step.members_removed;
    reservations += step.reservations_removed;
    ++steps;
    if (step.done) break;
    ASSERT_LT(steps, 10);
  }
  EXPECT_EQ(members, 20u);
  EXPECT_EQ(reservations, 1u);
  EXPECT_EQ(steps, 4);  // 21 users, 6 a step.
  EXPECT_THAT(jams_.CountsOf("A"), EqualsCounts(Counts(0, 0, 0)));
  EXPECT_THAT(Members("j0"), ElementsAre("b"));
  const CollectionSnapshot snapshot = jams_.Snapshot(kNow);
  EXPECT_EQ(snapshot.jam_count, 1u);  // Emptied jams are deleted.
  EXPECT_EQ(snapshot.user_count, 1u);
  EXPECT_EQ(snapshot.reservation_count, 0u);
  EXPECT_TRUE(jams_.RemoveFrontEnd("A", 6, kNow).done);  // Unknown: done.
}

TEST_F(FrontEndTest, GetJamNamesEachMembersFrontEnd) {
  Refresh("j", {"b1"}, "B");
  Refresh("j", {"a1"}, "A");
  jams_.AddUser("j", "anon", kNow);
  jams_.ReserveSeat("seat", kTtl, kNow, "A");  // In j, the best jam.
  const JamDetail detail = jams_.GetJam("j", kNow);
  ASSERT_EQ(detail.members.size(), 3u);
  EXPECT_EQ(detail.members[0].user_id, "a1");
  EXPECT_EQ(detail.members[0].frontend_id, "A");
  EXPECT_EQ(detail.members[1].user_id, "anon");
  EXPECT_EQ(detail.members[1].frontend_id, "");
  EXPECT_EQ(detail.members[2].user_id, "b1");
  EXPECT_EQ(detail.members[2].frontend_id, "B");
  EXPECT_EQ(detail.reserved_count, 1u);
  // The seat lapses; an unknown jam has nothing.
  EXPECT_EQ(jams_.GetJam("j", kNow + kTtl).reserved_count, 0u);
  EXPECT_TRUE(jams_.GetJam("nope", kNow).members.empty());
}

}  // namespace
}  // namespace jambalancer
