#ifndef JAM_BALANCER_PROTO_JAMBALANCER_V1_RPC_LIST_H_
#define JAM_BALANCER_PROTO_JAMBALANCER_V1_RPC_LIST_H_

// The one list of JamBalancerService's RPCs, in the order of the proto.
// Everything that has a part per RPC is generated from it: the service's
// handlers, the Batch dispatch, the metrics' method labels, jamctl's
// commands. tests/rpc/rpc_list_test.cc checks it against the proto's
// descriptors, so a method missing here fails there.
//
// Each entry is X(Method, field): `Method` names the RPC (and, by the
// project's naming rule, the types v1::<Method>Request,
// v1::<Method>Response and <Method>Command); `field` is its snake_case name,
// which is also the BatchOperation / BatchResult oneof field for the RPCs
// that Batch can run.
//
// To add an RPC: see CONTRIBUTING.md.

#include <cstddef>
#include <string_view>

// RPCs that Batch can run, in the order of BatchOperation's oneof.
#define JAM_BALANCER_BATCH_RPCS(X) \
  X(CurrentJam, current_jam)       \
  X(Refresh, refresh)              \
  X(RemoveUser, remove_user)       \
  X(HasCapacity, has_capacity)     \
  X(AddUser, add_user)             \
  X(GetStats, get_stats)

// Unary RPCs that act on one pool (their request names it): each runs on
// that pool's strand.
#define JAM_BALANCER_POOL_RPCS(X) \
  JAM_BALANCER_BATCH_RPCS(X)      \
  X(ListJams, list_jams)          \
  X(Batch, batch)                 \
  X(ListSessions, list_sessions)  \
  X(GetJam, get_jam)

// Unary RPCs that act on the server as a whole (on every pool it serves, or
// on none), after the pool RPCs in the proto; each has a handler of its own.
#define JAM_BALANCER_SERVER_RPCS(X) \
  X(KeepAlive, keep_alive)          \
  X(EndSession, end_session)        \
  X(ListPools, list_pools)          \
  X(GetRouting, get_routing)

// Every unary RPC of the service.
#define JAM_BALANCER_RPCS(X) \
  JAM_BALANCER_POOL_RPCS(X)  \
  JAM_BALANCER_SERVER_RPCS(X)

// The client-streaming RPCs, after the unary ones in the proto; each has a
// handler of its own.
#define JAM_BALANCER_CLIENT_STREAMING_RPCS(X) X(Sync, sync)

namespace jambalancer {

// One value per RPC, usable as an index into per-RPC arrays.
enum class Rpc : int {
#define JAM_BALANCER_RPC_ENUM(Method, field) k##Method,
  JAM_BALANCER_RPCS(JAM_BALANCER_RPC_ENUM)
      JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_RPC_ENUM)
#undef JAM_BALANCER_RPC_ENUM
};

// The method names, e.g. "CurrentJam", indexed by Rpc.
inline constexpr std::string_view kRpcNames[] = {
#define JAM_BALANCER_RPC_NAME(Method, field) #Method,
    JAM_BALANCER_RPCS(JAM_BALANCER_RPC_NAME)
        JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_RPC_NAME)
#undef JAM_BALANCER_RPC_NAME
};

// The method types as gRPC metrics name them ("unary", "client_stream"),
// indexed by Rpc.
inline constexpr std::string_view kRpcTypes[] = {
#define JAM_BALANCER_RPC_UNARY(Method, field) "unary",
#define JAM_BALANCER_RPC_CLIENT_STREAM(Method, field) "client_stream",
    JAM_BALANCER_RPCS(JAM_BALANCER_RPC_UNARY)
        JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_RPC_CLIENT_STREAM)
#undef JAM_BALANCER_RPC_CLIENT_STREAM
#undef JAM_BALANCER_RPC_UNARY
};

inline constexpr size_t kRpcCount = sizeof(kRpcNames) / sizeof(kRpcNames[0]);

constexpr std::string_view RpcName(Rpc rpc) {
  return kRpcNames[static_cast<size_t>(rpc)];
}

}  // namespace jambalancer

#endif  // JAM_BALANCER_PROTO_JAMBALANCER_V1_RPC_LIST_H_
