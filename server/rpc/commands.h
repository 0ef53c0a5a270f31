#ifndef JAM_BALANCER_SERVER_RPC_COMMANDS_H_
#define JAM_BALANCER_SERVER_RPC_COMMANDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "jambalancer/v1/jam_balancer.pb.h"
#include "jambalancer/v1/rpc_list.h"
#include "server/core/jam_collection.h"

namespace jambalancer {

// Typed commands: what the edge makes of each request once it is checked
// and the server's defaults are applied. Operations (operations.h) take
// commands only, so they never see an unchecked request. A command borrows
// the strings of the request it was parsed from: whoever holds the command
// keeps that request alive.

// The API's limits on a request's size.
inline constexpr size_t kMaxRefreshUsers = 1024;
inline constexpr int kMaxBatchOperations = 1000;
// User ids in all of a Batch's operations together: a Batch runs in one
// strand step, which this keeps to a few milliseconds.
inline constexpr size_t kMaxBatchUserIds = 16384;
inline constexpr uint32_t kDefaultPageSize = 100;
inline constexpr uint32_t kMaxPageSize = 1000;
// A ListJams page ends early once it lists this many members (about 600
// KB), so that building it stays short and it fits a 4 MiB message.
inline constexpr size_t kMaxListedUserIds = 16384;

// `frontend_id` in a command: the front end calling, whose live session the
// call needs and whose lease it renews; empty for an anonymous call.

struct CurrentJamCommand {
  absl::string_view user_id;  // Empty: ask only, reserve nothing.
  // With a user id: how long the seat is held (the server's default for 0,
  // capped at its maximum). Zero without a user id.
  absl::Duration reservation_ttl;
  absl::string_view frontend_id = {};
};

struct RefreshCommand {
  absl::string_view jam_id;
  std::vector<absl::string_view> user_ids;  // May repeat; may be empty.
  absl::string_view frontend_id = {};
};

struct RemoveUserCommand {
  absl::string_view jam_id;
  absl::string_view user_id;
  absl::string_view frontend_id = {};
  absl::Duration hold_seat = {};  // Zero: the seat goes with the user.
};

struct HasCapacityCommand {
  absl::string_view jam_id;
  absl::string_view user_id;  // Empty: asking for anyone.
};

struct AddUserCommand {
  absl::string_view jam_id;
  absl::string_view user_id;
  absl::string_view frontend_id = {};
};

struct GetStatsCommand {};

// The ids a command names: the jam it may create (empty if none) and the
// users it may add (what kMaxBatchUserIds and the state's limits count).
struct NamedIds {
  absl::string_view jam_id;
  absl::Span<const absl::string_view> user_ids;
};
inline NamedIds NamedIdsOf(const CurrentJamCommand& command) {
  return {
      {},
      absl::MakeConstSpan(&command.user_id, command.user_id.empty() ? 0 : 1)};
}
inline NamedIds NamedIdsOf(const RefreshCommand& command) {
  // A Refresh listing no one creates nothing.
  return {command.user_ids.empty() ? absl::string_view() : command.jam_id,
          command.user_ids};
}
inline NamedIds NamedIdsOf(const AddUserCommand& command) {
  return {command.jam_id, absl::MakeConstSpan(&command.user_id, 1)};
}
// RemoveUser, HasCapacity and GetStats store nothing.
template <typename Command>
NamedIds NamedIdsOf(const Command&) {
  return {};
}

struct ListJamsCommand {
  std::string after_jam_id;  // Decoded from the page token; "" = first page.
  uint32_t page_size = kDefaultPageSize;  // In [1, kMaxPageSize].
};

// One operation of a Batch: the command of one of the RPCs in
// JAM_BALANCER_BATCH_RPCS.
#define JAM_BALANCER_DROP_FIRST(...) JAM_BALANCER_DROP_FIRST_(__VA_ARGS__)
#define JAM_BALANCER_DROP_FIRST_(first, ...) __VA_ARGS__
#define JAM_BALANCER_COMMA_COMMAND(Method, field) , Method##Command
using BatchItem = std::variant<JAM_BALANCER_DROP_FIRST(
    JAM_BALANCER_BATCH_RPCS(JAM_BALANCER_COMMA_COMMAND))>;
#undef JAM_BALANCER_COMMA_COMMAND
#undef JAM_BALANCER_DROP_FIRST_
#undef JAM_BALANCER_DROP_FIRST

struct BatchCommand {
  std::vector<BatchItem> operations;  // At most kMaxBatchOperations.
};

struct KeepAliveCommand {
  absl::string_view frontend_id;  // Not empty.
};

struct EndSessionCommand {
  absl::string_view frontend_id;  // Not empty.
};

struct ListSessionsCommand {};

struct GetJamCommand {
  absl::string_view jam_id;
};

// ListPools and GetRouting read every pool's settings and leader; they have
// nothing to check.
struct ListPoolsCommand {};
struct GetRoutingCommand {};

// A whole Sync stream: the jams of all its messages, in order.
struct SyncCommand {
  absl::string_view frontend_id;  // Not empty.
  absl::Duration lease_ttl;       // Defaulted and capped.
  std::vector<JamMembers> jams;   // Each within Refresh's limits.
  // pools[i] is the pool of jams[i], as requested ("" for the default
  // pool); a well-formed name, maybe not a configured one.
  std::vector<absl::string_view> pools;
  // The user lists that `jams` point into.
  std::vector<std::vector<absl::string_view>> user_lists;
};

// A Sync's jams grouped by pool: one command per pool named (the default
// pool as kDefaultPoolName), in name order, each with the Sync's front end
// and lease. They borrow `command`'s user lists: it must outlive them.
std::vector<std::pair<std::string, SyncCommand>> SplitByPool(
    const SyncCommand& command);

// Reservation times a CurrentJam command may carry (and held seats).
struct ReservationPolicy {
  absl::Duration default_ttl;  // For a request asking 0 ms.
  absl::Duration max_ttl;      // Longer requests are capped to it.
};

// Lease times a Sync may ask for.
struct LeasePolicy {
  absl::Duration default_ttl;  // For a request asking 0 ms.
  absl::Duration max_ttl;      // Longer requests are capped to it.
};

// Turns requests into commands: each id checked (see id_validation.h), each
// size limit enforced, defaults applied, the page token decoded. Errors are
// INVALID_ARGUMENT naming the first bad field (in a Batch with its place,
// e.g. "operations[3].add_user.user_id ..."). Thread-safe (immutable).
class CommandParser {
 public:
  CommandParser(ReservationPolicy reservations, LeasePolicy leases)
      : reservations_(reservations), leases_(leases) {}

