// Seat reservations, recorded fresh jams and one jam per user, with a fake
// clock: every call gets `now` explicitly.

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

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);
const absl::Duration kTtl = absl::Seconds(15);

class ReservationTest : public ::testing::Test {
 protected:
  JamCollection jams_{3};
  absl::Time now_ = kStart;

  void Advance(absl::Duration d) { now_ += d; }

  CurrentJamResult Reserve(absl::string_view user, absl::Duration ttl = kTtl) {
    return jams_.ReserveSeat(user, ttl, now_);
  }
  void Fill(absl::string_view jam_id, int count) {
    std::vector<std::string> names;
    for (int i = 0; i < count; ++i) names.push_back(absl::StrCat(jam_id, i));
    std::vector<absl::string_view> views(names.begin(), names.end());
    jams_.Refresh(jam_id, views, now_);
  }
  const JamSnapshot* Find(absl::string_view jam_id) {
    page_ = jams_.ListJams("", 1000, now_);
    for (const JamSnapshot& jam : page_.jams) {
      if (jam.jam_id == jam_id) return &jam;
    }
    return nullptr;
  }
  uint64_t Reservations() { return jams_.Snapshot(now_).reservation_count; }

  JamPage page_;
};

TEST_F(ReservationTest, FreshJamIsRecordedSoNextArrivalsPackIntoIt) {
  CurrentJamResult first = Reserve("ann");
  EXPECT_TRUE(first.new_jam);
  EXPECT_EQ(first.user_count, 0u);
  EXPECT_EQ(first.reservation_expires, kStart + kTtl);

  CurrentJamResult second = Reserve("bob");
  EXPECT_EQ(second.jam_id, first.jam_id);
  EXPECT_FALSE(second.new_jam);
  CurrentJamResult third = Reserve("cat");
  EXPECT_EQ(third.jam_id, first.jam_id);

  // Three seats promised in a jam of three: the fourth goes elsewhere.
  CurrentJamResult fourth = Reserve("dan");
  EXPECT_NE(fourth.jam_id, first.jam_id);
  EXPECT_TRUE(fourth.new_jam);

  const JamSnapshot* jam = Find(first.jam_id);
  ASSERT_NE(jam, nullptr);
  EXPECT_THAT(jam->user_ids, IsEmpty());
  EXPECT_EQ(jam->reserved_count, 3u);
  CollectionSnapshot stats = jams_.Snapshot(now_);
  EXPECT_EQ(stats.jam_count, 2u);
  EXPECT_EQ(stats.user_count, 0u);
  EXPECT_EQ(stats.reservation_count, 4u);
}

TEST_F(ReservationTest, WithoutUserIdNothingIsReservedOrRecorded) {
  CurrentJamResult result = jams_.CurrentJam(now_);
  EXPECT_TRUE(result.new_jam);
  EXPECT_EQ(result.reservation_expires, absl::InfinitePast());
  EXPECT_EQ(jams_.Snapshot(now_).jam_count, 0u);
}

TEST_F(ReservationTest, OccupancyDecidesPlacementAndCapacity) {
  Fill("j", 2);
  CurrentJamResult seat = Reserve("ann");
  ASSERT_EQ(seat.jam_id, "j");
  EXPECT_EQ(seat.user_count, 2u);  // Members; the seat is not a member yet.

  // 2 members + 1 reservation = full for everyone else.
  EXPECT_FALSE(jams_.HasCapacity("j", "", now_).has_capacity);
  EXPECT_FALSE(jams_.HasCapacity("j", "stranger", now_).has_capacity);
  EXPECT_TRUE(jams_.HasCapacity("j", "ann", now_).has_capacity);
  EXPECT_TRUE(jams_.HasCapacity("j", "j0", now_).has_capacity);  // Member.
  EXPECT_TRUE(jams_.CurrentJam(now_).new_jam);

  AddUserResult stranger = jams_.AddUser("j", "stranger", now_);
  EXPECT_FALSE(stranger.added);
  EXPECT_NE(stranger.redirect_jam_id, "j");
  EXPECT_FALSE(stranger.redirect_jam_id.empty());
}

TEST_F(ReservationTest, ReservedUserIsNeverTurnedAway) {
  Fill("j", 2);
  ASSERT_EQ(Reserve("ann").jam_id, "j");
  // Presence truth overfills the jam while ann's seat is promised.
  Fill("j", 5);
  AddUserResult added = jams_.AddUser("j", "ann", now_);
  EXPECT_TRUE(added.added);
  EXPECT_EQ(added.user_count, 6u);
  EXPECT_EQ(Reservations(), 0u);  // The seat became membership.
}

