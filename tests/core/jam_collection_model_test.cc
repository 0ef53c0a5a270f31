// Cross-checks JamCollection against a brute-force model of its rules over
// long random sequences of every operation, with time moving forward and
// reservations expiring. The model scans everything on every step; the
// collection must agree while using its indexes. With front ends, every
// member and reservation also has an owner, and the sequence adds the
// owner-scoped calls, ReplaceFrontEnd (Sync) and RemoveFrontEnd.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
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
    std::string owner;  // Its front end; "" anonymous.
  };
  std::map<std::string, std::set<std::string>> members;  // May hold empties.
  std::map<std::string, std::string> owners;  // Of each member; "" anonymous.
  std::map<std::string, Reservation> reservations;  // By user.

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
  bool IsMember(const std::string& jam, const std::string& user) const {
    auto it = members.find(jam);
    return it != members.end() && it->second.count(user);
  }
  bool HoldsSeat(const std::string& jam, const std::string& user) const {
    auto it = reservations.find(user);
    return it != reservations.end() && it->second.jam == jam;
  }
  // The owner of the user's membership or reservation in `jam`; none if it
  // has neither there.
  std::optional<std::string> OwnerIn(const std::string& jam,
                                     const std::string& user) const {
    if (IsMember(jam, user)) return owners.at(user);
    if (HoldsSeat(jam, user)) return reservations.at(user).owner;
    return std::nullopt;
  }
  void Leave(const std::string& user) {
    for (auto& [jam, users] : members) users.erase(user);
    owners.erase(user);
    reservations.erase(user);
  }
  // Makes the user a member of `jam` owned by `owner`, leaving its jam or
  // reservation.
  void Join(const std::string& jam, const std::string& user,
            const std::string& owner) {
    Leave(user);
    members[jam].insert(user);
    owners[user] = owner;
  }
  // What `frontend` owns: members, reservations, jams with its members.
  FrontEndCounts CountsOf(const std::string& frontend) const {
    FrontEndCounts counts;
    std::set<std::string> jams;
    for (const auto& [user, owner] : owners) {
      if (owner != frontend) continue;
      ++counts.member_count;
      jams.insert(*MemberOf(user));
    }
    counts.jam_count = jams.size();
    for (const auto& [user, r] : reservations) {
      counts.reservation_count += r.owner == frontend;
    }
    return counts;
  }
  // The users holding a seat in `jam` owned by `frontend`.
  std::vector<std::string> SeatsOf(const std::string& frontend,
                                   const std::string& jam) const {
    std::vector<std::string> users;
    for (const auto& [user, r] : reservations) {
      if (r.owner == frontend && r.jam == jam) users.push_back(user);
    }
    return users;
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

// Whether the sequence also runs the calls of front ends. Without, every
// call is anonymous and the random sequence is the one it always was.
enum class FrontEnds { kNone, kThree };

class ModelTest
    : public ::testing::TestWithParam<std::tuple<int, IdStyle, FrontEnds>> {};

void AssertCounts(const FrontEndCounts& actual,
                  const FrontEndCounts& expected) {
  ASSERT_EQ(actual.member_count, expected.member_count);
  ASSERT_EQ(actual.reservation_count, expected.reservation_count);
  ASSERT_EQ(actual.jam_count, expected.jam_count);
}

TEST_P(ModelTest, AgreesWithBruteForceModel) {
  const auto [seed, style, frontends] = GetParam();
  const bool with_frontends = frontends == FrontEnds::kThree;
  JamCollection jams(kMax);
  Model model;
  std::mt19937 random(seed);
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  // The front ends' ids (anonymous calls pass "").
  std::vector<std::string> frontend_ids;
  for (int n = 0; n < 3; ++n) frontend_ids.push_back(Id(style, 'f', n));

  // Calls RemoveFrontEnd(frontend, limit) once and checks what it says it
  // removed against what the front end owns in the model. Which of its users
  // go is the collection's choice: members removed are read back from
  // ListJams and dropped from the model; reservations removed are counted
  // per jam into `unresolved` (their holders are not visible), for the
  // caller to settle.
  auto remove_step = [&](const std::string& frontend, size_t limit,
                         std::map<std::string, size_t>& unresolved,
                         bool& done) {
    std::map<std::string, std::string> own_members;  // User -> jam.
    for (const auto& [user, owner] : model.owners) {
      if (owner == frontend) own_members[user] = *model.MemberOf(user);
    }
    std::map<std::string, size_t> own_seats;  // Jam -> seats not yet gone.
    size_t seats = 0;
    for (const auto& [user, r] : model.reservations) {
      if (r.owner == frontend) ++own_seats[r.jam], ++seats;
    }
    for (const auto& [jam, gone] : unresolved) {
      own_seats[jam] -= gone;
      seats -= gone;
    }
    const size_t owned = own_members.size() + seats;
    SCOPED_TRACE(absl::StrCat("limit ", limit));
    const FrontEndRemoval removal = jams.RemoveFrontEnd(frontend, limit, now);
    const size_t removed = std::min(limit, owned);
    ASSERT_EQ(removal.members_removed + removal.reservations_removed, removed);
    ASSERT_EQ(removal.done, removed == owned);
    done = removal.done;

    std::map<std::string, JamSnapshot> listed;
    for (JamSnapshot& snapshot : jams.ListJams("", 1000, now).jams) {
      listed[snapshot.jam_id] = std::move(snapshot);
    }
    uint64_t members_gone = 0;
    for (const auto& [user, jam] : own_members) {
      auto it = listed.find(jam);
      if (it != listed.end() &&
          std::binary_search(it->second.user_ids.begin(),
                             it->second.user_ids.end(), user)) {
        continue;
      }
      model.members[jam].erase(user);
      model.owners.erase(user);
      ++members_gone;
    }
    ASSERT_EQ(members_gone, removal.members_removed);
    uint64_t seats_gone = 0;
    for (const auto& [jam, count] : own_seats) {
      auto it = listed.find(jam);
      const size_t left = it == listed.end() ? 0 : it->second.reserved_count;
      const size_t before = model.Reserved(jam) - unresolved[jam];
      ASSERT_LE(left, before) << jam;
      ASSERT_LE(before - left, count) << jam;  // Only its own seats go.
      unresolved[jam] += before - left;
      seats_gone += before - left;
    }
    ASSERT_EQ(seats_gone, removal.reservations_removed);
  };

  for (int step = 0; step < 4000; ++step) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " step ", step));
    // With front ends time runs slower, so that seats last and pile up.
    now += absl::Microseconds(pick(4) * (with_frontends ? 250 : 1000));
    model.Expire(now);
    std::string jam = Id(style, 'j', pick(8));
    std::string user = Id(style, 'u', pick(16));
    // Draws only with front ends, so that the sequence without them stays
    // what it was. Often a user placed already, so that owners are met.
    if (with_frontends && pick(2) == 0) {
      std::vector<std::pair<std::string, std::string>> placed;  // Jam, user.
      for (const auto& [j, users] : model.members) {
        for (const std::string& u : users) placed.emplace_back(j, u);
      }
      for (const auto& [u, r] : model.reservations) {
        placed.emplace_back(r.jam, u);
      }
      if (!placed.empty()) {
        std::tie(jam, user) = placed[pick(static_cast<int>(placed.size()))];
      }
    }
    // The caller: anonymous or one of the front ends.
    const std::string frontend =
        with_frontends && pick(4) > 0 ? frontend_ids[pick(3)] : "";
    // The call: one of the six (anonymous ones only, without front ends),
    // or one of the front ends' own.
    const int op = !with_frontends || pick(4) > 0 ? pick(6) : 6 + pick(5);
    std::string call;  // What this step called, for failure messages.
    switch (op) {
      case 0: {  // Refresh
        std::vector<std::string> names;
        for (int i = pick(kMax + 3); i > 0; --i) {
          names.push_back(Id(style, 'u', pick(16)));
        }
        std::vector<absl::string_view> views(names.begin(), names.end());
        const std::set<std::string> listed(names.begin(), names.end());
        call = absl::StrCat("Refresh ", jam, " [", absl::StrJoin(names, " "),
                            "] by '", frontend, "'");
        SCOPED_TRACE(call);
        if (frontend.empty()) {
          ASSERT_EQ(jams.Refresh(jam, views, now), listed.size());
          for (const std::string& u : model.members[jam]) model.owners.erase(u);
          for (const std::string& u : listed) model.Leave(u);
          model.members[jam] = listed;
          for (const std::string& u : listed) model.owners[u] = "";
          break;
        }
        // Scoped: only the front end's own members of the jam are replaced.
        const uint32_t count = jams.Refresh(jam, views, now, frontend);
        const std::set<std::string> before = model.members[jam];
        for (const std::string& u : before) {
          if (model.owners[u] == frontend && !listed.count(u)) {
            model.members[jam].erase(u);
            model.owners.erase(u);
          }
        }
        for (const std::string& u : listed) model.Join(jam, u, frontend);
        ASSERT_EQ(count, model.Members(jam));
        break;
      }
      case 1: {  // RemoveUser
        call =
            absl::StrCat("RemoveUser ", jam, " ", user, " by '", frontend, "'");
        SCOPED_TRACE(call);
        const bool member =
            model.Members(jam) && model.members[jam].count(user);
        const bool reserved = model.reservations.count(user) &&
                              model.reservations[user].jam == jam;
        // With a front end, only its own user is removed.
        const bool owned =
            frontend.empty() || model.OwnerIn(jam, user) == frontend;
        const RemoveUserResult result =
            jams.RemoveUser(jam, user, now, frontend);
        ASSERT_EQ(result.removed, (member || reserved) && owned);
        if (result.removed) {
          if (member) model.members[jam].erase(user), model.owners.erase(user);
          if (reserved) model.reservations.erase(user);
        }
        ASSERT_EQ(result.user_count, model.Members(jam));
        break;
      }
      case 2: {  // ReserveSeat
        // With front ends, often one of the users only seats bring in, so
        // that seats pile up.
        if (with_frontends && pick(2) == 0) user = Id(style, 'u', 16 + pick(8));
        const absl::Duration ttl =
            absl::Milliseconds(1 + pick(with_frontends ? 60 : 20));
        call = absl::StrCat("ReserveSeat ", user, " by '", frontend, "'");
        SCOPED_TRACE(call);
        CurrentJamResult result = jams.ReserveSeat(user, ttl, now, frontend);
        if (std::optional<std::string> home = model.MemberOf(user)) {
          ASSERT_EQ(result.jam_id, *home);
          ASSERT_EQ(result.reservation_expires, absl::InfinitePast());
          break;  // A member keeps its seat and its owner.
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
        model.reservations[user] = {*target, now + ttl, frontend};
        break;
      }
      case 3: {  // HasCapacity
        call = absl::StrCat("HasCapacity ", jam, " ", user);
        SCOPED_TRACE(call);
        const bool unknown = model.Occupancy(jam) == 0;
        const bool own =
            (model.Members(jam) && model.members[jam].count(user)) ||
            (model.reservations.count(user) &&
             model.reservations[user].jam == jam);
        ASSERT_EQ(jams.HasCapacity(jam, user, now).has_capacity,
                  unknown || own || model.Occupancy(jam) < kMax);
        break;
      }
      case 4:
      case 5: {  // AddUser
        call = absl::StrCat("AddUser ", jam, " ", user, " by '", frontend, "'");
        SCOPED_TRACE(call);
        const bool member =
            model.Members(jam) && model.members[jam].count(user);
        const bool reserved = model.reservations.count(user) &&
                              model.reservations[user].jam == jam;
        const bool room = model.Occupancy(jam) < kMax;
        const std::optional<std::string> redirect = model.Best();
        AddUserResult result = jams.AddUser(jam, user, now, frontend);
        ASSERT_EQ(result.added, member || reserved || room);
        if (!result.added) {
          ASSERT_NE(result.redirect_jam_id, jam);
          if (redirect) {
            ASSERT_EQ(result.redirect_jam_id, *redirect);
          }
        } else if (!member) {
          model.Join(jam, user, frontend);  // Placed: owned by the caller.
        } else if (!frontend.empty()) {
          model.owners[user] = frontend;  // Reconnected to this front end.
        }
        ASSERT_EQ(result.user_count, model.Members(jam));
        break;
      }
      case 6:
      case 7: {  // ReplaceFrontEnd
        const std::string& syncing = frontend_ids[pick(3)];
        // Users to list: anyone, some listed already in this call, some
        // owned by others (or anonymous).
        std::vector<std::string> others;
        for (const auto& [u, owner] : model.owners) {
          if (owner != syncing) others.push_back(u);
        }
        for (const auto& [u, r] : model.reservations) {
          if (r.owner != syncing) others.push_back(u);
        }
        std::vector<std::string> jam_ids;
        std::vector<std::vector<std::string>> names;
        std::vector<std::string> all_listed;
        for (int j = pick(4); j > 0; --j) {
          jam_ids.push_back(Id(style, 'j', pick(8)));
          std::vector<std::string>& listed = names.emplace_back();
          for (int i = pick(kMax + 2); i > 0; --i) {
            const int kind = pick(4);
            if (kind == 0 && !all_listed.empty()) {
              listed.push_back(
                  all_listed[pick(static_cast<int>(all_listed.size()))]);
            } else if (kind == 1 && !others.empty()) {
              listed.push_back(others[pick(static_cast<int>(others.size()))]);
            } else {
              listed.push_back(Id(style, 'u', pick(16)));
            }
            all_listed.push_back(listed.back());
          }
        }
        std::vector<std::vector<absl::string_view>> views;
        for (const std::vector<std::string>& listed : names) {
          views.emplace_back(listed.begin(), listed.end());
        }
        std::vector<JamMembers> truth;
        call = absl::StrCat("ReplaceFrontEnd ", syncing);
        for (size_t j = 0; j < jam_ids.size(); ++j) {
          truth.push_back({jam_ids[j], views[j]});
          absl::StrAppend(&call, " ", jam_ids[j], ":[",
                          absl::StrJoin(names[j], " "), "]");
        }
        SCOPED_TRACE(call);
        const FrontEndCounts counts = jams.ReplaceFrontEnd(syncing, truth, now);
        // Each listed user ends in the last jam that lists it; the front
        // end's members listed nowhere go; its reservations of users not
        // listed stay.
        std::map<std::string, std::string> last_jam;
        for (size_t j = 0; j < jam_ids.size(); ++j) {
          for (const std::string& u : names[j]) last_jam[u] = jam_ids[j];
        }
        const std::map<std::string, std::string> owners = model.owners;
        for (const auto& [u, owner] : owners) {
          if (owner == syncing && !last_jam.count(u)) model.Leave(u);
        }
        for (const auto& [u, j] : last_jam) model.Join(j, u, syncing);
        ASSERT_NO_FATAL_FAILURE(AssertCounts(counts, model.CountsOf(syncing)));
        break;
      }
      case 8:
      case 9: {  // RemoveFrontEnd, one bounded step among the other calls.
        const std::string& leaving = frontend_ids[pick(3)];
        call = absl::StrCat("RemoveFrontEnd ", leaving, " once");
        SCOPED_TRACE(call);
        std::map<std::string, size_t> unresolved;
        bool done = false;
        ASSERT_NO_FATAL_FAILURE(
            remove_step(leaving, 1 + pick(5), unresolved, done));
        for (const auto& [j, gone] : unresolved) {
          const std::vector<std::string> seats = model.SeatsOf(leaving, j);
          if (gone == 0) continue;
          if (gone < seats.size()) {
            // Which of them went is not visible: ask for each to be
            // released; those already gone are not found.
            size_t missing = 0;
            for (const std::string& u : seats) {
              missing += !jams.RemoveUser(j, u, now, leaving).removed;
            }
            ASSERT_EQ(missing, gone) << j;
          }
          for (const std::string& u : seats) model.reservations.erase(u);
        }
        break;
      }
      default: {  // RemoveFrontEnd in bounded steps until it is done.
        const std::string& leaving = frontend_ids[pick(3)];
        call = absl::StrCat("RemoveFrontEnd ", leaving, " until done");
        SCOPED_TRACE(call);
        std::map<std::string, size_t> unresolved;
        bool done = false;
        for (int calls = 0; !done; ++calls) {
          ASSERT_LE(calls, 4 * 16) << "RemoveFrontEnd never done";
          ASSERT_NO_FATAL_FAILURE(
              remove_step(leaving, 1 + pick(5), unresolved, done));
        }
        for (const auto& [j, gone] : unresolved) {
          const std::vector<std::string> seats = model.SeatsOf(leaving, j);
          ASSERT_EQ(gone, seats.size()) << j;
          for (const std::string& u : seats) model.reservations.erase(u);
        }
        ASSERT_NO_FATAL_FAILURE(
            AssertCounts(model.CountsOf(leaving), FrontEndCounts{}));
        break;
      }
    }

    // Every step: CurrentJam and Stats agree with the model.
    SCOPED_TRACE(absl::StrCat("after ", call));
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
    // What each front end owns; anonymous users count for none.
    for (const std::string& f : frontend_ids) {
      SCOPED_TRACE(absl::StrCat("front end ", f));
      ASSERT_NO_FATAL_FAILURE(
          AssertCounts(jams.CountsOf(f), model.CountsOf(f)));
    }
    ASSERT_NO_FATAL_FAILURE(AssertCounts(jams.CountsOf(""), FrontEndCounts{}));
  }
}

