#include "server/rpc/commands.h"

#include <algorithm>
#include <functional>
#include <map>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/rpc/id_validation.h"
#include "server/rpc/page_token.h"
#include "server/rpc/pool_config.h"

namespace jambalancer {
namespace {

// An optional id: empty is none, anything else must be a valid id.
absl::Status ValidateOptionalId(absl::string_view field, absl::string_view id) {
  return id.empty() ? absl::OkStatus() : ValidateId(field, id);
}

// The jam, user and front-end ids of RemoveUser, HasCapacity and AddUser
// (a front end is always optional; HasCapacity names none).
absl::Status ValidateJamAndUser(absl::string_view jam_id,
                                absl::string_view user_id, bool user_optional,
                                absl::string_view frontend_id = "") {
  if (absl::Status s = ValidateId("jam_id", jam_id); !s.ok()) return s;
  if (absl::Status s = user_optional ? ValidateOptionalId("user_id", user_id)
                                     : ValidateId("user_id", user_id);
      !s.ok()) {
    return s;
  }
  return ValidateOptionalId("frontend_id", frontend_id);
}

// Puts a batch operation's place in front of its error, e.g.
// "operations[3].add_user." + "user_id must not be empty".
absl::Status AtOperation(int index, absl::string_view field,
                         const absl::Status& status) {
  return absl::Status(
      status.code(),
      absl::StrCat("operations[", index, "].", field, ".", status.message()));
}

}  // namespace

absl::StatusOr<CurrentJamCommand> CommandParser::Parse(
    const v1::CurrentJamRequest& request) const {
  CurrentJamCommand command;
  if (absl::Status s = ValidateOptionalId("frontend_id", request.frontend_id());
      !s.ok()) {
    return s;
  }
  command.frontend_id = request.frontend_id();
  if (request.user_id().empty()) return command;  // Asks only.
  if (absl::Status s = ValidateId("user_id", request.user_id()); !s.ok()) {
    return s;
  }
  command.user_id = request.user_id();
  command.reservation_ttl =
      Capped(absl::Milliseconds(request.reservation_ttl_ms()),
             reservations_.default_ttl, reservations_.max_ttl);
  return command;
}

absl::StatusOr<RefreshCommand> CommandParser::Parse(
    const v1::RefreshRequest& request) const {
  if (absl::Status s = ValidateId("jam_id", request.jam_id()); !s.ok()) {
    return s;
  }
  if (static_cast<size_t>(request.user_ids_size()) > kMaxRefreshUsers) {
    return absl::InvalidArgumentError(
        absl::StrCat("user_ids must hold at most ", kMaxRefreshUsers,
                     " ids, got ", request.user_ids_size()));
  }
  if (absl::Status s = ValidateOptionalId("frontend_id", request.frontend_id());
      !s.ok()) {
    return s;
  }
  RefreshCommand command{request.jam_id(), {}, request.frontend_id()};
  command.user_ids.reserve(request.user_ids_size());
  for (int i = 0; i < request.user_ids_size(); ++i) {
    if (absl::Status s =
            ValidateId(absl::StrCat("user_ids[", i, "]"), request.user_ids(i));
        !s.ok()) {
      return s;
    }
    command.user_ids.push_back(request.user_ids(i));
  }
  return command;
}

absl::StatusOr<RemoveUserCommand> CommandParser::Parse(
    const v1::RemoveUserRequest& request) const {
  if (absl::Status s =
          ValidateJamAndUser(request.jam_id(), request.user_id(),
                             /*user_optional=*/false, request.frontend_id());
      !s.ok()) {
    return s;
  }
  const absl::Duration hold =
      request.hold_seat_ms() == 0
          ? absl::ZeroDuration()
          : Capped(absl::Milliseconds(request.hold_seat_ms()),
                   reservations_.default_ttl, reservations_.max_ttl);
  return RemoveUserCommand{request.jam_id(), request.user_id(),
                           request.frontend_id(), hold};
}

absl::StatusOr<HasCapacityCommand> CommandParser::Parse(
    const v1::HasCapacityRequest& request) const {
  if (absl::Status s = ValidateJamAndUser(request.jam_id(), request.user_id(),
                                          /*user_optional=*/true);
      !s.ok()) {
    return s;
  }
  return HasCapacityCommand{request.jam_id(), request.user_id()};
}

absl::StatusOr<AddUserCommand> CommandParser::Parse(
    const v1::AddUserRequest& request) const {
  if (absl::Status s =
          ValidateJamAndUser(request.jam_id(), request.user_id(),
                             /*user_optional=*/false, request.frontend_id());
      !s.ok()) {
    return s;
  }
  return AddUserCommand{request.jam_id(), request.user_id(),
                        request.frontend_id()};
}

absl::StatusOr<GetStatsCommand> CommandParser::Parse(
    const v1::GetStatsRequest&) const {
  return GetStatsCommand{};
}

absl::StatusOr<ListJamsCommand> CommandParser::Parse(
    const v1::ListJamsRequest& request) const {
  absl::StatusOr<std::string> after = DecodePageToken(request.page_token());
  if (!after.ok()) return after.status();
  ListJamsCommand command;
  command.after_jam_id = *std::move(after);
  command.page_size = request.page_size() == 0
                          ? kDefaultPageSize
                          : std::min(request.page_size(), kMaxPageSize);
  return command;
}

namespace {

// Whether an operation naming `pool` may run in a Batch of `batch_pool`
// (empty names the default pool in both).
bool InBatchPool(absl::string_view pool, absl::string_view batch_pool) {
  auto canonical = [](absl::string_view name) {
    return name.empty() ? absl::string_view(kDefaultPoolName) : name;
  };
  return pool.empty() || canonical(pool) == canonical(batch_pool);
}

absl::Status OtherPoolError(absl::string_view batch_pool) {
  return absl::InvalidArgumentError(absl::StrCat(
      "pool must be empty or the batch's pool (\"",
      batch_pool.empty() ? absl::string_view(kDefaultPoolName) : batch_pool,
      "\"): a Batch runs in one pool"));
}

}  // namespace

absl::StatusOr<BatchCommand> CommandParser::Parse(
    const v1::BatchRequest& request) const {
  if (request.operations_size() > kMaxBatchOperations) {
    return absl::InvalidArgumentError(
        absl::StrCat("operations must hold at most ", kMaxBatchOperations,
                     " operations, got ", request.operations_size()));
  }
  BatchCommand command;
  command.operations.reserve(request.operations_size());
  size_t user_ids = 0;
  for (int i = 0; i < request.operations_size(); ++i) {
    const v1::BatchOperation& operation = request.operations(i);
    switch (operation.operation_case()) {
#define JAM_BALANCER_PARSE_OPERATION(Method, field)                      \
  case v1::BatchOperation::k##Method: {                                  \
    auto parsed = Parse(operation.field());                              \
    if (!parsed.ok()) return AtOperation(i, #field, parsed.status());    \
    if (!InBatchPool(operation.field().pool(), request.pool())) {        \
      return AtOperation(i, #field, OtherPoolError(request.pool()));     \
    }                                                                    \
    command.operations.emplace_back(std::in_place_type<Method##Command>, \
                                    *std::move(parsed));                 \
    break;                                                               \
  }
      JAM_BALANCER_BATCH_RPCS(JAM_BALANCER_PARSE_OPERATION)
#undef JAM_BALANCER_PARSE_OPERATION
      case v1::BatchOperation::OPERATION_NOT_SET:
        return absl::InvalidArgumentError(
            absl::StrCat("operations[", i, "] must set one operation"));
    }
    user_ids += std::visit(
        [](const auto& typed) { return NamedIdsOf(typed).user_ids.size(); },
        command.operations.back());
    if (user_ids > kMaxBatchUserIds) {
      return absl::InvalidArgumentError(
          absl::StrCat("operations must name at most ", kMaxBatchUserIds,
                       " user ids in all (split the batch); operations[0..", i,
                       "] name ", user_ids));
    }
  }
  return command;
}

absl::Duration CommandParser::Capped(absl::Duration asked,
                                     absl::Duration default_ttl,
                                     absl::Duration max_ttl) const {
  const absl::Duration ttl =
      asked == absl::ZeroDuration() ? default_ttl : std::min(asked, max_ttl);
  // Whole milliseconds, the unit of the API.
  return absl::Milliseconds(absl::ToInt64Milliseconds(ttl));
}

absl::StatusOr<KeepAliveCommand> CommandParser::Parse(
    const v1::KeepAliveRequest& request) const {
  if (absl::Status s = ValidateId("frontend_id", request.frontend_id());
      !s.ok()) {
    return s;
  }
  return KeepAliveCommand{request.frontend_id()};
}

absl::StatusOr<EndSessionCommand> CommandParser::Parse(
    const v1::EndSessionRequest& request) const {
  if (absl::Status s = ValidateId("frontend_id", request.frontend_id());
      !s.ok()) {
    return s;
  }
  return EndSessionCommand{request.frontend_id()};
}

absl::StatusOr<ListSessionsCommand> CommandParser::Parse(
    const v1::ListSessionsRequest&) const {
  return ListSessionsCommand{};
}

absl::StatusOr<GetJamCommand> CommandParser::Parse(
    const v1::GetJamRequest& request) const {
  if (absl::Status s = ValidateId("jam_id", request.jam_id()); !s.ok()) {
    return s;
  }
  return GetJamCommand{request.jam_id()};
}

absl::StatusOr<ListPoolsCommand> CommandParser::Parse(
    const v1::ListPoolsRequest&) const {
  return ListPoolsCommand{};
}

absl::StatusOr<GetRoutingCommand> CommandParser::Parse(
    const v1::GetRoutingRequest&) const {
  return GetRoutingCommand{};
}

std::vector<std::pair<std::string, SyncCommand>> SplitByPool(
    const SyncCommand& command) {
  std::map<std::string, SyncCommand, std::less<>> by_pool;
  for (size_t i = 0; i < command.jams.size(); ++i) {
    const absl::string_view pool =
        command.pools[i].empty() ? kDefaultPoolName : command.pools[i];
    auto it = by_pool.find(pool);
    if (it == by_pool.end()) {
      SyncCommand part;
      part.frontend_id = command.frontend_id;
      part.lease_ttl = command.lease_ttl;
      it = by_pool.emplace(std::string(pool), std::move(part)).first;
    }
    it->second.jams.push_back(command.jams[i]);
    it->second.pools.push_back(command.pools[i]);
  }
  return {std::make_move_iterator(by_pool.begin()),
          std::make_move_iterator(by_pool.end())};
}

absl::StatusOr<SyncCommand> CommandParser::Parse(
    absl::Span<const v1::SyncRequest* const> messages) const {
  if (messages.empty()) {
    return absl::InvalidArgumentError(
        "a Sync stream must send at least one message, naming frontend_id");
  }
  const v1::SyncRequest& first = *messages.front();
  if (absl::Status s =
          ValidateId("messages[0].frontend_id", first.frontend_id());
      !s.ok()) {
    return s;
  }
  SyncCommand command;
  command.frontend_id = first.frontend_id();
  const absl::Duration asked = absl::Milliseconds(first.lease_ttl_ms());
  if (asked != absl::ZeroDuration() && asked < absl::Milliseconds(500)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "messages[0].lease_ttl_ms must be 0 (the server's default) or at "
        "least 500, got ",
        first.lease_ttl_ms()));
  }
  command.lease_ttl = Capped(asked, leases_.default_ttl, leases_.max_ttl);
  size_t jam_count = 0;
  for (const v1::SyncRequest* message : messages) {
    jam_count += message->jams_size();
  }
  command.jams.reserve(jam_count);
  command.pools.reserve(jam_count);
  command.user_lists.reserve(jam_count);
  for (size_t m = 0; m < messages.size(); ++m) {
    const v1::SyncRequest& message = *messages[m];
    const std::string at = absl::StrCat("messages[", m, "].");
    if (!message.frontend_id().empty() &&
        message.frontend_id() != command.frontend_id) {
      return absl::InvalidArgumentError(
          absl::StrCat(at,
                       "frontend_id must be empty or repeat the first "
                       "message's, got ",
                       message.frontend_id()));
    }
    if (m > 0 && message.lease_ttl_ms() != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, "lease_ttl_ms must be 0: the first message sets the lease"));
    }
    for (int j = 0; j < message.jams_size(); ++j) {
      const v1::JamMembers& jam = message.jams(j);
      const std::string field = absl::StrCat(at, "jams[", j, "].");
      if (absl::Status s =
              ValidateId(absl::StrCat(field, "jam_id"), jam.jam_id());
          !s.ok()) {
        return s;
      }
      if (static_cast<size_t>(jam.user_ids_size()) > kMaxRefreshUsers) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, "user_ids must hold at most ", kMaxRefreshUsers,
                         " ids, got ", jam.user_ids_size()));
      }
      std::vector<absl::string_view>& users = command.user_lists.emplace_back();
      users.reserve(jam.user_ids_size());
      for (int u = 0; u < jam.user_ids_size(); ++u) {
        if (absl::Status s = ValidateId(
                absl::StrCat(field, "user_ids[", u, "]"), jam.user_ids(u));
            !s.ok()) {
          return s;
        }
        users.push_back(jam.user_ids(u));
      }
      if (!jam.pool().empty()) {
        if (absl::Status s =
                ValidatePoolName(absl::StrCat(field, "pool"), jam.pool());
            !s.ok()) {
          return s;
        }
      }
      command.jams.push_back({jam.jam_id(), users});
      command.pools.push_back(jam.pool());
    }
  }
  return command;
}

}  // namespace jambalancer
