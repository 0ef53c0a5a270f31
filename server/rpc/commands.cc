#include "server/rpc/commands.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/rpc/id_validation.h"
#include "server/rpc/page_token.h"

namespace jambalancer {
namespace {

// An optional id: empty is none, anything else must be a valid id.
absl::Status ValidateOptionalId(absl::string_view field, absl::string_view id) {
  return id.empty() ? absl::OkStatus() : ValidateId(field, id);
}

// The jam and user ids of RemoveUser, HasCapacity and AddUser.
absl::Status ValidateJamAndUser(absl::string_view jam_id,
                                absl::string_view user_id, bool user_optional) {
  if (absl::Status s = ValidateId("jam_id", jam_id); !s.ok()) return s;
  return user_optional ? ValidateOptionalId("user_id", user_id)
                       : ValidateId("user_id", user_id);
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
  if (request.user_id().empty()) return command;  // Asks only.
  if (absl::Status s = ValidateId("user_id", request.user_id()); !s.ok()) {
    return s;
  }
  command.user_id = request.user_id();
  const absl::Duration asked = absl::Milliseconds(request.reservation_ttl_ms());
  const absl::Duration ttl = asked == absl::ZeroDuration()
                                 ? reservations_.default_ttl
                                 : std::min(asked, reservations_.max_ttl);
  // Whole milliseconds, the unit of the API.
  command.reservation_ttl = absl::Milliseconds(absl::ToInt64Milliseconds(ttl));
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
  RefreshCommand command{request.jam_id(), {}};
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
  if (absl::Status s = ValidateJamAndUser(request.jam_id(), request.user_id(),
                                          /*user_optional=*/false);
      !s.ok()) {
    return s;
  }
  return RemoveUserCommand{request.jam_id(), request.user_id()};
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
  if (absl::Status s = ValidateJamAndUser(request.jam_id(), request.user_id(),
                                          /*user_optional=*/false);
      !s.ok()) {
    return s;
  }
  return AddUserCommand{request.jam_id(), request.user_id()};
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

absl::StatusOr<BatchCommand> CommandParser::Parse(
    const v1::BatchRequest& request) const {
  if (request.operations_size() > kMaxBatchOperations) {
    return absl::InvalidArgumentError(
        absl::StrCat("operations must hold at most ", kMaxBatchOperations,
                     " operations, got ", request.operations_size()));
  }
  BatchCommand command;
  command.operations.reserve(request.operations_size());
  for (int i = 0; i < request.operations_size(); ++i) {
    const v1::BatchOperation& operation = request.operations(i);
    switch (operation.operation_case()) {
#define JAM_BALANCER_PARSE_OPERATION(Method, field)                      \
  case v1::BatchOperation::k##Method: {                                  \
    auto parsed = Parse(operation.field());                              \
    if (!parsed.ok()) return AtOperation(i, #field, parsed.status());    \
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
  }
  return command;
}

}  // namespace jambalancer
