// Fuzzes a pool's state (the jams and the front ends' sessions) with a
// stream of operations decoded from the input, applied as the server
// applies them (typed commands, Apply on a PoolState) and as JamPool drives
// it (its timer expires reservations and lapsed leases, queueing their
// front ends, whose users are then removed in steps between the calls).
//
// Input, read with FuzzedDataProvider: max_users (1 to 8), whether a
// resync window is open at the start, then operations, each an opcode and
// its arguments: clock steps, the pool's timer and removal steps,
// CurrentJam (with reservations), Refresh, RemoveUser (with held seats),
// HasCapacity, AddUser, Sync, KeepAlive, EndSession, Batch. Ids come from
// small sets (and the fresh jam ids the pool answered), so that operations
// meet.
//
// After every step: the collection's and the sessions' promises
// (tests/testing/pool_invariants.h), and the step's own: a front end
// without a live session is refused with FAILED_PRECONDITION and nothing
// changes; no jam grows beyond max_users except by Refresh or Sync; AddUser
// adds exactly when HasCapacity said so (outside the resync window) and a
// refusal changes nothing; what Refresh, Sync, RemoveUser and CurrentJam
// place is where they say; every EndSession is answered exactly once, when
// the front end owns nothing any more.

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/rpc/commands.h"
#include "server/rpc/operations.h"
#include "server/runtime/pool_state.h"
#include "tests/fuzz/fuzz_require.h"
#include "tests/testing/pool_invariants.h"

namespace jambalancer {
namespace {

constexpr int kJams = 6;
constexpr int kUsers = 12;
constexpr int kMaxSteps = 96;
const std::vector<std::string>& FrontEnds() {
  static const auto* frontends =
      new std::vector<std::string>{"fe-a", "fe-b", "fe-c"};
  return *frontends;
}

bool IsMember(const testing::PoolView& view, const std::string& jam,
              const std::string& user, std::string* owner = nullptr) {
  auto it = view.find(jam);
  if (it == view.end()) return false;
  auto member = it->second.members.find(user);
  if (member == it->second.members.end()) return false;
  if (owner != nullptr) *owner = member->second;
  return true;
}

// The jam the user is a member of; "" if none.
std::string JamOf(const testing::PoolView& view, const std::string& user) {
  for (const auto& [id, jam] : view) {
    if (jam.members.count(user)) return id;
  }
  return "";
}

size_t OccupancyOf(const testing::PoolView& view, const std::string& jam) {
  auto it = view.find(jam);
  return it == view.end() ? 0 : it->second.occupancy();
}

class PoolFuzz {
 public:
  PoolFuzz(const uint8_t* data, size_t size) : in_(data, size) {}

  void Run() {
    const uint32_t max_users = 1 + in_.ConsumeIntegralInRange<uint32_t>(0, 7);
    state_ = std::make_unique<PoolState>(max_users);
    const uint8_t resync = in_.ConsumeIntegral<uint8_t>();
    if (resync & 1) {
      resync_until_ = now_ + absl::Milliseconds(100 * (resync >> 1));
      state_->jams.StartResync(resync_until_, absl::Seconds(2));
    }
    Check(&before_);
    for (int step = 0; step < kMaxSteps && in_.remaining_bytes() > 0; ++step) {
      Step();
      Check(&before_);  // The view before the next step (same time).
    }
    // Everything lapses: the pool's timer and its removals run to the end.
    now_ += absl::Hours(1);
    Timer();
    while (!state_->removals.empty()) RemovalStep(/*limit=*/3);
    testing::PoolView view;
    Check(&view);
    for (const auto& [id, jam] : view) {
      FUZZ_REQUIRE(jam.reserved == 0);
      for (const auto& [user, owner] : jam.members) FUZZ_REQUIRE(owner.empty());
    }
    for (const auto& [frontend, answers] : ends_) FUZZ_REQUIRE(answers == 1);
  }

 private:
  // --- Ids and arguments from the input ------------------------------------

