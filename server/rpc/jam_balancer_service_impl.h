#ifndef JAM_BALANCER_SERVER_RPC_JAM_BALANCER_SERVICE_IMPL_H_
#define JAM_BALANCER_SERVER_RPC_JAM_BALANCER_SERVICE_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "jambalancer/v1/rpc_list.h"
#include "server/metrics/rpc_metrics.h"
#include "server/rpc/commands.h"
#include "server/rpc/pool_directory.h"

namespace jambalancer {
namespace internal {

// Stacks gRPC's per-method mixins onto a base: Stack<B, M1, M2>::type is
// M1<M2<B>>.
template <typename Base, template <typename> class... Mixins>
struct Stack {
  using type = Base;
};
template <typename Base, template <typename> class First,
          template <typename> class... Rest>
struct Stack<Base, First, Rest...> {
  using type = First<typename Stack<Base, Rest...>::type>;
};

// JamBalancerService with every RPC of rpc_list.h on the callback API and
// requests and responses as raw bytes, so that the service parses requests
// itself (see request_parser.h).
#define JAM_BALANCER_RAW_MIXIN(Method, field) \
  , v1::JamBalancerService::WithRawCallbackMethod_##Method
using RawCallbackService =
    Stack<v1::JamBalancerService::Service JAM_BALANCER_RPCS(
        JAM_BALANCER_RAW_MIXIN)
              JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_RAW_MIXIN)>::type;
#undef JAM_BALANCER_RAW_MIXIN

}  // namespace internal

// The gRPC edge of JamBalancerService: each handler parses its request into
// a typed command (commands.h), finds the pool it names, posts the
// command's operation (operations.h) to that pool's strand, and returns;
// the strand finishes the call with the result. Calls on the server as a
// whole (KeepAlive, EndSession, Sync, ListPools) post one operation to each
// pool they touch and finish once all have answered. Handlers never wait
// for a strand, so gRPC threads never block on one. Bad requests are
// answered on the gRPC thread and change nothing. Every call is counted in
// RpcMetrics under its method.
class JamBalancerServiceImpl final : public internal::RawCallbackService {
 public:
  // `pools` and `metrics` must outlive the service; `metrics` counts
  // methods in the order of JAM_BALANCER_RPCS (see NewRpcMetrics). A pool
  // with a gate is served only while its gate lets this replica serve it,
  // and its answers only at the epoch its operation ran at (see Gate).
  JamBalancerServiceImpl(const PoolDirectory* pools, RpcMetrics* metrics)
      : pools_(pools), metrics_(metrics) {}

  // RpcMetrics labelled with this service's name and its methods.
  static RpcMetrics NewRpcMetrics();

#define JAM_BALANCER_DECLARE_HANDLER(Method, field)                      \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, \
                                   const grpc::ByteBuffer* request,      \
                                   grpc::ByteBuffer* response) override;
  JAM_BALANCER_RPCS(JAM_BALANCER_DECLARE_HANDLER)
#undef JAM_BALANCER_DECLARE_HANDLER

  // Reads the whole stream, then applies it pool by pool, in strand steps.
  grpc::ServerReadReactor<grpc::ByteBuffer>* Sync(
      grpc::CallbackServerContext* context,
      grpc::ByteBuffer* response) override;

 private:
  class SyncReactor;
  template <typename Response>
  class PoolsCall;

  // Parses the request into a Command, runs its operation on the strand of
  // the pool it names and finishes the call with the response, counting it
  // as `rpc`.
  template <typename Command, typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(Rpc rpc, grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response);

  // The status a call on `pool` finishes with, and its trailing metadata:
  // with a gate, the pool's epoch; and when this replica may not serve the
  // pool (or no longer leads the epoch `applied_epoch` that the operation
  // ran at), UNAVAILABLE with the pool's leader's address. Without a gate,
  // `status`. Any thread; call once per call, before Finish (several times
  // for several pools, each adding its metadata).
  static grpc::Status Gate(grpc::CallbackServerContext* context,
                           const ServedPool& pool, const grpc::Status& status,
                           std::optional<int64_t> applied_epoch);
  // The pools this replica serves now; UNAVAILABLE (with the default pool's
  // leader in the metadata) if none.
  absl::StatusOr<std::vector<ServedPool*>> ServingPools(
      grpc::CallbackServerContext* context) const;
  // A server-wide call's request parsed from `bytes` into `request` and its
  // command (which borrows `request`), and the pools it acts on: those this
  // replica serves. An error as the call should be answered.
  template <typename Command, typename Request>
  absl::StatusOr<std::vector<ServedPool*>> ParseServerCall(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* bytes,
      Request* request, std::optional<Command>* command) const;
  // CANCELLED or DEADLINE_EXCEEDED for a call whose caller is gone or whose
  // deadline has passed (it is then not run); nullopt for a live call. Any
  // thread, while the call is alive.
  static std::optional<grpc::Status> Abandoned(
      grpc::CallbackServerContext* context);

  const PoolDirectory* const pools_;
  RpcMetrics* const metrics_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_JAM_BALANCER_SERVICE_IMPL_H_
