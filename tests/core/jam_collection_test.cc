#include "server/core/jam_collection.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

const absl::Time kNow = absl::FromUnixSeconds(1'000'000);

constexpr char kUuidV4[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// Refreshes `jam_id` with `count` users named "<prefix>0", "<prefix>1", ...;
// the prefix defaults to "<jam_id>-u", so each jam gets users of its own.
uint32_t Fill(JamCollection& jams, absl::string_view jam_id, int count,
              absl::string_view prefix = "") {
  const std::string stem =
      prefix.empty() ? absl::StrCat(jam_id, "-u") : std::string(prefix);
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(absl::StrCat(stem, i));
  std::vector<absl::string_view> views(names.begin(), names.end());
  return jams.Refresh(jam_id, views, kNow);
}

std::vector<std::string> UsersOf(JamCollection& jams,
                                 absl::string_view jam_id) {
  for (const JamSnapshot& jam : jams.ListJams("", 1000, kNow).jams) {
    if (jam.jam_id == jam_id) return jam.user_ids;
  }
  return {};
}

TEST(CurrentJamTest, EmptyCollectionGivesFreshUnstoredIds) {
  JamCollection jams(7);
  CurrentJamResult first = jams.CurrentJam(kNow);
  CurrentJamResult second = jams.CurrentJam(kNow);
  EXPECT_TRUE(first.new_jam);
  EXPECT_EQ(first.user_count, 0u);
  EXPECT_THAT(first.jam_id, MatchesRegex(kUuidV4));
  EXPECT_NE(first.jam_id, second.jam_id);
  EXPECT_EQ(jams.Snapshot(kNow).jam_count, 0u);
}

TEST(CurrentJamTest, MostPopulatedJamWithRoomWins) {
  JamCollection jams(7);
  Fill(jams, "a", 7);
  Fill(jams, "b", 6);
  Fill(jams, "c", 7);
  Fill(jams, "d", 7);
  CurrentJamResult result = jams.CurrentJam(kNow);
  EXPECT_EQ(result.jam_id, "b");
  EXPECT_EQ(result.user_count, 6u);
  EXPECT_FALSE(result.new_jam);
}

TEST(CurrentJamTest, SixUsersBeatOneUser) {
  JamCollection jams(7);
  Fill(jams, "one", 1);
  Fill(jams, "six", 6);
  EXPECT_EQ(jams.CurrentJam(kNow).jam_id, "six");
}

TEST(CurrentJamTest, FullJamIsNeverReturned) {
  JamCollection jams(7);
  Fill(jams, "full", 7);
  CurrentJamResult result = jams.CurrentJam(kNow);
  EXPECT_NE(result.jam_id, "full");
  EXPECT_TRUE(result.new_jam);
}

TEST(CurrentJamTest, JamReturnsAfterOneOfSevenLeaves) {
  JamCollection jams(7);
  Fill(jams, "full", 7);
  Fill(jams, "small", 2);
  EXPECT_EQ(jams.CurrentJam(kNow).jam_id, "small");
  ASSERT_TRUE(jams.RemoveUser("full", "full-u3", kNow).removed);
  CurrentJamResult result = jams.CurrentJam(kNow);
  EXPECT_EQ(result.jam_id, "full");
  EXPECT_EQ(result.user_count, 6u);
}

TEST(CurrentJamTest, TiesGoToSmallestIdInByteOrder) {
  JamCollection jams(7);
  Fill(jams, "b", 3);
  Fill(jams, "a2", 3);
  Fill(jams, "a10", 3);
  Fill(jams, "Z", 2);
  EXPECT_EQ(jams.CurrentJam(kNow).jam_id, "a10");
  // Byte order, not locale order: "B" (0x42) sorts before "a" (0x61).
  Fill(jams, "B", 3);
  EXPECT_EQ(jams.CurrentJam(kNow).jam_id, "B");
}

TEST(CurrentJamTest, MaxUsersOfOneMeansEveryJamIsFull) {
  JamCollection jams(1);
  Fill(jams, "a", 1);
  EXPECT_TRUE(jams.CurrentJam(kNow).new_jam);
}

TEST(RefreshTest, ReplacesInsteadOfMerging) {
  JamCollection jams(7);
  Fill(jams, "j", 3, "old");
  EXPECT_EQ(Fill(jams, "j", 2, "new"), 2u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("new0", "new1"));
  EXPECT_EQ(jams.Snapshot(kNow).user_count, 2u);
}

TEST(RefreshTest, DuplicatesCountOnce) {
  JamCollection jams(7);
  std::vector<absl::string_view> users = {"x", "y", "x", "x"};
  EXPECT_EQ(jams.Refresh("j", users, kNow), 2u);
  EXPECT_EQ(jams.HasCapacity("j", "", kNow).user_count, 2u);
  EXPECT_EQ(jams.Snapshot(kNow).user_count, 2u);
}

TEST(RefreshTest, EmptyListDeletesJam) {
  JamCollection jams(7);
  Fill(jams, "j", 3);
  EXPECT_EQ(jams.Refresh("j", {}, kNow), 0u);
  EXPECT_EQ(jams.Snapshot(kNow).jam_count, 0u);
  EXPECT_THAT(jams.ListJams("", 10, kNow).jams, IsEmpty());
  EXPECT_TRUE(jams.CurrentJam(kNow).new_jam);
  // Deleting an unknown jam is harmless.
  EXPECT_EQ(jams.Refresh("unknown", {}, kNow), 0u);
}

TEST(RefreshTest, OverfilledJamIsStoredAndFull) {
  JamCollection jams(7);
  EXPECT_EQ(Fill(jams, "over", 9), 9u);
  EXPECT_EQ(jams.HasCapacity("over", "", kNow).user_count, 9u);
  EXPECT_FALSE(jams.HasCapacity("over", "", kNow).has_capacity);
  EXPECT_TRUE(jams.CurrentJam(kNow).new_jam);
  CollectionSnapshot stats = jams.Snapshot(kNow);
  EXPECT_EQ(stats.full_jam_count, 1u);
  EXPECT_EQ(stats.user_count, 9u);
  // Shrinking it back below capacity makes it a candidate again.
  Fill(jams, "over", 5);
  EXPECT_EQ(jams.CurrentJam(kNow).jam_id, "over");
  EXPECT_EQ(jams.Snapshot(kNow).full_jam_count, 0u);
}

TEST(RefreshTest, FullToOverfilledKeepsOneFullJam) {
  JamCollection jams(7);
  Fill(jams, "j", 7);
  Fill(jams, "j", 8);
  EXPECT_EQ(jams.Snapshot(kNow).full_jam_count, 1u);
  Fill(jams, "j", 7);
  EXPECT_EQ(jams.Snapshot(kNow).full_jam_count, 1u);
}

TEST(RemoveUserTest, RemovesAndReportsCount) {
  JamCollection jams(7);
  Fill(jams, "j", 3);
  RemoveUserResult result = jams.RemoveUser("j", "j-u1", kNow);
  EXPECT_TRUE(result.removed);
  EXPECT_EQ(result.user_count, 2u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("j-u0", "j-u2"));
}

TEST(RemoveUserTest, LastUserDeletesJam) {
  JamCollection jams(7);
  Fill(jams, "j", 1);
  RemoveUserResult result = jams.RemoveUser("j", "j-u0", kNow);
  EXPECT_TRUE(result.removed);
  EXPECT_EQ(result.user_count, 0u);
  EXPECT_EQ(jams.Snapshot(kNow).jam_count, 0u);
  EXPECT_TRUE(jams.CurrentJam(kNow).new_jam);
}

TEST(RemoveUserTest, UnknownJamOrUserChangesNothing) {
  JamCollection jams(7);
  Fill(jams, "j", 2);
  RemoveUserResult unknown_jam = jams.RemoveUser("nope", "u0", kNow);
  EXPECT_FALSE(unknown_jam.removed);
  EXPECT_EQ(unknown_jam.user_count, 0u);
  RemoveUserResult unknown_user = jams.RemoveUser("j", "stranger", kNow);
  EXPECT_FALSE(unknown_user.removed);
  EXPECT_EQ(unknown_user.user_count, 2u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("j-u0", "j-u1"));
  EXPECT_EQ(jams.Snapshot(kNow).user_count, 2u);
}

TEST(RemoveUserTest, UserOfAnotherJamIsLeftAlone) {
  JamCollection jams(7);
  jams.AddUser("a", "x", kNow);
  jams.AddUser("b", "shared", kNow);
  RemoveUserResult result = jams.RemoveUser("a", "shared", kNow);
  EXPECT_FALSE(result.removed);
  EXPECT_EQ(result.user_count, 1u);
  EXPECT_THAT(UsersOf(jams, "a"), ElementsAre("x"));
  EXPECT_THAT(UsersOf(jams, "b"), ElementsAre("shared"));
}

TEST(HasCapacityTest, UnknownJamHasCapacity) {
  JamCollection jams(7);
  HasCapacityResult result = jams.HasCapacity("nope", "", kNow);
  EXPECT_TRUE(result.has_capacity);
  EXPECT_EQ(result.user_count, 0u);
}

TEST(HasCapacityTest, DecidedByCountBelowMax) {
  JamCollection jams(7);
  Fill(jams, "six", 6);
  Fill(jams, "seven", 7);
  EXPECT_TRUE(jams.HasCapacity("six", "", kNow).has_capacity);
  EXPECT_EQ(jams.HasCapacity("six", "", kNow).user_count, 6u);
  EXPECT_FALSE(jams.HasCapacity("seven", "", kNow).has_capacity);
}

TEST(AddUserTest, CreatesJamAndAdds) {
  JamCollection jams(7);
  AddUserResult result = jams.AddUser("j", "alice", kNow);
  EXPECT_TRUE(result.added);
  EXPECT_EQ(result.user_count, 1u);
  EXPECT_THAT(result.redirect_jam_id, IsEmpty());
  EXPECT_EQ(jams.CurrentJam(kNow).jam_id, "j");
}

TEST(AddUserTest, MemberAlreadyChangesNothing) {
  JamCollection jams(7);
  Fill(jams, "j", 7);
  AddUserResult result = jams.AddUser("j", "j-u4", kNow);
  EXPECT_TRUE(result.added);
  EXPECT_EQ(result.user_count, 7u);
  EXPECT_EQ(jams.Snapshot(kNow).user_count, 7u);
}

TEST(AddUserTest, FillsUpToMaxThenTurnsAway) {
  JamCollection jams(3);
  EXPECT_TRUE(jams.AddUser("j", "a", kNow).added);
  EXPECT_TRUE(jams.AddUser("j", "b", kNow).added);
  AddUserResult third = jams.AddUser("j", "c", kNow);
  EXPECT_TRUE(third.added);
  EXPECT_EQ(third.user_count, 3u);
  AddUserResult fourth = jams.AddUser("j", "d", kNow);
  EXPECT_FALSE(fourth.added);
  EXPECT_EQ(fourth.user_count, 3u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("a", "b", "c"));
}

TEST(AddUserTest, RedirectIsWhatCurrentJamAnswersNeverTheFullJam) {
  JamCollection jams(3);
  Fill(jams, "full", 3);
  Fill(jams, "room", 2);
  Fill(jams, "lonely", 1);
  AddUserResult result = jams.AddUser("full", "late", kNow);
  EXPECT_FALSE(result.added);
  EXPECT_EQ(result.redirect_jam_id, "room");

  Fill(jams, "room", 3);
  Fill(jams, "lonely", 3);
  AddUserResult to_fresh = jams.AddUser("full", "late", kNow);
  EXPECT_FALSE(to_fresh.added);
  EXPECT_THAT(to_fresh.redirect_jam_id, MatchesRegex(kUuidV4));
  EXPECT_EQ(jams.Snapshot(kNow).jam_count, 3u);  // The fresh id was not stored.
}

TEST(AddUserTest, OverfilledJamTurnsAway) {
  JamCollection jams(2);
  Fill(jams, "over", 4);
  EXPECT_FALSE(jams.AddUser("over", "new", kNow).added);
  EXPECT_EQ(jams.HasCapacity("over", "", kNow).user_count, 4u);
}

TEST(StatsTest, TotalsFollowEveryChange) {
  JamCollection jams(3);
  Fill(jams, "a", 3);
  Fill(jams, "b", 1);
  jams.AddUser("c", "x", kNow);
  jams.AddUser("c", "y", kNow);
  CollectionSnapshot stats = jams.Snapshot(kNow);
  EXPECT_EQ(stats.jam_count, 3u);
  EXPECT_EQ(stats.user_count, 6u);
  EXPECT_EQ(stats.full_jam_count, 1u);
  jams.RemoveUser("a", "a-u0", kNow);
  jams.AddUser("c", "z", kNow);
  jams.Refresh("b", {}, kNow);
  stats = jams.Snapshot(kNow);
  EXPECT_EQ(stats.jam_count, 2u);
  EXPECT_EQ(stats.user_count, 5u);
  EXPECT_EQ(stats.full_jam_count, 1u);
}

TEST(ListJamsTest, PageEndsOnceItListsMaxUserIds) {
  JamCollection jams(7);
  for (absl::string_view id : {"a", "b", "c"}) {
    const std::string one = absl::StrCat("1@", id);
    const std::string two = absl::StrCat("2@", id);
    const std::string three = absl::StrCat("3@", id);
    std::vector<absl::string_view> users = {one, two, three};
    jams.Refresh(id, users, kNow);
  }
  // 3 users a jam: with a budget of 4 the page stops after the second jam.
  JamPage page = jams.ListJams("", 100, kNow, /*max_user_ids=*/4);
  ASSERT_EQ(page.jams.size(), 2u);
  EXPECT_TRUE(page.has_more);
  // A budget smaller than one jam still lists that jam.
  page = jams.ListJams("b", 100, kNow, /*max_user_ids=*/1);
  ASSERT_EQ(page.jams.size(), 1u);
  EXPECT_EQ(page.jams[0].jam_id, "c");
  EXPECT_FALSE(page.has_more);
}

TEST(ListJamsTest, PagesInIdOrderWithSortedUsers) {
  JamCollection jams(7);
  for (absl::string_view id : {"c", "a", "e", "b", "d"}) {
    const std::string zed = absl::StrCat("zed@", id);
    const std::string amy = absl::StrCat("amy@", id);
    std::vector<absl::string_view> users = {zed, amy};
    jams.Refresh(id, users, kNow);
  }
  JamPage first = jams.ListJams("", 2, kNow);
  ASSERT_EQ(first.jams.size(), 2u);
  EXPECT_EQ(first.jams[0].jam_id, "a");
  EXPECT_EQ(first.jams[1].jam_id, "b");
  EXPECT_THAT(first.jams[0].user_ids, ElementsAre("amy@a", "zed@a"));
  EXPECT_TRUE(first.has_more);

  JamPage second = jams.ListJams("b", 2, kNow);
  ASSERT_EQ(second.jams.size(), 2u);
  EXPECT_EQ(second.jams[0].jam_id, "c");
  EXPECT_TRUE(second.has_more);

  JamPage last = jams.ListJams("d", 2, kNow);
  ASSERT_EQ(last.jams.size(), 1u);
  EXPECT_EQ(last.jams[0].jam_id, "e");
  EXPECT_FALSE(last.has_more);
}

TEST(ListJamsTest, ExactPageLeavesNoMore) {
  JamCollection jams(7);
  jams.AddUser("a", "x", kNow);
  jams.AddUser("b", "y", kNow);
  JamPage page = jams.ListJams("", 2, kNow);
  EXPECT_EQ(page.jams.size(), 2u);
  EXPECT_FALSE(page.has_more);
}

TEST(ListJamsTest, ResumesAfterDeletedJam) {
  JamCollection jams(7);
  for (absl::string_view id : {"a", "b", "c"}) jams.AddUser(id, id, kNow);
  jams.RemoveUser("b", "b", kNow);
  JamPage page = jams.ListJams("b", 10, kNow);
  ASSERT_EQ(page.jams.size(), 1u);
  EXPECT_EQ(page.jams[0].jam_id, "c");
}

}  // namespace
}  // namespace jambalancer
