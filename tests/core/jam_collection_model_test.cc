// Cross-checks JamCollection against a brute-force model of its rules over
// long random sequences of every operation, with time moving forward and
// reservations expiring. The model scans everything on every step; the
// collection must agree while using its indexes.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/jam_collection.h"

namespace jambalancer {
namespace {

constexpr uint32_t kMax = 4;

struct Model {
  struct Reservation {
    std::string jam;
    absl::Time expires;
  };
  std::map<std::string, std::set<std::string>> members;  // May hold empties.
  std::map<std::string, Reservation> reservations;       // By user.

  void Expire(absl::Time now) {
    for (auto it = reservations.begin(); it != reservations.end();) {
      it = it->second.expires <= now ? reservations.erase(it) : std::next(it);
    }
  }
  size_t Reserved(const std::string& jam) const {
    size_t n = 0;
    for (const auto& [user, r] : reservations) n += r.jam == jam;
    return n;
  }
  size_t Members(const std::string& jam) const {
    auto it = members.find(jam);
    return it == members.end() ? 0 : it->second.size();
  }
  size_t Occupancy(const std::string& jam) const {
    return Members(jam) + Reserved(jam);
  }
  std::set<std::string> Jams() const {
    std::set<std::string> jams;
    for (const auto& [jam, users] : members) {
      if (!users.empty()) jams.insert(jam);
    }
    for (const auto& [user, r] : reservations) jams.insert(r.jam);
    return jams;
  }
  // Highest occupancy below kMax, smallest id on ties.
  std::optional<std::string> Best() const {
    std::optional<std::string> best;
    size_t best_occupancy = 0;
    for (const std::string& jam : Jams()) {
      const size_t occupancy = Occupancy(jam);
      if (occupancy < kMax && occupancy > best_occupancy) {
        best = jam, best_occupancy = occupancy;
      }
    }
    return best;
  }
  std::optional<std::string> MemberOf(const std::string& user) const {
    for (const auto& [jam, users] : members) {
      if (users.count(user)) return jam;
    }
    return std::nullopt;
  }
  void Leave(const std::string& user) {
    for (auto& [jam, users] : members) users.erase(user);
    reservations.erase(user);
  }
};

// How ids look: each style stores ids in other forms (see CompactId) and
// makes other ties for the indexes to break.
enum class IdStyle {
  kShort,  // "j3": inline, prefixes all differ.
  kUuid,   // Canonical UUIDs, some sharing their first 8 chars.
  kLong,   // Longer than 16 bytes, all sharing their first 8 bytes.
  kMixed,  // All of them, and uppercase UUIDs: ids distinct from the
           // lowercase ones.
};

std::string Uuid(char kind, int n) {
  // First 8 chars shared by n and n + 2.
  return absl::StrFormat("%08x-%04x-4abc-8def-%012x", (n % 2) * 0xdeadbeef,
                         kind, n);
}

// The id of jam or user number n (`kind` 'j' or 'u').
std::string Id(IdStyle style, char kind, int n) {
  switch (style) {
    case IdStyle::kShort:
      return absl::StrCat(std::string(1, kind), n);
    case IdStyle::kUuid:
      return Uuid(kind, n);
    case IdStyle::kLong:
      return absl::StrCat("shared-prefix-", std::string(1, kind), "-", n);
    case IdStyle::kMixed:
      switch (n % 4) {
        case 0:
          return Uuid(kind, n / 4);
        case 1:
          return absl::AsciiStrToUpper(Uuid(kind, n / 4));
        case 2:
          return absl::StrCat(std::string(1, kind), n);
        default:
          return absl::StrCat("shared-prefix-", std::string(1, kind), n);
      }
  }
  return "";
}

class ModelTest : public ::testing::TestWithParam<std::tuple<int, IdStyle>> {};

TEST_P(ModelTest, AgreesWithBruteForceModel) {
  const auto [seed, style] = GetParam();
  JamCollection jams(kMax);
  Model model;
  std::mt19937 random(seed);
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  absl::Time now = absl::FromUnixSeconds(1'000'000);

  for (int step = 0; step < 4000; ++step) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " step ", step));
    now += absl::Milliseconds(pick(4));
    model.Expire(now);
    const std::string jam = Id(style, 'j', pick(8));
    const std::string user = Id(style, 'u', pick(16));
    switch (pick(6)) {
      case 0: {  // Refresh
        std::vector<std::string> names;
        for (int i = pick(kMax + 3); i > 0; --i) {
          names.push_back(Id(style, 'u', pick(16)));
        }
        std::vector<absl::string_view> views(names.begin(), names.end());
        const std::set<std::string> listed(names.begin(), names.end());
        ASSERT_EQ(jams.Refresh(jam, views, now), listed.size());
        for (const std::string& u : listed) model.Leave(u);
        model.members[jam] = listed;
        break;
      }
      case 1: {  // RemoveUser
        const bool member =
            model.Members(jam) && model.members[jam].count(user);
        const bool reserved = model.reservations.count(user) &&
                              model.reservations[user].jam == jam;
        ASSERT_EQ(jams.RemoveUser(jam, user, now).removed, member || reserved);
        if (member) model.members[jam].erase(user);
        if (reserved) model.reservations.erase(user);
        break;
      }
      case 2: {  // ReserveSeat
        const absl::Duration ttl = absl::Milliseconds(1 + pick(20));
        CurrentJamResult result = jams.ReserveSeat(user, ttl, now);
        if (std::optional<std::string> home = model.MemberOf(user)) {
          ASSERT_EQ(result.jam_id, *home);
          ASSERT_EQ(result.reservation_expires, absl::InfinitePast());
          break;
        }
        std::optional<std::string> previous;
        if (model.reservations.count(user)) {
          previous = model.reservations[user].jam;
          model.reservations.erase(user);
        }
        std::optional<std::string> target = model.Best();
        if (!target) target = previous;
        if (target) {
          ASSERT_EQ(result.jam_id, *target);
          ASSERT_FALSE(result.new_jam);
        } else {
          ASSERT_TRUE(result.new_jam);
          target = result.jam_id;
        }
        ASSERT_EQ(result.reservation_expires, now + ttl);
        model.reservations[user] = {*target, now + ttl};
        break;
      }
      case 3: {  // HasCapacity
        const bool unknown = model.Occupancy(jam) == 0;
        const bool own =
            (model.Members(jam) && model.members[jam].count(user)) ||
            (model.reservations.count(user) &&
             model.reservations[user].jam == jam);
        ASSERT_EQ(jams.HasCapacity(jam, user, now).has_capacity,
                  unknown || own || model.Occupancy(jam) < kMax);
        break;
      }
      default: {  // AddUser
        const bool member =
            model.Members(jam) && model.members[jam].count(user);
        const bool reserved = model.reservations.count(user) &&
                              model.reservations[user].jam == jam;
        const bool room = model.Occupancy(jam) < kMax;
        const std::optional<std::string> redirect = model.Best();
        AddUserResult result = jams.AddUser(jam, user, now);
        ASSERT_EQ(result.added, member || reserved || room);
        if (!result.added) {
          ASSERT_NE(result.redirect_jam_id, jam);
          if (redirect) {
            ASSERT_EQ(result.redirect_jam_id, *redirect);
          }
        } else if (!member) {
          model.Leave(user);
          model.members[jam].insert(user);
        }
        break;
      }
    }

