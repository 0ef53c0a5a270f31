#ifndef JAM_BALANCER_SERVER_BALANCER_SERVICE_H_
#define JAM_BALANCER_SERVER_BALANCER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "server/jam_balancer.h"
#include "server/rpc_metrics.h"

namespace jambalancer {

// Every method of JamBalancerService on the callback API, with requests and
// responses as raw bytes so that the service parses requests itself (see
// request_parser.h).
using GeneratedService = v1::JamBalancerService;
using RawCallbackJamBalancerService =
    GeneratedService::WithRawCallbackMethod_CurrentJam<
        GeneratedService::WithRawCallbackMethod_Refresh<
            GeneratedService::WithRawCallbackMethod_RemoveUser<
                GeneratedService::WithRawCallbackMethod_HasCapacity<
                    GeneratedService::WithRawCallbackMethod_AddUser<
                        GeneratedService::WithRawCallbackMethod_GetStats<
                            GeneratedService::WithRawCallbackMethod_ListJams<
                                GeneratedService::WithRawCallbackMethod_Batch<
                                    GeneratedService::Service>>>>>>>>;

// The gRPC edge: parses and validates each request, posts the operation to
// the balancer's strand, and finishes the call from the strand with the
// result. Handlers never wait for the strand, so gRPC threads never block on
// it. Bad requests are answered on the gRPC thread and change nothing.
class BalancerService final : public RawCallbackJamBalancerService {
 public:
  struct Options {
    // Reservation time when a CurrentJam request asks for 0 ms.
    absl::Duration reservation_ttl = absl::Seconds(15);
    // Longest reservation a request may ask for; longer ones are capped.
    absl::Duration max_reservation_ttl = absl::Minutes(2);
  };

  // `balancer` and `metrics` must outlive the service.
  BalancerService(JamBalancer* balancer, RpcMetrics* metrics, Options options)
      : balancer_(balancer), metrics_(metrics), options_(options) {}

  grpc::ServerUnaryReactor* CurrentJam(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* RemoveUser(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* HasCapacity(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* AddUser(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListJams(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Batch(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;

 private:
  // Parses and prepares the request, then runs `apply` on the strand and
  // finishes the call with its response, counting it in the metrics as
  // `method`. `apply` maps a valid request to
  // its response; it runs with exclusive access to the collection.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(
      RpcMethod method, grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request, grpc::ByteBuffer* response,
      void (*apply)(const Request&, absl::Time now, JamCollection&, Response*));

  // Validates a parsed request and fills in server defaults.
  template <typename Request>
  absl::Status Prepare(Request* request) const;
  absl::Status Prepare(v1::CurrentJamRequest* request) const;
  absl::Status Prepare(v1::BatchRequest* request) const;

  JamBalancer* const balancer_;
  RpcMetrics* const metrics_;
  const Options options_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_BALANCER_SERVICE_H_
