#ifndef JAM_BALANCER_SERVER_RPC_OPERATIONS_H_
#define JAM_BALANCER_SERVER_RPC_OPERATIONS_H_

#include "absl/time/time.h"
#include "jambalancer/v1/jam_balancer.pb.h"
#include "server/core/jam_collection.h"
#include "server/rpc/commands.h"

namespace jambalancer {

// What each RPC does: applies a checked command to a pool's collection at
// `now` and fills in the response. One overload per RPC. These run on the
// pool's strand (the caller has exclusive access to `jams`); they are pure
// otherwise, so tests call them directly.

void Apply(const CurrentJamCommand& command, absl::Time now,
           JamCollection& jams, v1::CurrentJamResponse* response);
void Apply(const RefreshCommand& command, absl::Time now, JamCollection& jams,
           v1::RefreshResponse* response);
void Apply(const RemoveUserCommand& command, absl::Time now,
           JamCollection& jams, v1::RemoveUserResponse* response);
void Apply(const HasCapacityCommand& command, absl::Time now,
           JamCollection& jams, v1::HasCapacityResponse* response);
void Apply(const AddUserCommand& command, absl::Time now, JamCollection& jams,
           v1::AddUserResponse* response);
void Apply(const GetStatsCommand& command, absl::Time now, JamCollection& jams,
           v1::GetStatsResponse* response);
void Apply(const ListJamsCommand& command, absl::Time now, JamCollection& jams,
           v1::ListJamsResponse* response);
// Runs the operations in order, one result each, in this one call.
void Apply(const BatchCommand& command, absl::Time now, JamCollection& jams,
           v1::BatchResponse* response);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_OPERATIONS_H_