  std::string Jam() {
    if (!fresh_jams_.empty() && in_.ConsumeIntegralInRange(0, 3) == 0) {
      return fresh_jams_[in_.ConsumeIntegralInRange<size_t>(
          0, fresh_jams_.size() - 1)];
    }
    return absl::StrCat("j", in_.ConsumeIntegralInRange(0, kJams - 1));
  }
  std::string User() {
    return absl::StrCat("u", in_.ConsumeIntegralInRange(0, kUsers - 1));
  }
  // "" (anonymous) or one of FrontEnds().
  std::string FrontEnd(bool anonymous_allowed = true) {
    const int n = static_cast<int>(FrontEnds().size());
    const int pick =
        in_.ConsumeIntegralInRange(anonymous_allowed ? -1 : 0, n - 1);
    return pick < 0 ? "" : FrontEnds()[static_cast<size_t>(pick)];
  }
  absl::Duration Millis(int from, int to) {
    return absl::Milliseconds(in_.ConsumeIntegralInRange(from, to));
  }
  void Remember(const std::string& jam) {
    if (fresh_jams_.size() < 8 &&
        std::find(fresh_jams_.begin(), fresh_jams_.end(), jam) ==
            fresh_jams_.end()) {
      fresh_jams_.push_back(jam);
    }
  }
  bool InResync() const { return now_ < resync_until_; }

  // --- The pool's own work (JamPool::Expire, JamPool::RemoveStep) ---------

  void Timer() {
    state_->jams.ExpireReservations(now_);
    for (std::string& frontend : state_->sessions.Expire(now_)) {
      ++state_->sessions_expired;
      state_->removals.emplace_back(std::move(frontend), /*expired=*/true);
    }
  }

  void RemovalStep(size_t limit) {
    if (state_->removals.empty()) return;
    FrontEndRemovalTask& task = state_->removals.front();
    const FrontEndRemoval step =
        state_->jams.RemoveFrontEnd(task.frontend_id, limit, now_);
    FUZZ_REQUIRE(step.members_removed + step.reservations_removed <= limit);
    state_->CountRemoved(task, step);
    if (!step.done) return;
    const FrontEndCounts left = state_->jams.CountsOf(task.frontend_id);
    FUZZ_REQUIRE(left.member_count == 0 && left.reservation_count == 0);
    task.Finish(task.members_removed);
    state_->removals.pop_front();
  }

  // --- One step ------------------------------------------------------------