    // Every step: CurrentJam and Stats agree with the model.
    const std::optional<std::string> best = model.Best();
    CurrentJamResult current = jams.CurrentJam(now);
    if (best) {
      ASSERT_EQ(current.jam_id, *best);
      ASSERT_EQ(current.user_count, model.Members(*best));
    } else {
      ASSERT_TRUE(current.new_jam);
    }
    CollectionSnapshot stats = jams.Snapshot(now);
    const std::set<std::string> live = model.Jams();
    uint64_t users = 0, full = 0;
    for (const std::string& j : live) {
      users += model.Members(j);
      full += model.Members(j) >= kMax;
    }
    ASSERT_EQ(stats.jam_count, live.size());
    ASSERT_EQ(stats.user_count, users);
    ASSERT_EQ(stats.full_jam_count, full);
    ASSERT_EQ(stats.reservation_count, model.reservations.size());
    // The monitoring totals: jams by member count, overfilled last.
    CollectionSnapshot counters = jams.Snapshot(now);
    std::vector<uint64_t> by_members(kMax + 2, 0);
    for (const std::string& j : live) {
      ++by_members[std::min<size_t>(model.Members(j), kMax + 1)];
    }
    ASSERT_EQ(counters.jams_by_members, by_members);
    ASSERT_EQ(counters.jam_count, live.size());
    // Every jam's members and reserved seats, in id order.
    JamPage page = jams.ListJams("", 1000, now);
    ASSERT_EQ(page.jams.size(), live.size());
    auto it = live.begin();
    for (const JamSnapshot& snapshot : page.jams) {
      ASSERT_EQ(snapshot.jam_id, *it);
      const std::vector<std::string> expected(model.members[*it].begin(),
                                              model.members[*it].end());
      ASSERT_EQ(snapshot.user_ids, expected);
      ASSERT_EQ(snapshot.reserved_count, model.Reserved(*it));
      ++it;
    }
    // Paging after each listed id, and after ids between them, resumes at
    // the next jam in id order.
    for (const std::string& after : live) {
      for (const std::string& probe : {after, after + "!"}) {
        JamPage next = jams.ListJams(probe, 1, now);
        auto expected = live.upper_bound(probe);
        if (expected == live.end()) {
          ASSERT_TRUE(next.jams.empty());
        } else {
          ASSERT_EQ(next.jams.size(), 1u);
          ASSERT_EQ(next.jams[0].jam_id, *expected);
          ASSERT_EQ(next.has_more, std::next(expected) != live.end());
        }
      }
    }
  }
}

std::string ParamName(
    const ::testing::TestParamInfo<ModelTest::ParamType>& info) {
  const auto [seed, style] = info.param;
  switch (style) {
    case IdStyle::kShort:
      return absl::StrCat("Seed", seed, "Short");
    case IdStyle::kUuid:
      return absl::StrCat("Seed", seed, "Uuid");
    case IdStyle::kLong:
      return absl::StrCat("Seed", seed, "Long");
    case IdStyle::kMixed:
      return absl::StrCat("Seed", seed, "Mixed");
  }
  return "";
}

INSTANTIATE_TEST_SUITE_P(
    SeedsAndIdStyles, ModelTest,
    ::testing::Combine(::testing::Range(1, 6),
                       ::testing::Values(IdStyle::kShort, IdStyle::kUuid,
                                         IdStyle::kLong, IdStyle::kMixed)),
    ParamName);

}  // namespace
}  // namespace jambalancer