  absl::StatusOr<CurrentJamCommand> Parse(
      const v1::CurrentJamRequest& request) const;
  absl::StatusOr<RefreshCommand> Parse(const v1::RefreshRequest& request) const;
  absl::StatusOr<RemoveUserCommand> Parse(
      const v1::RemoveUserRequest& request) const;
  absl::StatusOr<HasCapacityCommand> Parse(
      const v1::HasCapacityRequest& request) const;
  absl::StatusOr<AddUserCommand> Parse(const v1::AddUserRequest& request) const;
  absl::StatusOr<GetStatsCommand> Parse(
      const v1::GetStatsRequest& request) const;
  absl::StatusOr<ListJamsCommand> Parse(
      const v1::ListJamsRequest& request) const;
  absl::StatusOr<BatchCommand> Parse(const v1::BatchRequest& request) const;
  absl::StatusOr<KeepAliveCommand> Parse(
      const v1::KeepAliveRequest& request) const;
  absl::StatusOr<EndSessionCommand> Parse(
      const v1::EndSessionRequest& request) const;
  absl::StatusOr<ListSessionsCommand> Parse(
      const v1::ListSessionsRequest& request) const;
  absl::StatusOr<GetJamCommand> Parse(const v1::GetJamRequest& request) const;
  absl::StatusOr<ListPoolsCommand> Parse(
      const v1::ListPoolsRequest& request) const;
  absl::StatusOr<GetRoutingCommand> Parse(
      const v1::GetRoutingRequest& request) const;
  // The messages of one Sync stream, in order; the command borrows them.
  // Errors name the message, e.g. "messages[2].jams[0].user_ids[5]".
  absl::StatusOr<SyncCommand> Parse(
      absl::Span<const v1::SyncRequest* const> messages) const;

 private:
  absl::Duration Capped(absl::Duration asked, absl::Duration default_ttl,
                        absl::Duration max_ttl) const;

  const ReservationPolicy reservations_;
  const LeasePolicy leases_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_COMMANDS_H_
