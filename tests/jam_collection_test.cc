#include "server/jam_collection.h"

#include <map>
#include <random>
#include <set>
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

constexpr char kUuidV4[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// Refreshes `jam_id` with `count` users named "<prefix>0", "<prefix>1", ...
uint32_t Fill(JamCollection& jams, absl::string_view jam_id, int count,
              absl::string_view prefix = "u") {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(absl::StrCat(prefix, i));
  std::vector<absl::string_view> views(names.begin(), names.end());
  return jams.Refresh(jam_id, views);
}

std::vector<std::string> UsersOf(const JamCollection& jams,
                                 absl::string_view jam_id) {
  for (const JamSnapshot& jam : jams.ListJams("", 1000).jams) {
    if (jam.jam_id == jam_id) return jam.user_ids;
  }
  return {};
}

TEST(CurrentJamTest, EmptyCollectionGivesFreshUnstoredIds) {
  JamCollection jams(7);
  CurrentJamResult first = jams.CurrentJam();
  CurrentJamResult second = jams.CurrentJam();
  EXPECT_TRUE(first.new_jam);
  EXPECT_EQ(first.user_count, 0u);
  EXPECT_THAT(first.jam_id, MatchesRegex(kUuidV4));
  EXPECT_NE(first.jam_id, second.jam_id);
  EXPECT_EQ(jams.Stats().jam_count, 0u);
}

TEST(CurrentJamTest, MostPopulatedJamWithRoomWins) {
  JamCollection jams(7);
  Fill(jams, "a", 7);
  Fill(jams, "b", 6);
  Fill(jams, "c", 7);
  Fill(jams, "d", 7);
  CurrentJamResult result = jams.CurrentJam();
  EXPECT_EQ(result.jam_id, "b");
  EXPECT_EQ(result.user_count, 6u);
  EXPECT_FALSE(result.new_jam);
}

TEST(CurrentJamTest, SixUsersBeatOneUser) {
  JamCollection jams(7);
  Fill(jams, "one", 1);
  Fill(jams, "six", 6);
  EXPECT_EQ(jams.CurrentJam().jam_id, "six");
}

TEST(CurrentJamTest, FullJamIsNeverReturned) {
  JamCollection jams(7);
  Fill(jams, "full", 7);
  CurrentJamResult result = jams.CurrentJam();
  EXPECT_NE(result.jam_id, "full");
  EXPECT_TRUE(result.new_jam);
}

TEST(CurrentJamTest, JamReturnsAfterOneOfSevenLeaves) {
  JamCollection jams(7);
  Fill(jams, "full", 7);
  Fill(jams, "small", 2);
  EXPECT_EQ(jams.CurrentJam().jam_id, "small");
  ASSERT_TRUE(jams.RemoveUser("full", "u3").removed);
  CurrentJamResult result = jams.CurrentJam();
  EXPECT_EQ(result.jam_id, "full");
  EXPECT_EQ(result.user_count, 6u);
}

TEST(CurrentJamTest, TiesGoToSmallestIdInByteOrder) {
  JamCollection jams(7);
  Fill(jams, "b", 3);
  Fill(jams, "a2", 3);
  Fill(jams, "a10", 3);
  Fill(jams, "Z", 2);
  EXPECT_EQ(jams.CurrentJam().jam_id, "a10");
  // Byte order, not locale order: "B" (0x42) sorts before "a" (0x61).
  Fill(jams, "B", 3);
  EXPECT_EQ(jams.CurrentJam().jam_id, "B");
}

TEST(CurrentJamTest, MaxUsersOfOneMeansEveryJamIsFull) {
  JamCollection jams(1);
  Fill(jams, "a", 1);
  EXPECT_TRUE(jams.CurrentJam().new_jam);
}

TEST(RefreshTest, ReplacesInsteadOfMerging) {
  JamCollection jams(7);
  Fill(jams, "j", 3, "old");
  EXPECT_EQ(Fill(jams, "j", 2, "new"), 2u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("new0", "new1"));
  EXPECT_EQ(jams.Stats().user_count, 2u);
}

TEST(RefreshTest, DuplicatesCountOnce) {
  JamCollection jams(7);
  std::vector<absl::string_view> users = {"x", "y", "x", "x"};
  EXPECT_EQ(jams.Refresh("j", users), 2u);
  EXPECT_EQ(jams.HasCapacity("j").user_count, 2u);
  EXPECT_EQ(jams.Stats().user_count, 2u);
}

TEST(RefreshTest, EmptyListDeletesJam) {
  JamCollection jams(7);
  Fill(jams, "j", 3);
  EXPECT_EQ(jams.Refresh("j", {}), 0u);
  EXPECT_EQ(jams.Stats().jam_count, 0u);
  EXPECT_THAT(jams.ListJams("", 10).jams, IsEmpty());
  EXPECT_TRUE(jams.CurrentJam().new_jam);
  // Deleting an unknown jam is harmless.
  EXPECT_EQ(jams.Refresh("unknown", {}), 0u);
}

TEST(RefreshTest, OverfilledJamIsStoredAndFull) {
  JamCollection jams(7);
  EXPECT_EQ(Fill(jams, "over", 9), 9u);
  EXPECT_EQ(jams.HasCapacity("over").user_count, 9u);
  EXPECT_FALSE(jams.HasCapacity("over").has_capacity);
  EXPECT_TRUE(jams.CurrentJam().new_jam);
  CollectionStats stats = jams.Stats();
  EXPECT_EQ(stats.full_jam_count, 1u);
  EXPECT_EQ(stats.user_count, 9u);
  // Shrinking it back below capacity makes it a candidate again.
  Fill(jams, "over", 5);
  EXPECT_EQ(jams.CurrentJam().jam_id, "over");
  EXPECT_EQ(jams.Stats().full_jam_count, 0u);
}

TEST(RefreshTest, FullToOverfilledKeepsOneFullJam) {
  JamCollection jams(7);
  Fill(jams, "j", 7);
  Fill(jams, "j", 8);
  EXPECT_EQ(jams.Stats().full_jam_count, 1u);
  Fill(jams, "j", 7);
  EXPECT_EQ(jams.Stats().full_jam_count, 1u);
}

TEST(RemoveUserTest, RemovesAndReportsCount) {
  JamCollection jams(7);
  Fill(jams, "j", 3);
  RemoveUserResult result = jams.RemoveUser("j", "u1");
  EXPECT_TRUE(result.removed);
  EXPECT_EQ(result.user_count, 2u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("u0", "u2"));
}

TEST(RemoveUserTest, LastUserDeletesJam) {
  JamCollection jams(7);
  Fill(jams, "j", 1);
  RemoveUserResult result = jams.RemoveUser("j", "u0");
  EXPECT_TRUE(result.removed);
  EXPECT_EQ(result.user_count, 0u);
  EXPECT_EQ(jams.Stats().jam_count, 0u);
  EXPECT_TRUE(jams.CurrentJam().new_jam);
}

TEST(RemoveUserTest, UnknownJamOrUserChangesNothing) {
  JamCollection jams(7);
  Fill(jams, "j", 2);
  RemoveUserResult unknown_jam = jams.RemoveUser("nope", "u0");
  EXPECT_FALSE(unknown_jam.removed);
  EXPECT_EQ(unknown_jam.user_count, 0u);
  RemoveUserResult unknown_user = jams.RemoveUser("j", "stranger");
  EXPECT_FALSE(unknown_user.removed);
  EXPECT_EQ(unknown_user.user_count, 2u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("u0", "u1"));
  EXPECT_EQ(jams.Stats().user_count, 2u);
}

TEST(RemoveUserTest, SameUserInAnotherJamIsLeftAlone) {
  JamCollection jams(7);
  std::vector<absl::string_view> users = {"shared", "x"};
  jams.Refresh("a", users);
  jams.Refresh("b", users);
  ASSERT_TRUE(jams.RemoveUser("a", "shared").removed);
  EXPECT_THAT(UsersOf(jams, "a"), ElementsAre("x"));
  EXPECT_THAT(UsersOf(jams, "b"), ElementsAre("shared", "x"));
}

TEST(HasCapacityTest, UnknownJamHasCapacity) {
  JamCollection jams(7);
  HasCapacityResult result = jams.HasCapacity("nope");
  EXPECT_TRUE(result.has_capacity);
  EXPECT_EQ(result.user_count, 0u);
}

TEST(HasCapacityTest, DecidedByCountBelowMax) {
  JamCollection jams(7);
  Fill(jams, "six", 6);
  Fill(jams, "seven", 7);
  EXPECT_TRUE(jams.HasCapacity("six").has_capacity);
  EXPECT_EQ(jams.HasCapacity("six").user_count, 6u);
  EXPECT_FALSE(jams.HasCapacity("seven").has_capacity);
}

TEST(AddUserTest, CreatesJamAndAdds) {
  JamCollection jams(7);
  AddUserResult result = jams.AddUser("j", "alice");
  EXPECT_TRUE(result.added);
  EXPECT_EQ(result.user_count, 1u);
  EXPECT_THAT(result.redirect_jam_id, IsEmpty());
  EXPECT_EQ(jams.CurrentJam().jam_id, "j");
}

TEST(AddUserTest, MemberAlreadyChangesNothing) {
  JamCollection jams(7);
  Fill(jams, "j", 7);
  AddUserResult result = jams.AddUser("j", "u4");
  EXPECT_TRUE(result.added);
  EXPECT_EQ(result.user_count, 7u);
  EXPECT_EQ(jams.Stats().user_count, 7u);
}

TEST(AddUserTest, FillsUpToMaxThenTurnsAway) {
  JamCollection jams(3);
  EXPECT_TRUE(jams.AddUser("j", "a").added);
  EXPECT_TRUE(jams.AddUser("j", "b").added);
  AddUserResult third = jams.AddUser("j", "c");
  EXPECT_TRUE(third.added);
  EXPECT_EQ(third.user_count, 3u);
  AddUserResult fourth = jams.AddUser("j", "d");
  EXPECT_FALSE(fourth.added);
  EXPECT_EQ(fourth.user_count, 3u);
  EXPECT_THAT(UsersOf(jams, "j"), ElementsAre("a", "b", "c"));
}

TEST(AddUserTest, RedirectIsWhatCurrentJamAnswersNeverTheFullJam) {
  JamCollection jams(3);
  Fill(jams, "full", 3);
  Fill(jams, "room", 2);
  Fill(jams, "lonely", 1);
  AddUserResult result = jams.AddUser("full", "late");
  EXPECT_FALSE(result.added);
  EXPECT_EQ(result.redirect_jam_id, "room");

  Fill(jams, "room", 3);
  Fill(jams, "lonely", 3);
  AddUserResult to_fresh = jams.AddUser("full", "late");
  EXPECT_FALSE(to_fresh.added);
  EXPECT_THAT(to_fresh.redirect_jam_id, MatchesRegex(kUuidV4));
  EXPECT_EQ(jams.Stats().jam_count, 3u);  // The fresh id was not stored.
}

TEST(AddUserTest, OverfilledJamTurnsAway) {
  JamCollection jams(2);
  Fill(jams, "over", 4);
  EXPECT_FALSE(jams.AddUser("over", "new").added);
  EXPECT_EQ(jams.HasCapacity("over").user_count, 4u);
}

TEST(StatsTest, TotalsFollowEveryChange) {
  JamCollection jams(3);
  Fill(jams, "a", 3);
  Fill(jams, "b", 1);
  jams.AddUser("c", "x");
  jams.AddUser("c", "y");
  CollectionStats stats = jams.Stats();
  EXPECT_EQ(stats.jam_count, 3u);
  EXPECT_EQ(stats.user_count, 6u);
  EXPECT_EQ(stats.full_jam_count, 1u);
  jams.RemoveUser("a", "u0");
  jams.AddUser("c", "z");
  jams.Refresh("b", {});
  stats = jams.Stats();
  EXPECT_EQ(stats.jam_count, 2u);
  EXPECT_EQ(stats.user_count, 5u);
  EXPECT_EQ(stats.full_jam_count, 1u);
}

TEST(ListJamsTest, PagesInIdOrderWithSortedUsers) {
  JamCollection jams(7);
  for (absl::string_view id : {"c", "a", "e", "b", "d"}) {
    std::vector<absl::string_view> users = {"zed", "amy"};
    jams.Refresh(id, users);
  }
  JamPage first = jams.ListJams("", 2);
  ASSERT_EQ(first.jams.size(), 2u);
  EXPECT_EQ(first.jams[0].jam_id, "a");
  EXPECT_EQ(first.jams[1].jam_id, "b");
  EXPECT_THAT(first.jams[0].user_ids, ElementsAre("amy", "zed"));
  EXPECT_TRUE(first.has_more);

  JamPage second = jams.ListJams("b", 2);
  ASSERT_EQ(second.jams.size(), 2u);
  EXPECT_EQ(second.jams[0].jam_id, "c");
  EXPECT_TRUE(second.has_more);

  JamPage last = jams.ListJams("d", 2);
  ASSERT_EQ(last.jams.size(), 1u);
  EXPECT_EQ(last.jams[0].jam_id, "e");
  EXPECT_FALSE(last.has_more);
}

TEST(ListJamsTest, ExactPageLeavesNoMore) {
  JamCollection jams(7);
  jams.AddUser("a", "x");
  jams.AddUser("b", "x");
  JamPage page = jams.ListJams("", 2);
  EXPECT_EQ(page.jams.size(), 2u);
  EXPECT_FALSE(page.has_more);
}

TEST(ListJamsTest, ResumesAfterDeletedJam) {
  JamCollection jams(7);
  for (absl::string_view id : {"a", "b", "c"}) jams.AddUser(id, "x");
  jams.RemoveUser("b", "x");
  JamPage page = jams.ListJams("b", 10);
  ASSERT_EQ(page.jams.size(), 1u);
  EXPECT_EQ(page.jams[0].jam_id, "c");
}

// Cross-checks the indexes against a brute-force model after a long random
// sequence of operations.
TEST(JamCollectionModelTest, MatchesBruteForceModel) {
  constexpr uint32_t kMax = 4;
  JamCollection jams(kMax);
  std::map<std::string, std::set<std::string>> model;
  std::mt19937 random(12345);
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  for (int step = 0; step < 20000; ++step) {
    const std::string jam = absl::StrCat("j", pick(12));
    const std::string user = absl::StrCat("u", pick(10));
    switch (pick(4)) {
      case 0: {
        std::vector<std::string> names;
        for (int i = pick(kMax + 3); i > 0; --i) {
          names.push_back(absl::StrCat("u", pick(10)));
        }
        std::vector<absl::string_view> views(names.begin(), names.end());
        jams.Refresh(jam, views);
        model[jam] = std::set<std::string>(names.begin(), names.end());
        if (model[jam].empty()) model.erase(jam);
        break;
      }
      case 1: {
        const bool in = model.count(jam) && model[jam].count(user);
        ASSERT_EQ(jams.RemoveUser(jam, user).removed, in);
        if (in) {
          model[jam].erase(user);
          if (model[jam].empty()) model.erase(jam);
        }
        break;
      }
      default: {
        const size_t size = model.count(jam) ? model[jam].size() : 0;
        const bool member = model.count(jam) && model[jam].count(user);
        const bool expect_added = member || size < kMax;
        ASSERT_EQ(jams.AddUser(jam, user).added, expect_added);
        if (expect_added) model[jam].insert(user);
        break;
      }
    }
    // The expected CurrentJam: most users below kMax, then smallest id.
    std::string best;
    size_t best_size = 0;
    uint64_t users = 0, full = 0;
    for (const auto& [id, members] : model) {
      users += members.size();
      if (members.size() >= kMax) ++full;
      if (members.size() < kMax && members.size() > best_size) {
        best = id, best_size = members.size();
      }
    }
    CurrentJamResult current = jams.CurrentJam();
    if (best.empty()) {
      ASSERT_TRUE(current.new_jam) << "step " << step;
    } else {
      ASSERT_EQ(current.jam_id, best) << "step " << step;
      ASSERT_EQ(current.user_count, best_size);
    }
    CollectionStats stats = jams.Stats();
    ASSERT_EQ(stats.jam_count, model.size());
    ASSERT_EQ(stats.user_count, users);
    ASSERT_EQ(stats.full_jam_count, full);
  }
}

}  // namespace
}  // namespace jambalancer