TEST_F(ReservationTest, AddUserConsumesTheReservation) {
  CurrentJamResult seat = Reserve("ann");
  AddUserResult added = jams_.AddUser(seat.jam_id, "ann", now_);
  EXPECT_TRUE(added.added);
  EXPECT_EQ(added.user_count, 1u);
  const JamSnapshot* jam = Find(seat.jam_id);
  ASSERT_NE(jam, nullptr);
  EXPECT_THAT(jam->user_ids, ElementsAre("ann"));
  EXPECT_EQ(jam->reserved_count, 0u);
  EXPECT_EQ(Reservations(), 0u);
  // Membership does not expire.
  Advance(kTtl * 10);
  EXPECT_THAT(Find(seat.jam_id)->user_ids, ElementsAre("ann"));
}

TEST_F(ReservationTest, ReservationsExpireOnTime) {
  Fill("j", 2);
  ASSERT_EQ(Reserve("ann", absl::Seconds(5)).jam_id, "j");
  EXPECT_EQ(jams_.NextExpiry(), kStart + absl::Seconds(5));
  Advance(absl::Seconds(5) - absl::Milliseconds(1));
  EXPECT_EQ(Reservations(), 1u);
  EXPECT_TRUE(jams_.HasCapacity("j", "ann", now_).has_capacity);  // Held.
  EXPECT_FALSE(jams_.HasCapacity("j", "bob", now_).has_capacity);
  Advance(absl::Milliseconds(1));
  EXPECT_EQ(Reservations(), 0u);
  EXPECT_EQ(jams_.NextExpiry(), absl::InfiniteFuture());
  EXPECT_EQ(Find("j")->reserved_count, 0u);
}

// A mass expiry is spread over calls: each expires at most kExpiryStep, and
// NextExpiry stays due (the owner's timer fires at once) until all are gone.
TEST_F(ReservationTest, MassExpiryIsSpreadOverCalls) {
  const size_t count = JamCollection::kExpiryStep + 100;
  for (size_t i = 0; i < count; ++i) Reserve(absl::StrCat("u", i));
  ASSERT_EQ(Reservations(), count);
  Advance(kTtl);
  jams_.ExpireReservations(now_);
  EXPECT_LE(jams_.NextExpiry(), now_);                    // 100 still due.
  const CollectionSnapshot after = jams_.Snapshot(now_);  // A second call.
  EXPECT_EQ(after.reservation_count, 0u);
  EXPECT_EQ(after.reservations_expired, count);
  EXPECT_EQ(jams_.NextExpiry(), absl::InfiniteFuture());
}

TEST_F(ReservationTest, ExpireReservationsNeedsNoOtherCall) {
  CurrentJamResult seat = Reserve("ann", absl::Seconds(1));
  jams_.ExpireReservations(kStart + absl::Seconds(1));
  // Stats at the original time: nothing left to expire, the jam is gone.
  CollectionSnapshot stats = jams_.Snapshot(kStart);
  EXPECT_EQ(stats.reservation_count, 0u);
  EXPECT_EQ(stats.jam_count, 0u);
  EXPECT_EQ(jams_.HasCapacity(seat.jam_id, "", kStart).user_count, 0u);
}

TEST_F(ReservationTest, RecordedJamDisappearsWhenLastReservationExpires) {
  CurrentJamResult a = Reserve("ann", absl::Seconds(2));
  CurrentJamResult b = Reserve("bob", absl::Seconds(4));
  ASSERT_EQ(a.jam_id, b.jam_id);
  Advance(absl::Seconds(3));
  ASSERT_NE(Find(a.jam_id), nullptr);
  EXPECT_EQ(Find(a.jam_id)->reserved_count, 1u);
  Advance(absl::Seconds(1));
  EXPECT_EQ(Find(a.jam_id), nullptr);
  EXPECT_EQ(jams_.Snapshot(now_).jam_count, 0u);
}

TEST_F(ReservationTest, AskingAgainRenewsTheSeat) {
  CurrentJamResult first = Reserve("ann", absl::Seconds(5));
  Advance(absl::Seconds(4));
  CurrentJamResult again = Reserve("ann", absl::Seconds(5));
  EXPECT_EQ(again.jam_id, first.jam_id);  // Kept, though it was fresh.
  EXPECT_FALSE(again.new_jam);
  EXPECT_EQ(again.reservation_expires, kStart + absl::Seconds(9));
  EXPECT_EQ(Reservations(), 1u);
  Advance(absl::Seconds(2));  // Past the first expiry, before the second.
  EXPECT_EQ(Reservations(), 1u);
  EXPECT_NE(Find(first.jam_id), nullptr);
}

TEST_F(ReservationTest, AskingAgainMovesToAFullerJam) {
  Fill("low", 1);
  ASSERT_EQ(Reserve("ann").jam_id, "low");
  Fill("high", 2);  // Now the jam with the most occupied seats.
  CurrentJamResult moved = Reserve("ann");
  EXPECT_EQ(moved.jam_id, "high");
  EXPECT_EQ(Find("low")->reserved_count, 0u);
  EXPECT_EQ(Find("high")->reserved_count, 1u);
  EXPECT_EQ(Reservations(), 1u);
}