  // REQUIRES: before_ is the view at now_ (Check stores it).
  void Step() {
    may_overfill_ = false;
    switch (in_.ConsumeIntegralInRange(0, 14)) {
      case 0:
        now_ += Millis(0, 300);
        break;
      case 1:
        now_ += Millis(500, 30'000);
        break;
      case 2:
        Timer();
        break;
      case 3:
        RemovalStep(in_.ConsumeIntegralInRange<size_t>(1, 5));
        break;
      case 4:
      case 5:
        CurrentJam();
        break;
      case 6:
        Refresh();
        break;
      case 7:
        RemoveUser();
        break;
      case 8:
        HasCapacity();
        break;
      case 9:
      case 10:
        AddUser();
        break;
      case 11:
        Sync();
        break;
      case 12:
        KeepAlive();
        break;
      case 13:
        EndSession();
        break;
      default:
        Batch();
        break;
    }
  }

  // Fencing: a named front end without a live session is refused and
  // nothing changes; else the call goes through.
  void CheckAdmitted(const absl::Status& status, bool live) {
    if (live) {
      FUZZ_REQUIRE(status.ok());
      return;
    }
    FUZZ_REQUIRE(status.code() == absl::StatusCode::kFailedPrecondition);
    FUZZ_REQUIRE(testing::ViewOf(state_->jams, now_) == before_);
  }
  bool Live(const std::string& frontend) const {
    return frontend.empty() || state_->sessions.IsLive(frontend, now_);
  }

  void CurrentJam() {
    CurrentJamCommand command;
    const std::string user = in_.ConsumeBool() ? User() : "";
    const std::string frontend = FrontEnd();
    command.user_id = user;
    command.frontend_id = frontend;
    if (!user.empty()) command.reservation_ttl = Millis(1, 5000);
    const bool live = Live(frontend);
    v1::CurrentJamResponse response;
    const absl::Status status = Apply(command, now_, *state_, &response);
    CheckAdmitted(status, live);
    if (!status.ok()) return;
    if (response.new_jam() && !user.empty()) Remember(response.jam_id());
    if (user.empty()) return;
    const testing::PoolView after = testing::ViewOf(state_->jams, now_);
    const std::string was = JamOf(before_, user);
    if (!was.empty()) {  // A member is answered its own jam.
      FUZZ_REQUIRE(response.jam_id() == was);
      FUZZ_REQUIRE(response.reservation_expires_unix_ms() == 0);
      FUZZ_REQUIRE(after == before_);
      return;
    }
    FUZZ_REQUIRE(response.reservation_expires_unix_ms() ==
                 static_cast<uint64_t>(
                     absl::ToUnixMillis(now_ + command.reservation_ttl)));
    FUZZ_REQUIRE(JamOf(after, user).empty());
    FUZZ_REQUIRE(
        state_->jams.HasCapacity(response.jam_id(), user, now_).has_capacity);
  }

  void Refresh() {
    const std::string jam = Jam();
    const std::string frontend = FrontEnd();
    std::vector<std::string> users;
    for (int n = in_.ConsumeIntegralInRange(0, 5); n > 0; --n) {
      users.push_back(User());
    }
    const bool live = Live(frontend);
    RefreshCommand command{jam, {users.begin(), users.end()}, frontend};
    v1::RefreshResponse response;
    const absl::Status status = Apply(command, now_, *state_, &response);
    may_overfill_ = true;
    CheckAdmitted(status, live);
    if (!status.ok()) return;
    const testing::PoolView after = testing::ViewOf(state_->jams, now_);
    const std::set<std::string> listed(users.begin(), users.end());
    for (const std::string& user : listed) {
      std::string owner;
      FUZZ_REQUIRE(IsMember(after, jam, user, &owner) && owner == frontend);
    }
    // Anonymous: the whole jam is replaced. A front end: its own members.
    auto it = after.find(jam);
    const size_t members = it == after.end() ? 0 : it->second.members.size();
    FUZZ_REQUIRE(response.user_count() == members);
    if (it == after.end()) return;
    for (const auto& [user, owner] : it->second.members) {
      if (frontend.empty() || owner == frontend) {
        FUZZ_REQUIRE(listed.count(user));
      }
    }
  }

  void RemoveUser() {
    const std::string jam = Jam();
    const std::string user = User();
    const std::string frontend = FrontEnd();
    const absl::Duration hold =
        in_.ConsumeBool() ? absl::ZeroDuration() : Millis(1, 5000);
    const bool live = Live(frontend);
    std::string owner;
    const bool member = IsMember(before_, jam, user, &owner);
    v1::RemoveUserResponse response;
    const absl::Status status = Apply(
        RemoveUserCommand{jam, user, frontend, hold}, now_, *state_, &response);
    CheckAdmitted(status, live);
    if (!status.ok()) return;
    const testing::PoolView after = testing::ViewOf(state_->jams, now_);
    FUZZ_REQUIRE(!IsMember(after, jam, user) || !response.removed());
    if (member) {
      const bool removable = frontend.empty() || owner == frontend;
      FUZZ_REQUIRE(response.removed() == removable);
      FUZZ_REQUIRE(IsMember(after, jam, user) == !removable);
      if (removable && hold > absl::ZeroDuration()) {
        FUZZ_REQUIRE(state_->jams.HasCapacity(jam, user, now_).has_capacity);
      }
    }
    if (!response.removed()) FUZZ_REQUIRE(after == before_);
  }

  void HasCapacity() {
    const std::string jam = Jam();
    const std::string user = in_.ConsumeBool() ? User() : "";
    v1::HasCapacityResponse response;
    FUZZ_REQUIRE(
        Apply(HasCapacityCommand{jam, user}, now_, *state_, &response).ok());
    FUZZ_REQUIRE(testing::ViewOf(state_->jams, now_) == before_);
    if (!user.empty() && IsMember(before_, jam, user)) {
      FUZZ_REQUIRE(response.has_capacity());
    }
    if (!InResync() && !before_.count(jam)) {
      FUZZ_REQUIRE(response.has_capacity());
    }
  }

  void AddUser() {
    const std::string jam = Jam();
    const std::string user = User();
    const std::string frontend = FrontEnd();
    const bool live = Live(frontend);
    // Member, seat holder, or room (outside the resync window).
    const bool could = before_.count(jam) == 0 ||
                       state_->jams.HasCapacity(jam, user, now_).has_capacity;
    std::string old_owner;
    const bool member = IsMember(before_, jam, user, &old_owner);
    v1::AddUserResponse response;
    const absl::Status status =
        Apply(AddUserCommand{jam, user, frontend}, now_, *state_, &response);
    CheckAdmitted(status, live);
    if (!status.ok()) return;
    const testing::PoolView after = testing::ViewOf(state_->jams, now_);
    if (!InResync()) FUZZ_REQUIRE(response.added() == could);
    if (response.added()) {
      std::string owner;
      FUZZ_REQUIRE(IsMember(after, jam, user, &owner));
      FUZZ_REQUIRE(owner == (!frontend.empty() ? frontend
                             : member          ? old_owner
                                               : ""));
      FUZZ_REQUIRE(response.redirect_jam_id().empty());
    } else {
      FUZZ_REQUIRE(!member);
      FUZZ_REQUIRE(!response.redirect_jam_id().empty() &&
                   response.redirect_jam_id() != jam);
      Remember(response.redirect_jam_id());
      if (!state_->jams.IsClosed(jam, now_)) {
        FUZZ_REQUIRE(after == before_);
        FUZZ_REQUIRE(OccupancyOf(before_, jam) >= state_->jams.max_users());
      }
    }
  }

  void Sync() {
    const std::string frontend = FrontEnd(/*anonymous_allowed=*/false);
    SyncCommand command;
    command.frontend_id = frontend;
    command.lease_ttl = Millis(500, 5000);
    std::vector<std::pair<std::string, std::vector<std::string>>> truth;
    for (int j = in_.ConsumeIntegralInRange(0, 3); j > 0; --j) {
      auto& [id, users] = truth.emplace_back(Jam(), std::vector<std::string>());
      for (int u = in_.ConsumeIntegralInRange(0, 4); u > 0; --u) {
        users.push_back(User());
      }
    }
    for (const auto& [id, users] : truth) {
      command.user_lists.emplace_back(users.begin(), users.end());
    }
    for (size_t j = 0; j < truth.size(); ++j) {
      command.jams.push_back({truth[j].first, command.user_lists[j]});
    }
    v1::SyncResponse response;
    FUZZ_REQUIRE(Apply(command, now_, *state_, &response).ok());
    may_overfill_ = true;
    FUZZ_REQUIRE(state_->FindRemoval(frontend) == state_->removals.end());
    FUZZ_REQUIRE(state_->sessions.IsLive(frontend, now_));
    const testing::PoolView after = testing::ViewOf(state_->jams, now_);
    std::map<std::string, std::string> jam_of;
    for (const auto& [id, users] : truth) {
      for (const std::string& user : users) jam_of[user] = id;
    }
    for (const auto& [user, jam] : jam_of) {
      std::string owner;
      FUZZ_REQUIRE(IsMember(after, jam, user, &owner) && owner == frontend);
    }
    size_t own = 0;
    for (const auto& [id, jam] : after) {
      for (const auto& [user, owner] : jam.members) own += owner == frontend;
    }
    FUZZ_REQUIRE(own == jam_of.size());
    FUZZ_REQUIRE(response.user_count() == jam_of.size());
  }

  void KeepAlive() {
    const std::string frontend = FrontEnd(/*anonymous_allowed=*/false);
    const bool live = Live(frontend);
    v1::KeepAliveResponse response;
    const absl::Status status =
        Apply(KeepAliveCommand{frontend}, now_, *state_, &response);
    CheckAdmitted(status, live);
    if (status.ok()) {
      FUZZ_REQUIRE(response.lease_expires_unix_ms() >
                   static_cast<uint64_t>(absl::ToUnixMillis(now_)));
    }
  }

  void EndSession() {
    const std::string frontend = FrontEnd(/*anonymous_allowed=*/false);
    const bool live = Live(frontend);
    const absl::Status status = Apply(
        EndSessionCommand{frontend}, now_, *state_,
        [this, frontend](absl::StatusOr<uint64_t> removed) {
          FUZZ_REQUIRE(removed.ok());
          // Answered once the front end owns nothing.
          const FrontEndCounts left = state_->jams.CountsOf(frontend);
          FUZZ_REQUIRE(left.member_count == 0 && left.reservation_count == 0);
          ++ends_[frontend];
        });
    CheckAdmitted(status, live);
    if (!status.ok()) return;
    FUZZ_REQUIRE(!ends_.count(frontend) || ends_[frontend] == 1);
    ends_[frontend] = 0;
    FUZZ_REQUIRE(!state_->sessions.IsLive(frontend, now_));
    FUZZ_REQUIRE(state_->FindRemoval(frontend) != state_->removals.end());
  }

  void Batch() {
    // The command borrows these ids.
    std::vector<std::string> ids;
    ids.reserve(64);
    auto keep = [&ids](std::string id) -> absl::string_view {
      return ids.emplace_back(std::move(id));
    };
    std::vector<std::vector<absl::string_view>> lists;
    lists.reserve(8);
    BatchCommand command;
    bool live = true;
    for (int n = in_.ConsumeIntegralInRange(1, 6); n > 0; --n) {
      const std::string frontend = FrontEnd();
      switch (in_.ConsumeIntegralInRange(0, 5)) {
        case 0:
          command.operations.emplace_back(
              CurrentJamCommand{keep(User()), Millis(1, 5000), keep(frontend)});
          break;
        case 1: {
          std::vector<absl::string_view>& users = lists.emplace_back();
          for (int u = in_.ConsumeIntegralInRange(0, 3); u > 0; --u) {
            users.push_back(keep(User()));
          }
          command.operations.emplace_back(
              RefreshCommand{keep(Jam()), users, keep(frontend)});
          may_overfill_ = true;
          break;
        }
        case 2:
          command.operations.emplace_back(
              RemoveUserCommand{keep(Jam()), keep(User()), keep(frontend)});
          break;
        case 3:
          command.operations.emplace_back(
              HasCapacityCommand{keep(Jam()), keep(User())});
          continue;  // Names no front end.
        case 4:
          command.operations.emplace_back(
              AddUserCommand{keep(Jam()), keep(User()), keep(frontend)});
          break;
        default:
          command.operations.emplace_back(GetStatsCommand{});
          continue;
      }
      live = live && Live(frontend);
    }
    v1::BatchResponse response;
    const absl::Status status = Apply(command, now_, *state_, &response);
    CheckAdmitted(status, live);
    if (status.ok()) {
      FUZZ_REQUIRE(response.results_size() ==
                   static_cast<int>(command.operations.size()));
    }
  }

  // --- After every step ----------------------------------------------------

  void Check(testing::PoolView* view_out = nullptr) {
    testing::PoolView view;
    const absl::Status status =
        testing::CheckPoolInvariants(*state_, now_, FrontEnds(), &view);
    if (!status.ok()) {
      std::fprintf(
          stderr, "%s\nstate: %s\n", std::string(status.message()).c_str(),
          testing::ToString(testing::ViewOf(state_->jams, now_)).c_str());
      std::abort();
    }
    // No jam grows beyond max_users but by Refresh or Sync.
    if (!may_overfill_) {
      for (const auto& [id, jam] : view) {
        FUZZ_REQUIRE(jam.occupancy() <=
                     std::max<size_t>(OccupancyOf(before_, id),
                                      state_->jams.max_users()));
      }
    }
    if (view_out != nullptr) *view_out = std::move(view);
  }

  FuzzedDataProvider in_;
  std::unique_ptr<PoolState> state_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  absl::Time resync_until_ = absl::InfinitePast();
  std::vector<std::string> fresh_jams_;  // Ids the pool made up.
  testing::PoolView before_;             // At the start of the step.
  bool may_overfill_ = false;            // The step may overfill a jam.
  // Front ends that ended their session -> times EndSession was answered.
  std::map<std::string, int> ends_;
};

}  // namespace
}  // namespace jambalancer

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jambalancer::PoolFuzz(data, size).Run();
  return 0;
}