std::string ParamName(
    const ::testing::TestParamInfo<ModelTest::ParamType>& info) {
  const auto [seed, style, frontends] = info.param;
  const char* suffix = frontends == FrontEnds::kThree ? "FrontEnds" : "";
  switch (style) {
    case IdStyle::kShort:
      return absl::StrCat("Seed", seed, "Short", suffix);
    case IdStyle::kUuid:
      return absl::StrCat("Seed", seed, "Uuid", suffix);
    case IdStyle::kLong:
      return absl::StrCat("Seed", seed, "Long", suffix);
    case IdStyle::kMixed:
      return absl::StrCat("Seed", seed, "Mixed", suffix);
  }
  return "";
}

// Anonymous calls only: the sequences this test always ran.
INSTANTIATE_TEST_SUITE_P(
    SeedsAndIdStyles, ModelTest,
    ::testing::Combine(::testing::Range(1, 6),
                       ::testing::Values(IdStyle::kShort, IdStyle::kUuid,
                                         IdStyle::kLong, IdStyle::kMixed),
                       ::testing::Values(FrontEnds::kNone)),
    ParamName);

// Three front ends and anonymous callers, with Sync and RemoveFrontEnd.
INSTANTIATE_TEST_SUITE_P(
    FrontEnds, ModelTest,
    ::testing::Combine(::testing::Range(1, 6),
                       ::testing::Values(IdStyle::kShort, IdStyle::kUuid,
                                         IdStyle::kLong, IdStyle::kMixed),
                       ::testing::Values(FrontEnds::kThree)),
    ParamName);

}  // namespace
}  // namespace jambalancer