TEST_F(ReservationTest, MemberAskingIsAnsweredItsOwnJam) {
  Fill("mine", 1);
  Fill("fuller", 2);
  CurrentJamResult result = Reserve("mine0");
  EXPECT_EQ(result.jam_id, "mine");
  EXPECT_EQ(result.reservation_expires, absl::InfinitePast());
  EXPECT_EQ(Reservations(), 0u);
}

TEST_F(ReservationTest, RefreshTurnsListedReservationsIntoMembership) {
  CurrentJamResult seat = Reserve("ann");
  ASSERT_EQ(Reserve("bob").jam_id, seat.jam_id);
  std::vector<absl::string_view> present = {"ann", "zed"};
  EXPECT_EQ(jams_.Refresh(seat.jam_id, present, now_), 2u);
  const JamSnapshot* jam = Find(seat.jam_id);
  ASSERT_NE(jam, nullptr);
  EXPECT_THAT(jam->user_ids, ElementsAre("ann", "zed"));
  EXPECT_EQ(jam->reserved_count, 1u);  // bob's seat stays until it expires.
  EXPECT_TRUE(jams_.HasCapacity(seat.jam_id, "bob", now_).has_capacity);
  Advance(kTtl);
  EXPECT_EQ(Find(seat.jam_id)->reserved_count, 0u);
}

TEST_F(ReservationTest, EmptyRefreshKeepsAJamWithReservations) {
  Fill("j", 2);
  ASSERT_EQ(Reserve("ann").jam_id, "j");
  EXPECT_EQ(jams_.Refresh("j", {}, now_), 0u);
  const JamSnapshot* jam = Find("j");
  ASSERT_NE(jam, nullptr);
  EXPECT_THAT(jam->user_ids, IsEmpty());
  EXPECT_EQ(jam->reserved_count, 1u);
  Advance(kTtl);
  EXPECT_EQ(Find("j"), nullptr);
}

TEST_F(ReservationTest, RemoveUserReleasesTheReservation) {
  Fill("j", 2);
  ASSERT_EQ(Reserve("ann").jam_id, "j");
  EXPECT_FALSE(jams_.RemoveUser("other", "ann", now_).removed);
  EXPECT_EQ(Reservations(), 1u);
  RemoveUserResult result = jams_.RemoveUser("j", "ann", now_);
  EXPECT_TRUE(result.removed);
  EXPECT_EQ(result.user_count, 2u);
  EXPECT_EQ(Reservations(), 0u);
  EXPECT_TRUE(jams_.HasCapacity("j", "", now_).has_capacity);
}

TEST_F(ReservationTest, JoiningElsewhereReleasesTheReservation) {
  CurrentJamResult seat = Reserve("ann");
  ASSERT_TRUE(jams_.AddUser("other", "ann", now_).added);
  EXPECT_EQ(Reservations(), 0u);
  EXPECT_EQ(Find(seat.jam_id), nullptr);  // The recorded jam emptied.
}

TEST_F(ReservationTest, AddUserMovesAMemberAtomically) {
  Fill("a", 2);
  AddUserResult moved = jams_.AddUser("b", "a0", now_);
  EXPECT_TRUE(moved.added);
  EXPECT_THAT(Find("a")->user_ids, ElementsAre("a1"));
  EXPECT_THAT(Find("b")->user_ids, ElementsAre("a0"));
  EXPECT_EQ(jams_.Snapshot(now_).user_count, 2u);
  // The last member moving out deletes the jam it left.
  ASSERT_TRUE(jams_.AddUser("b", "a1", now_).added);
  EXPECT_EQ(Find("a"), nullptr);
}

TEST_F(ReservationTest, TurnedAwayMemberStaysWhereItWas) {
  Fill("a", 1);
  Fill("full", 3);
  EXPECT_FALSE(jams_.AddUser("full", "a0", now_).added);
  EXPECT_THAT(Find("a")->user_ids, ElementsAre("a0"));
}

TEST_F(ReservationTest, RefreshMovesListedMembersFromOtherJams) {
  Fill("a", 3);
  std::vector<absl::string_view> present = {"a0", "a2", "new"};
  EXPECT_EQ(jams_.Refresh("b", present, now_), 3u);
  EXPECT_THAT(Find("a")->user_ids, ElementsAre("a1"));
  EXPECT_THAT(Find("b")->user_ids, ElementsAre("a0", "a2", "new"));
  CollectionSnapshot stats = jams_.Snapshot(now_);
  EXPECT_EQ(stats.user_count, 4u);
  EXPECT_EQ(stats.full_jam_count, 1u);
}

