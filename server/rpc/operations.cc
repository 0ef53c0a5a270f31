#include "server/rpc/operations.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/rpc/page_token.h"

namespace jambalancer {
namespace {

// The front end that a command is sent by; "" for anonymous ones.
template <typename Command>
absl::string_view FrontEndOf(const Command& command) {
  if constexpr (std::is_same_v<Command, CurrentJamCommand> ||
                std::is_same_v<Command, RefreshCommand> ||
                std::is_same_v<Command, RemoveUserCommand> ||
                std::is_same_v<Command, AddUserCommand>) {
    return command.frontend_id;
  } else {
    return "";
  }
}

absl::Status NoSession(absl::string_view frontend_id) {
  return absl::FailedPreconditionError(
      absl::StrCat("front end ", frontend_id,
                   " has no live session (its lease ran out, it ended, or "
                   "the balancer restarted): Sync it, then retry"));
}

// Admits a call of `frontend_id`: OK for anonymous calls and live sessions
// (renewing the lease), else NoSession.
absl::Status Admit(absl::string_view frontend_id, absl::Time now,
                   PoolState& state) {
  if (frontend_id.empty()) return absl::OkStatus();
  if (!state.sessions.Renew(frontend_id, now).has_value()) {
    return NoSession(frontend_id);
  }
  return absl::OkStatus();
}

// Admission of a command against the state's limits (see
// JamCollection::CheckRoom).
absl::Status CheckRoom(const NamedIds& ids, const JamCollection& jams) {
  return jams.CheckRoom(ids.jam_id.empty()
                            ? absl::Span<const absl::string_view>()
                            : absl::MakeConstSpan(&ids.jam_id, 1),
                        ids.user_ids);
}

// Admission of a Sync: a session for its front end, room for what it lists.
absl::Status AdmitSync(const SyncCommand& command, const PoolState& state) {
  if (absl::Status s = state.sessions.CheckRoomFor(command.frontend_id);
      !s.ok()) {
    return s;
  }
  return state.jams.CheckRoomForSync(command.jams);
}

// The result field of a batch operation, chosen by its command's type.
#define JAM_BALANCER_RESULT_FIELD(Method, field)            \
  v1::Method##Response* ResultOf(const Method##Command&,    \
                                 v1::BatchResult* result) { \
    return result->mutable_##field();                       \
  }
JAM_BALANCER_BATCH_RPCS(JAM_BALANCER_RESULT_FIELD)
#undef JAM_BALANCER_RESULT_FIELD

}  // namespace

absl::Status Apply(const CurrentJamCommand& command, absl::Time now,
                   PoolState& state, v1::CurrentJamResponse* response) {
  if (absl::Status s = Admit(command.frontend_id, now, state); !s.ok()) {
    return s;
  }
  JamCollection& jams = state.jams;
  if (!command.user_id.empty()) {
    if (absl::Status s = jams.CheckRoomForSeat(command.user_id); !s.ok()) {
      return s;
    }
  }
  CurrentJamResult result =
      command.user_id.empty()
          ? jams.CurrentJam(now)
          : jams.ReserveSeat(command.user_id, command.reservation_ttl, now,
                             command.frontend_id);
  response->set_jam_id(std::move(result.jam_id));
  response->set_user_count(result.user_count);
  response->set_new_jam(result.new_jam);
  if (result.reservation_expires != absl::InfinitePast()) {
    response->set_reservation_expires_unix_ms(
        absl::ToUnixMillis(result.reservation_expires));
  }
  return absl::OkStatus();
}

absl::Status Apply(const RefreshCommand& command, absl::Time now,
                   PoolState& state, v1::RefreshResponse* response) {
  if (absl::Status s = Admit(command.frontend_id, now, state); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRoom(NamedIdsOf(command), state.jams); !s.ok()) {
    return s;
  }
  response->set_user_count(state.jams.Refresh(command.jam_id, command.user_ids,
                                              now, command.frontend_id));
  return absl::OkStatus();
}

