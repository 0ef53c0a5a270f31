#include "tests/testing/pool_invariants.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace jambalancer {
namespace testing {
namespace {

template <typename... Parts>
absl::Status Broken(const Parts&... parts) {
  return absl::InternalError(absl::StrCat(parts...));
}

}  // namespace

PoolView ViewOf(JamCollection& jams, absl::Time now) {
  PoolView view;
  std::string after;
  for (;;) {
    JamPage page = jams.ListJams(after, /*limit=*/64, now);
    for (JamSnapshot& jam : page.jams) {
      JamView& entry = view[jam.jam_id];
      entry.reserved = jam.reserved_count;
      for (std::string& user : jam.user_ids) entry.members[user];
      after = jam.jam_id;
    }
    if (!page.has_more || page.jams.empty()) break;
  }
  for (auto& [id, jam] : view) {
    for (JamMemberSnapshot& member : jams.GetJam(id, now).members) {
      auto it = jam.members.find(member.user_id);
      if (it != jam.members.end()) it->second = std::move(member.frontend_id);
    }
  }
  return view;
}

std::string ToString(const PoolView& view) {
  std::string out;
  for (const auto& [id, jam] : view) {
    absl::StrAppend(&out, id, "{+", jam.reserved, "}[");
    for (const auto& [user, owner] : jam.members) {
      absl::StrAppend(&out, " ", user, owner.empty() ? "" : "@", owner);
    }
    absl::StrAppend(&out, " ] ");
  }
  return out;
}

absl::Status CheckPoolInvariants(PoolState& state, absl::Time now,
                                 absl::Span<const std::string> frontends,
                                 PoolView* view_out) {
  JamCollection& jams = state.jams;
  const uint32_t max_users = jams.max_users();

  // ListJams: each jam once, in id order, with members or seats.
  std::vector<JamSnapshot> listed;
  {
    std::string after;
    for (;;) {
      JamPage page = jams.ListJams(after, /*limit=*/7, now);
      if (page.jams.empty() && page.has_more) {
        return Broken("ListJams after '", after, "' has_more with no jams");
      }
      for (JamSnapshot& jam : page.jams) {
        if (!listed.empty() && !(listed.back().jam_id < jam.jam_id)) {
          return Broken("ListJams out of order: '", listed.back().jam_id,
                        "' then '", jam.jam_id, "'");
        }
        after = jam.jam_id;
        listed.push_back(std::move(jam));
      }
      if (!page.has_more) break;
    }
  }
  PoolView view;
  std::map<std::string, std::string> jam_of;  // User -> jam.
  CollectionSnapshot sums;
  sums.jams_by_members.assign(max_users + 2, 0);
  for (const JamSnapshot& jam : listed) {
    if (jam.user_ids.empty() && jam.reserved_count == 0) {
      return Broken("jam ", jam.jam_id, " is held with neither members nor ",
                    "reservations");
    }
    if (!std::is_sorted(jam.user_ids.begin(), jam.user_ids.end()) ||
        std::adjacent_find(jam.user_ids.begin(), jam.user_ids.end()) !=
            jam.user_ids.end()) {
      return Broken("jam ", jam.jam_id, " lists its members unsorted or twice");
    }
    JamView& entry = view[jam.jam_id];
    entry.reserved = jam.reserved_count;
    for (const std::string& user : jam.user_ids) {
      auto [it, inserted] = jam_of.emplace(user, jam.jam_id);
      if (!inserted) {
        return Broken("user ", user, " is a member of both ", it->second,
                      " and ", jam.jam_id);
      }
      entry.members[user];
    }
    // GetJam agrees with ListJams and names the owners.
    JamDetail detail = jams.GetJam(jam.jam_id, now);
    if (detail.reserved_count != jam.reserved_count ||
        detail.members.size() != jam.user_ids.size()) {
      return Broken("GetJam(", jam.jam_id, ") disagrees with ListJams");
    }
    for (size_t i = 0; i < detail.members.size(); ++i) {
      if (detail.members[i].user_id != jam.user_ids[i]) {
        return Broken("GetJam(", jam.jam_id, ") lists ",
                      detail.members[i].user_id, " where ListJams has ",
                      jam.user_ids[i]);
      }
      entry.members[jam.user_ids[i]] = detail.members[i].frontend_id;
    }
    // Each member's jam holds it.
    for (const std::string& user : jam.user_ids) {
      if (!jams.HasCapacity(jam.jam_id, user, now).has_capacity) {
        return Broken("HasCapacity(", jam.jam_id, ", ", user,
                      ") is false for a member");
      }
    }
    const size_t members = jam.user_ids.size();
    ++sums.jam_count;
    sums.user_count += members;
    sums.reservation_count += jam.reserved_count;
    if (members >= max_users) ++sums.full_jam_count;
    ++sums.jams_by_members[std::min<size_t>(members, max_users + 1)];
  }

  // Snapshot's totals are the sums.
  const CollectionSnapshot snapshot = jams.Snapshot(now);
  if (snapshot.max_users != max_users || snapshot.jam_count != sums.jam_count ||
      snapshot.user_count != sums.user_count ||
      snapshot.full_jam_count != sums.full_jam_count ||
      snapshot.reservation_count != sums.reservation_count ||
      snapshot.jams_by_members != sums.jams_by_members) {
    return Broken("Snapshot (jams ", snapshot.jam_count, ", users ",
                  snapshot.user_count, ", full ", snapshot.full_jam_count,
                  ", reservations ", snapshot.reservation_count,
                  ", by members ", absl::StrJoin(snapshot.jams_by_members, ","),
                  ") is not the sum over the jams (", sums.jam_count, ", ",
                  sums.user_count, ", ", sums.full_jam_count, ", ",
                  sums.reservation_count, ", ",
                  absl::StrJoin(sums.jams_by_members, ","), ")");
  }

  // CurrentJam answers the best open jam with room; HasCapacity agrees.
  const std::string* best = nullptr;
  size_t best_occupancy = 0;
  for (const auto& [id, jam] : view) {
    const bool closed = jams.IsClosed(id, now);
    const bool room = !closed && jam.occupancy() < max_users;
    if (jams.HasCapacity(id, "", now).has_capacity != room) {
      return Broken("HasCapacity(", id, ") is ", !room, " at occupancy ",
                    jam.occupancy(), closed ? " (closed)" : "");
    }
    if (room && jam.occupancy() > best_occupancy) {
      best = &id;  // Ids ascend: the first at an occupancy is the smallest.
      best_occupancy = jam.occupancy();
    }
  }
  const CurrentJamResult answer = jams.CurrentJam(now);
  if (best == nullptr) {
    if (!answer.new_jam || view.count(answer.jam_id) || answer.user_count) {
      return Broken("CurrentJam answers ", answer.jam_id,
                    " although no open jam has room");
    }
  } else if (answer.new_jam || answer.jam_id != *best ||
             answer.user_count != view[*best].members.size()) {
    return Broken("CurrentJam answers ", answer.jam_id,
                  answer.new_jam ? " (new)" : "", " (", answer.user_count,
                  " users) instead of ", *best);
  }

  // Owners: known front ends, whose counts agree and who have a session or
  // are being removed.
  const std::vector<SessionInfo> sessions = state.sessions.List();
  std::set<std::string> live;
  absl::Time next_lease = absl::InfiniteFuture();
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (i > 0 && !(sessions[i - 1].frontend_id < sessions[i].frontend_id)) {
      return Broken("sessions listed out of order");
    }
    live.insert(sessions[i].frontend_id);
    next_lease = std::min(next_lease, sessions[i].lease_expires);
  }
  if (sessions.size() != state.sessions.size() ||
      state.sessions.NextExpiry() != next_lease) {
    return Broken("SessionTable's size or next expiry disagrees with List");
  }
  std::set<std::string> removing;
  for (const FrontEndRemovalTask& task : state.removals) {
    if (!removing.insert(task.frontend_id).second) {
      return Broken("front end ", task.frontend_id, " queued twice");
    }
    if (live.count(task.frontend_id)) {
      return Broken("front end ", task.frontend_id,
                    " both has a session and is being removed");
    }
  }
  const std::set<std::string> known(frontends.begin(), frontends.end());
  std::map<std::string, FrontEndCounts> owned;
  std::map<std::string, std::set<std::string>> jams_of;
  for (const auto& [id, jam] : view) {
    for (const auto& [user, owner] : jam.members) {
      if (owner.empty()) continue;
      if (!known.count(owner)) {
        return Broken("member ", user, " of ", id, " has unknown owner ",
                      owner);
      }
      ++owned[owner].member_count;
      jams_of[owner].insert(id);
    }
  }
  uint64_t owned_reservations = 0;
  for (const std::string& frontend : known) {
    const FrontEndCounts counts = jams.CountsOf(frontend);
    const FrontEndCounts& expected = owned[frontend];
    if (counts.member_count != expected.member_count ||
        counts.jam_count != jams_of[frontend].size()) {
      return Broken("CountsOf(", frontend, ") says ", counts.member_count,
                    " members in ", counts.jam_count, " jams; the jams list ",
                    expected.member_count, " in ", jams_of[frontend].size());
    }
    owned_reservations += counts.reservation_count;
    if ((counts.member_count > 0 || counts.reservation_count > 0) &&
        !live.count(frontend) && !removing.count(frontend)) {
      return Broken("front end ", frontend, " owns ", counts.member_count,
                    " members and ", counts.reservation_count,
                    " reservations without a session or a removal");
    }
  }
  if (owned_reservations > sums.reservation_count) {
    return Broken("front ends own ", owned_reservations, " reservations of ",
                  sums.reservation_count);
  }
  if (view_out != nullptr) *view_out = std::move(view);
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace jambalancer
