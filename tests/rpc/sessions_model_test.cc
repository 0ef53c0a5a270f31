// Cross-checks the front ends' sessions against a brute-force model over
// long random sequences: Sync, KeepAlive, EndSession and the owner-scoped
// calls (AddUser, Refresh, RemoveUser) of three front ends and anonymous
// callers, applied as the server applies them (Apply on a PoolState), with a
// clock that jumps forward so that leases run out. Expiry is driven the way
// JamPool drives it: lapsed sessions are expired, their front ends queued,
// and their users removed in small steps between the other calls.
//
// Rules checked at every step: a call of a front end without a live session
// fails with FAILED_PRECONDITION and changes nothing; every successful call
// of a front end renews its lease to now + its TTL; Sync makes the listed
// jams the front end's whole truth; scoped Refresh and RemoveUser touch only
// the caller's members; AddUser moves a member to the caller; when a lease
// runs out every member of that front end goes and the session is
// forgotten; EndSession removes (and counts) them at once. The placement
// rules themselves (capacity, best jam) are the collection model's
// (tests/core/jam_collection_model_test.cc): here AddUser's `added` is
// taken as answered.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/jam_collection.h"
#include "server/rpc/commands.h"
#include "server/rpc/operations.h"
#include "server/runtime/pool_state.h"

namespace jambalancer {
namespace {

constexpr uint32_t kMax = 4;
constexpr int kJams = 6;
constexpr int kUsers = 14;

std::string JamId(int n) { return absl::StrCat("j", n); }
std::string UserId(int n) { return absl::StrCat("u", n); }

// Where a member is and who owns it ("" anonymous).
struct Place {
  std::string jam;
  std::string owner;
  bool operator==(const Place& other) const {
    return jam == other.jam && owner == other.owner;
  }
};

struct Model {
  struct Session {
    absl::Duration ttl;
    absl::Time expires;
  };
  std::map<std::string, Session> sessions;  // Not yet expired.
  std::map<std::string, Place> members;     // By user.
  // Front ends whose lease ran out and whose members are being removed.
  std::set<std::string> removing;

  bool IsLive(const std::string& frontend, absl::Time now) const {
    auto it = sessions.find(frontend);
    return it != sessions.end() && now < it->second.expires;
  }
  void Renew(const std::string& frontend, absl::Time now) {
    if (frontend.empty()) return;
    Session& session = sessions.at(frontend);
    session.expires = now + session.ttl;
  }
  void DropMembersOf(const std::string& frontend) {
    for (auto it = members.begin(); it != members.end();) {
      it = it->second.owner == frontend ? members.erase(it) : std::next(it);
    }
  }
  uint64_t MemberCount(const std::string& frontend) const {
    uint64_t n = 0;
    for (const auto& [user, place] : members) n += place.owner == frontend;
    return n;
  }
};

// Every member as the server lists it, through GetJam.
std::map<std::string, Place> Actual(PoolState& state, absl::Time now) {
  std::map<std::string, Place> actual;
  for (int j = 0; j < kJams; ++j) {
    v1::GetJamResponse jam;
    const std::string id = JamId(j);
    EXPECT_TRUE(Apply(GetJamCommand{id}, now, state, &jam).ok());
    for (const v1::JamMember& member : jam.members()) {
      actual[member.user_id()] = {id, member.frontend_id()};
    }
  }
  return actual;
}

class SessionsModelTest : public ::testing::TestWithParam<int> {};

TEST_P(SessionsModelTest, AgreesWithBruteForceModel) {
  const int seed = GetParam();
  std::mt19937 random(seed);
  auto pick = [&](int n) { return static_cast<int>(random() % n); };
  PoolState state(kMax);
  Model model;
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  const std::vector<std::string> frontends = {"fe-a", "fe-b", "fe-c"};
  int fenced = 0, expired = 0, ended = 0, synced = 0;
  // Front ends that ended their session, and whether EndSession answered.
  std::map<std::string, bool> ends;
  // Once a front end's removal is done, its EndSession (if any) answered.
  auto check_answered = [&](const std::string& frontend) {
    auto it = ends.find(frontend);
    if (it == ends.end()) return;
    ASSERT_TRUE(it->second) << "EndSession of " << frontend << " unanswered";
    ends.erase(it);
  };

  for (int step = 0; step < 3000; ++step) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " step ", step));
    // Time: mostly small steps, sometimes a jump past a lease.
    now += pick(20) == 0 ? absl::Milliseconds(500 + pick(2500))
                         : absl::Milliseconds(pick(60));

