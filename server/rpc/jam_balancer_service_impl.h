#ifndef JAM_BALANCER_SERVER_RPC_JAM_BALANCER_SERVICE_IMPL_H_
#define JAM_BALANCER_SERVER_RPC_JAM_BALANCER_SERVICE_IMPL_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <optional>

#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "jambalancer/v1/rpc_list.h"
#include "server/metrics/rpc_metrics.h"
#include "server/rpc/commands.h"
#include "server/rpc/serving_gate.h"
#include "server/runtime/jam_pool.h"

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
// a typed command (commands.h), posts the command's operation
// (operations.h) to the pool's strand, and returns; the strand finishes the
// call with the result. Handlers never wait for the strand, so gRPC threads
// never block on it. Bad requests are answered on the gRPC thread and change
// nothing. Every call is counted in RpcMetrics under its method.
class JamBalancerServiceImpl final : public internal::RawCallbackService {
 public:
  // `pool`, `metrics` and `gate` must outlive the service; `metrics`
  // counts methods in the order of JAM_BALANCER_RPCS (see NewRpcMetrics).
  // With a `gate` (null: the server runs alone) a call is answered only
  // while the gate lets this replica serve, and only at the epoch its
  // operation ran at (see Gate).
  JamBalancerServiceImpl(JamPool* pool, RpcMetrics* metrics,
                         CommandParser parser,
                         const ServingGate* gate = nullptr)
      : pool_(pool), metrics_(metrics), parser_(parser), gate_(gate) {}

  // RpcMetrics labelled with this service's name and its methods.
  static RpcMetrics NewRpcMetrics();

#define JAM_BALANCER_DECLARE_HANDLER(Method, field)                      \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, \
                                   const grpc::ByteBuffer* request,      \
                                   grpc::ByteBuffer* response) override;
  JAM_BALANCER_RPCS(JAM_BALANCER_DECLARE_HANDLER)
#undef JAM_BALANCER_DECLARE_HANDLER

  // Reads the whole stream, then applies it in one strand step.
  grpc::ServerReadReactor<grpc::ByteBuffer>* Sync(
      grpc::CallbackServerContext* context,
      grpc::ByteBuffer* response) override;

 private:
  class SyncReactor;

  // Parses the request into a Command, runs its operation on the strand and
  // finishes the call with the response, counting it as `rpc`.
  template <typename Command, typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(Rpc rpc, grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response);

  // With a gate, the status a call finishes with, and its trailing metadata:
  // the epoch; and when this replica may not serve at all (or no longer
  // leads the epoch `applied_epoch` that the operation ran at), UNAVAILABLE
  // with the leader's address. Without a gate, `status`. Any thread; call
  // once per call, before Finish.
  grpc::Status Gate(grpc::CallbackServerContext* context,
                    const grpc::Status& status,
                    std::optional<int64_t> applied_epoch) const;
  // Whether a call may start at all (a standby refuses before parsing).
  bool MayStart() const;
  // CANCELLED or DEADLINE_EXCEEDED for a call whose caller is gone or whose
  // deadline has passed (it is then not run); nullopt for a live call. Any
  // thread, while the call is alive.
  static std::optional<grpc::Status> Abandoned(
      grpc::CallbackServerContext* context);

  JamPool* const pool_;
  RpcMetrics* const metrics_;
  const CommandParser parser_;
  const ServingGate* const gate_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_JAM_BALANCER_SERVICE_IMPL_H_