absl::Status Apply(const RemoveUserCommand& command, absl::Time now,
                   PoolState& state, v1::RemoveUserResponse* response) {
  if (absl::Status s = Admit(command.frontend_id, now, state); !s.ok()) {
    return s;
  }
  const RemoveUserResult result =
      state.jams.RemoveUser(command.jam_id, command.user_id, now,
                            command.frontend_id, command.hold_seat);
  response->set_removed(result.removed);
  response->set_user_count(result.user_count);
  return absl::OkStatus();
}

absl::Status Apply(const HasCapacityCommand& command, absl::Time now,
                   PoolState& state, v1::HasCapacityResponse* response) {
  const HasCapacityResult result =
      state.jams.HasCapacity(command.jam_id, command.user_id, now);
  response->set_has_capacity(result.has_capacity);
  response->set_user_count(result.user_count);
  response->set_max_users(state.jams.max_users());
  return absl::OkStatus();
}

absl::Status Apply(const AddUserCommand& command, absl::Time now,
                   PoolState& state, v1::AddUserResponse* response) {
  if (absl::Status s = Admit(command.frontend_id, now, state); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRoom(NamedIdsOf(command), state.jams); !s.ok()) {
    return s;
  }
  AddUserResult result = state.jams.AddUser(command.jam_id, command.user_id,
                                            now, command.frontend_id);
  response->set_added(result.added);
  response->set_user_count(result.user_count);
  response->set_redirect_jam_id(std::move(result.redirect_jam_id));
  return absl::OkStatus();
}

absl::Status Apply(const GetStatsCommand&, absl::Time now, PoolState& state,
                   v1::GetStatsResponse* response) {
  const CollectionSnapshot snapshot = state.jams.Snapshot(now);
  response->set_jam_count(snapshot.jam_count);
  response->set_user_count(snapshot.user_count);
  response->set_max_users(snapshot.max_users);
  response->set_full_jam_count(snapshot.full_jam_count);
  response->set_reservation_count(snapshot.reservation_count);
  response->set_session_count(state.sessions.size());
  return absl::OkStatus();
}

absl::Status Apply(const ListJamsCommand& command, absl::Time now,
                   PoolState& state, v1::ListJamsResponse* response) {
  JamPage page = state.jams.ListJams(command.after_jam_id, command.page_size,
                                     now, kMaxListedUserIds);
  for (JamSnapshot& snapshot : page.jams) {
    v1::Jam* jam = response->add_jams();
    jam->set_jam_id(std::move(snapshot.jam_id));
    for (std::string& user_id : snapshot.user_ids) {
      jam->add_user_ids(std::move(user_id));
    }
    jam->set_reserved_count(snapshot.reserved_count);
  }
  if (page.has_more) {
    response->set_next_page_token(
        EncodePageToken(response->jams(response->jams_size() - 1).jam_id()));
  }
  return absl::OkStatus();
}

absl::Status Apply(const BatchCommand& command, absl::Time now,
                   PoolState& state, v1::BatchResponse* response) {
  // Every front end named must have a live session, or nothing runs.
  for (size_t i = 0; i < command.operations.size(); ++i) {
    const absl::string_view frontend_id =
        std::visit([](const auto& typed) { return FrontEndOf(typed); },
                   command.operations[i]);
    if (!frontend_id.empty() && !state.sessions.IsLive(frontend_id, now)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "operations[", i, "]: ", NoSession(frontend_id).message()));
    }
  }
  // Everything the operations may store must fit the limits, or nothing
  // runs. Counted as if each CurrentJam with a user made up a jam.
  std::vector<absl::string_view> jam_ids;
  std::vector<absl::string_view> user_ids;
  size_t fresh_jams = 0;
  for (const BatchItem& operation : command.operations) {
    std::visit(
        [&](const auto& typed) {
          const NamedIds ids = NamedIdsOf(typed);
          if (!ids.jam_id.empty()) jam_ids.push_back(ids.jam_id);
          user_ids.insert(user_ids.end(), ids.user_ids.begin(),
                          ids.user_ids.end());
          if constexpr (std::is_same_v<std::decay_t<decltype(typed)>,
                                       CurrentJamCommand>) {
            if (!typed.user_id.empty()) ++fresh_jams;
          }
        },
        operation);
  }
  if (absl::Status s = state.jams.CheckRoom(jam_ids, user_ids, fresh_jams);
      !s.ok()) {
    return s;
  }
  response->mutable_results()->Reserve(
      static_cast<int>(command.operations.size()));
  for (const BatchItem& operation : command.operations) {
    v1::BatchResult* result = response->add_results();
    std::visit(
        [&](const auto& typed) {
          // Admitted above: each succeeds (ReserveSeat may make up at most
          // the jam counted for it).
          Apply(typed, now, state, ResultOf(typed, result)).IgnoreError();
        },
        operation);
  }
  return absl::OkStatus();
}