    // The pool's timer: lapsed sessions expire and their front ends are
    // queued for removal ...
    for (const std::string& frontend : state.sessions.Expire(now)) {
      state.removals.emplace_back(frontend, /*expired=*/true);
      model.sessions.erase(frontend);
      model.removing.insert(frontend);
      ++expired;
    }
    // ... which goes on in small steps between the calls.
    for (int n = pick(3); n > 0 && !state.removals.empty(); --n) {
      FrontEndRemovalTask& task = state.removals.front();
      const std::string frontend = task.frontend_id;
      const FrontEndRemoval removal =
          state.jams.RemoveFrontEnd(frontend, 1 + pick(3), now);
      state.CountRemoved(task, removal);
      if (removal.done) {
        task.Finish(task.members_removed);
        state.removals.pop_front();
        model.DropMembersOf(frontend);
        model.removing.erase(frontend);
        ASSERT_NO_FATAL_FAILURE(check_answered(frontend));
      }
    }

    const std::string frontend =
        pick(5) == 0 ? "" : frontends[pick(static_cast<int>(frontends.size()))];
    const std::string jam = JamId(pick(kJams));
    const std::string user = UserId(pick(kUsers));
    const bool live = model.IsLive(frontend, now);
    const std::map<std::string, Place> before = Actual(state, now);
    // Which members of a front end being removed are gone already is the
    // removal's choice: the model follows the server there.
    for (auto it = model.members.begin(); it != model.members.end();) {
      it = model.removing.count(it->second.owner) && !before.count(it->first)
               ? model.members.erase(it)
               : std::next(it);
    }
    absl::Status status;
    std::string call;
    switch (pick(8)) {
      case 0: {  // Sync: 0-3 jams of 0-3 users.
        if (frontend.empty()) continue;
        SyncCommand command;
        command.frontend_id = frontend;
        command.lease_ttl = absl::Milliseconds(500 + pick(2500));
        std::vector<std::pair<std::string, std::vector<std::string>>> truth;
        for (int j = pick(4); j > 0; --j) {
          auto& [id, users] = truth.emplace_back(JamId(pick(kJams)),
                                                 std::vector<std::string>());
          for (int u = pick(4); u > 0; --u)
            users.push_back(UserId(pick(kUsers)));
        }
        for (const auto& [id, users] : truth) {
          command.user_lists.emplace_back(users.begin(), users.end());
        }
        for (size_t j = 0; j < truth.size(); ++j) {
          command.jams.push_back({truth[j].first, command.user_lists[j]});
        }
        call = absl::StrCat("Sync ", frontend);
        for (const auto& [id, users] : truth) {
          absl::StrAppend(&call, " ", id, ":[", absl::StrJoin(users, ","), "]");
        }
        SCOPED_TRACE(call);
        v1::SyncResponse response;
        status = Apply(command, now, state, &response);
        ASSERT_TRUE(status.ok()) << status;  // Sync is always accepted.
        // A front end still being removed is removed first.
        if (model.removing.erase(frontend)) {
          model.DropMembersOf(frontend);
          ASSERT_NO_FATAL_FAILURE(check_answered(frontend));
        }
        // Each listed user ends in the last jam listing it; the front end's
        // members listed nowhere go.
        std::map<std::string, std::string> last_jam;
        for (const auto& [id, users] : truth) {
          for (const std::string& u : users) last_jam[u] = id;
        }
        for (auto it = model.members.begin(); it != model.members.end();) {
          it = it->second.owner == frontend && !last_jam.count(it->first)
                   ? model.members.erase(it)
                   : std::next(it);
        }
        std::set<std::string> own_jams;
        for (const auto& [u, id] : last_jam) {
          model.members[u] = {id, frontend};
          own_jams.insert(id);
        }
        model.sessions[frontend] = {command.lease_ttl, now + command.lease_ttl};
        ASSERT_EQ(response.lease_expires_unix_ms(),
                  absl::ToUnixMillis(now + command.lease_ttl));
        ASSERT_EQ(response.user_count(), last_jam.size());
        ASSERT_EQ(response.jam_count(), own_jams.size());
        ++synced;
        break;
      }
      case 1: {  // KeepAlive
        if (frontend.empty()) continue;
        call = absl::StrCat("KeepAlive ", frontend);
        SCOPED_TRACE(call);
        v1::KeepAliveResponse response;
        status = Apply(KeepAliveCommand{frontend}, now, state, &response);
        if (status.ok()) {
          model.Renew(frontend, now);
          ASSERT_EQ(response.lease_expires_unix_ms(),
                    absl::ToUnixMillis(model.sessions.at(frontend).expires));
        }
        break;
      }
      case 2: {  // EndSession: queued like an expiry, answered when done.
        if (frontend.empty() || pick(4) > 0) continue;  // Rarely.
        call = absl::StrCat("EndSession ", frontend);
        SCOPED_TRACE(call);
        const uint64_t owned = model.MemberCount(frontend);
        status =
            Apply(EndSessionCommand{frontend}, now, state,
                  [&ends, frontend, owned](absl::StatusOr<uint64_t> removed) {
                    // All of them, unless some moved away meanwhile.
                    EXPECT_TRUE(removed.ok());
                    EXPECT_LE(*removed, owned);
                    ends[frontend] = true;
                  });
        if (status.ok()) {
          model.sessions.erase(frontend);
          model.removing.insert(frontend);
          ends[frontend] = false;
          ++ended;
        }
        break;
      }
      case 3:
      case 4: {  // AddUser
        call = absl::StrCat("AddUser ", jam, " ", user, " by '", frontend, "'");
        SCOPED_TRACE(call);
        v1::AddUserResponse response;
        status =
            Apply(AddUserCommand{jam, user, frontend}, now, state, &response);
        if (status.ok()) {
          model.Renew(frontend, now);
          auto it = model.members.find(user);
          const bool member =
              it != model.members.end() && it->second.jam == jam;
          if (member) {
            ASSERT_TRUE(response.added());
            if (!frontend.empty()) it->second.owner = frontend;
          } else if (response.added()) {
            model.members[user] = {jam, frontend};
          }
        }
        break;
      }
      case 5:
      case 6: {  // Refresh: 0-4 users.
        std::vector<std::string> users;
        for (int u = pick(5); u > 0; --u) users.push_back(UserId(pick(kUsers)));
        call = absl::StrCat("Refresh ", jam, " [", absl::StrJoin(users, ","),
                            "] by '", frontend, "'");
        SCOPED_TRACE(call);
        RefreshCommand command{jam, {users.begin(), users.end()}, frontend};
        v1::RefreshResponse response;
        status = Apply(command, now, state, &response);
        if (status.ok()) {
          model.Renew(frontend, now);
          const std::set<std::string> listed(users.begin(), users.end());
          for (auto it = model.members.begin(); it != model.members.end();) {
            const bool replaced =
                it->second.jam == jam &&
                (frontend.empty() || it->second.owner == frontend) &&
                !listed.count(it->first);
            it = replaced ? model.members.erase(it) : std::next(it);
          }
          for (const std::string& u : listed)
            model.members[u] = {jam, frontend};
        }
        break;
      }
      default: {  // RemoveUser
        call =
            absl::StrCat("RemoveUser ", jam, " ", user, " by '", frontend, "'");
        SCOPED_TRACE(call);
        v1::RemoveUserResponse response;
        status = Apply(RemoveUserCommand{jam, user, frontend}, now, state,
                       &response);
        if (status.ok()) {
          model.Renew(frontend, now);
          auto it = model.members.find(user);
          const bool removable =
              it != model.members.end() && it->second.jam == jam &&
              (frontend.empty() || it->second.owner == frontend);
          ASSERT_EQ(response.removed(), removable);
          if (removable) model.members.erase(it);
        }
        break;
      }
    }
    SCOPED_TRACE(absl::StrCat("after ", call));

