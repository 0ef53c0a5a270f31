#include "server/rpc/operations.h"

#include <string>
#include <utility>
#include <variant>

#include "server/rpc/page_token.h"

namespace jambalancer {
namespace {

// The result field of a batch operation, chosen by its command's type.
#define JAM_BALANCER_RESULT_FIELD(Method, field)            \
  v1::Method##Response* ResultOf(const Method##Command&,    \
                                 v1::BatchResult* result) { \
    return result->mutable_##field();                       \
  }
JAM_BALANCER_BATCH_RPCS(JAM_BALANCER_RESULT_FIELD)
#undef JAM_BALANCER_RESULT_FIELD

}  // namespace

void Apply(const CurrentJamCommand& command, absl::Time now,
           JamCollection& jams, v1::CurrentJamResponse* response) {
  CurrentJamResult result =
      command.user_id.empty()
          ? jams.CurrentJam(now)
          : jams.ReserveSeat(command.user_id, command.reservation_ttl, now);
  response->set_jam_id(std::move(result.jam_id));
  response->set_user_count(result.user_count);
  response->set_new_jam(result.new_jam);
  if (result.reservation_expires != absl::InfinitePast()) {
    response->set_reservation_expires_unix_ms(
        absl::ToUnixMillis(result.reservation_expires));
  }
}

void Apply(const RefreshCommand& command, absl::Time now, JamCollection& jams,
           v1::RefreshResponse* response) {
  response->set_user_count(jams.Refresh(command.jam_id, command.user_ids, now));
}

void Apply(const RemoveUserCommand& command, absl::Time now,
           JamCollection& jams, v1::RemoveUserResponse* response) {
  const RemoveUserResult result =
      jams.RemoveUser(command.jam_id, command.user_id, now);
  response->set_removed(result.removed);
  response->set_user_count(result.user_count);
}

void Apply(const HasCapacityCommand& command, absl::Time now,
           JamCollection& jams, v1::HasCapacityResponse* response) {
  const HasCapacityResult result =
      jams.HasCapacity(command.jam_id, command.user_id, now);
  response->set_has_capacity(result.has_capacity);
  response->set_user_count(result.user_count);
  response->set_max_users(jams.max_users());
}

void Apply(const AddUserCommand& command, absl::Time now, JamCollection& jams,
           v1::AddUserResponse* response) {
  AddUserResult result = jams.AddUser(command.jam_id, command.user_id, now);
  response->set_added(result.added);
  response->set_user_count(result.user_count);
  response->set_redirect_jam_id(std::move(result.redirect_jam_id));
}

void Apply(const GetStatsCommand&, absl::Time now, JamCollection& jams,
           v1::GetStatsResponse* response) {
  const CollectionSnapshot snapshot = jams.Snapshot(now);
  response->set_jam_count(snapshot.jam_count);
  response->set_user_count(snapshot.user_count);
  response->set_max_users(snapshot.max_users);
  response->set_full_jam_count(snapshot.full_jam_count);
  response->set_reservation_count(snapshot.reservation_count);
}

void Apply(const ListJamsCommand& command, absl::Time now, JamCollection& jams,
           v1::ListJamsResponse* response) {
  JamPage page = jams.ListJams(command.after_jam_id, command.page_size, now);
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
}

void Apply(const BatchCommand& command, absl::Time now, JamCollection& jams,
           v1::BatchResponse* response) {
  response->mutable_results()->Reserve(
      static_cast<int>(command.operations.size()));
  for (const BatchItem& operation : command.operations) {
    v1::BatchResult* result = response->add_results();
    std::visit(
        [&](const auto& typed) {
          Apply(typed, now, jams, ResultOf(typed, result));
        },
        operation);
  }
}

}  // namespace jambalancer