absl::Status Apply(const KeepAliveCommand& command, absl::Time now,
                   PoolState& state, v1::KeepAliveResponse* response) {
  const std::optional<absl::Time> expires =
      state.sessions.Renew(command.frontend_id, now);
  if (!expires.has_value()) return NoSession(command.frontend_id);
  response->set_lease_expires_unix_ms(absl::ToUnixMillis(*expires));
  return absl::OkStatus();
}

absl::Status Apply(const EndSessionCommand& command, absl::Time now,
                   PoolState& state, FrontEndRemovalTask::Done done) {
  if (!state.sessions.IsLive(command.frontend_id, now)) {
    return NoSession(command.frontend_id);
  }
  state.sessions.End(command.frontend_id);
  state.removals.emplace_back(std::string(command.frontend_id),
                              /*expired=*/false, std::move(done));
  return absl::OkStatus();
}

absl::Status Apply(const ListSessionsCommand&, absl::Time now, PoolState& state,
                   v1::ListSessionsResponse* response) {
  state.jams.ExpireReservations(now);
  for (const SessionInfo& info : state.sessions.List()) {
    const FrontEndCounts counts = state.jams.UsersOf(info.frontend_id);
    v1::Session* session = response->add_sessions();
    session->set_frontend_id(info.frontend_id);
    session->set_lease_expires_unix_ms(absl::ToUnixMillis(info.lease_expires));
    session->set_member_count(counts.member_count);
    session->set_reservation_count(counts.reservation_count);
  }
  return absl::OkStatus();
}

absl::Status Apply(const GetJamCommand& command, absl::Time now,
                   PoolState& state, v1::GetJamResponse* response) {
  JamDetail detail = state.jams.GetJam(command.jam_id, now);
  response->set_jam_id(std::string(command.jam_id));
  response->mutable_members()->Reserve(static_cast<int>(detail.members.size()));
  for (JamMemberSnapshot& member : detail.members) {
    v1::JamMember* out = response->add_members();
    out->set_user_id(std::move(member.user_id));
    out->set_frontend_id(std::move(member.frontend_id));
  }
  response->set_reserved_count(detail.reserved_count);
  response->set_max_users(state.jams.max_users());
  return absl::OkStatus();
}

absl::Status Apply(const SyncCommand& command, absl::Time /*now*/,
                   PoolState& state, SyncTask task) {
  if (absl::Status s = AdmitSync(command, state); !s.ok()) return s;
  state.syncs.push_back(std::move(task));
  return absl::OkStatus();
}

absl::Status Apply(const SyncCommand& command, absl::Time now, PoolState& state,
                   v1::SyncResponse* response) {
  if (absl::Status s = AdmitSync(command, state); !s.ok()) return s;
  if (auto task = state.FindRemoval(command.frontend_id);
      task != state.removals.end()) {
    // Its ended session's users go first, or later removal steps would
    // take the users this Sync places.
    state.CountRemoved(*task, state.jams.RemoveFrontEnd(
                                  command.frontend_id,
                                  std::numeric_limits<size_t>::max(), now));
    task->Finish(task->members_removed);
    state.removals.erase(task);
  }
  const absl::Time expires =
      state.sessions.Start(command.frontend_id, command.lease_ttl, now);
  const FrontEndCounts counts =
      state.jams.ReplaceFrontEnd(command.frontend_id, command.jams, now);
  response->set_lease_expires_unix_ms(absl::ToUnixMillis(expires));
  response->set_jam_count(counts.jam_count);
  response->set_user_count(counts.member_count);
  return absl::OkStatus();
}

}  // namespace jambalancer