    // Fencing: a front end without a live session is refused, and nothing
    // changes; with one, the call goes through.
    if (!frontend.empty() && !absl::StartsWith(call, "Sync")) {
      if (live) {
        ASSERT_TRUE(status.ok()) << status;
      } else {
        ASSERT_EQ(status.code(), absl::StatusCode::kFailedPrecondition)
            << status;
        ASSERT_NE(status.message().find(frontend), absl::string_view::npos);
        ASSERT_TRUE(Actual(state, now) == before);
        ++fenced;
      }
    }

    // Every member where the model has it, with its owner.
    const std::map<std::string, Place> actual = Actual(state, now);
    for (const auto& [u, place] : model.members) {
      SCOPED_TRACE(absl::StrCat("user ", u, " in ", place.jam, " of '",
                                place.owner, "'"));
      auto it = actual.find(u);
      ASSERT_NE(it, actual.end());
      ASSERT_TRUE(it->second == place)
          << "server: " << it->second.jam << " of '" << it->second.owner << "'";
    }
    for (const auto& [u, place] : actual) {
      ASSERT_TRUE(model.members.count(u)) << "unexpected member " << u;
    }
    // The sessions, each with the lease the model renewed.
    v1::ListSessionsResponse listed;
    ASSERT_TRUE(Apply(ListSessionsCommand{}, now, state, &listed).ok());
    ASSERT_EQ(static_cast<size_t>(listed.sessions_size()),
              model.sessions.size());
    for (const v1::Session& session : listed.sessions()) {
      auto it = model.sessions.find(session.frontend_id());
      ASSERT_NE(it, model.sessions.end()) << session.frontend_id();
      ASSERT_EQ(session.lease_expires_unix_ms(),
                absl::ToUnixMillis(it->second.expires));
      if (model.IsLive(session.frontend_id(), now)) {
        ASSERT_EQ(session.member_count(),
                  model.MemberCount(session.frontend_id()));
      }
    }
  }
  // The sequence met every rule often enough to mean something.
  EXPECT_GT(fenced, 50);
  EXPECT_GT(expired, 10);
  EXPECT_GT(ended, 3);
  EXPECT_GT(synced, 50);
}

INSTANTIATE_TEST_SUITE_P(Seeds, SessionsModelTest, ::testing::Range(1, 9));

}  // namespace
}  // namespace jambalancer