TEST_F(ReservationTest, RefreshDropsUnlistedMembersEntirely) {
  Fill("a", 2);
  jams_.Refresh("a", std::vector<absl::string_view>{"a1"}, now_);
  // a0 is in no jam now: it can reserve and is not answered jam "a" as a
  // member would be.
  CurrentJamResult seat = Reserve("a0");
  EXPECT_EQ(seat.jam_id, "a");
  EXPECT_NE(seat.reservation_expires, absl::InfinitePast());
}

TEST_F(ReservationTest, CountersTrackEventsForMonitoring) {
  Fill("full", 3);                      // Created 1.
  Fill("over", 5);                      // Created 2, overfilled.
  jams_.AddUser("full", "late", now_);  // Turned away.
  CurrentJamResult seat = Reserve("ann", absl::Seconds(1));  // Created 3.
  Reserve("bob", absl::Seconds(1));         // Packs into ann's jam.
  jams_.AddUser(seat.jam_id, "ann", now_);  // Taken.
  Advance(absl::Seconds(1));
  jams_.ExpireReservations(now_);  // bob's lapses.
  CollectionSnapshot counters = jams_.Snapshot(now_);
  EXPECT_EQ(counters.jams_created, 3u);
  EXPECT_EQ(counters.overfilled_refreshes, 1u);
  EXPECT_EQ(counters.users_turned_away, 1u);
  EXPECT_EQ(counters.reservations_made, 2u);
  EXPECT_EQ(counters.reservations_expired, 1u);
  // Jams by members: ann's jam has 1, "full" 3, "over" is overfilled.
  EXPECT_EQ(counters.jams_by_members, (std::vector<uint64_t>{0, 1, 0, 1, 1}));
  EXPECT_EQ(counters.user_count, 9u);
}

// Held seats: a leaving member's seat stays for a reload.

TEST_F(ReservationTest, HeldSeatKeepsTheJamFullAndBringsTheUserBack) {
  Fill("home", 3);  // Full: home0, home1, home2.
  Fill("other", 2);
  const RemoveUserResult left =
      jams_.RemoveUser("home", "home0", now_, "", absl::Seconds(5));
  EXPECT_TRUE(left.removed);
  EXPECT_EQ(left.user_count, 2u);
  // The seat is still taken: no one else gets it.
  EXPECT_FALSE(jams_.HasCapacity("home", "", now_).has_capacity);
  EXPECT_TRUE(jams_.HasCapacity("home", "home0", now_).has_capacity);
  EXPECT_EQ(Reservations(), 1u);
  // "other" has room and would be best; the reload goes home all the same.
  Advance(absl::Seconds(1));
  const CurrentJamResult back = Reserve("home0");
  EXPECT_EQ(back.jam_id, "home");
  EXPECT_EQ(back.reservation_expires, now_ + kTtl);
  EXPECT_TRUE(jams_.AddUser("home", "home0", now_).added);
  EXPECT_EQ(Find("home")->user_ids.size(), 3u);
  EXPECT_EQ(Reservations(), 0u);
}

TEST_F(ReservationTest, HeldSeatLapsesAfterItsTime) {
  Fill("home", 2);
  jams_.RemoveUser("home", "home0", now_, "", absl::Seconds(5));
  Advance(absl::Seconds(5));
  EXPECT_EQ(Reservations(), 0u);
  EXPECT_EQ(Find("home")->reserved_count, 0u);
  EXPECT_THAT(Find("home")->user_ids, ElementsAre("home1"));
  // A later CurrentJam is placed as anyone else.
  Fill("big", 2);
  EXPECT_EQ(Reserve("home0").jam_id, "big");
}

TEST_F(ReservationTest, HoldingAReservationReleasesItAsBefore) {
  const CurrentJamResult seat = Reserve("ann");
  const RemoveUserResult released =
      jams_.RemoveUser(seat.jam_id, "ann", now_, "", absl::Seconds(5));
  EXPECT_TRUE(released.removed);
  EXPECT_EQ(Reservations(), 0u);
  EXPECT_EQ(Find(seat.jam_id), nullptr);
}

TEST_F(ReservationTest, HeldSeatKeepsItsOwner) {
  jams_.Refresh("home", std::vector<absl::string_view>{"u", "v"}, now_, "A");
  EXPECT_FALSE(
      jams_.RemoveUser("home", "u", now_, "B", absl::Seconds(5)).removed);
  EXPECT_TRUE(
      jams_.RemoveUser("home", "u", now_, "A", absl::Seconds(5)).removed);
  const FrontEndCounts counts = jams_.CountsOf("A");
  EXPECT_EQ(counts.member_count, 1u);
  EXPECT_EQ(counts.reservation_count, 1u);
}

}  // namespace
}  // namespace jambalancer
