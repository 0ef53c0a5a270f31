#ifndef JAM_BALANCER_SERVER_BALANCER_SERVICE_H_
#define JAM_BALANCER_SERVER_BALANCER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "server/jam_balancer.h"

namespace jambalancer {

// The gRPC edge: validates each request, posts the operation to the balancer's
// strand, and finishes the call from the strand with the result. Handlers
// never wait for the strand, so gRPC threads never block on it.
class BalancerService final : public v1::JamBalancerService::CallbackService {
 public:
  // `balancer` must outlive the service.
  explicit BalancerService(JamBalancer* balancer) : balancer_(balancer) {}

  grpc::ServerUnaryReactor* CurrentJam(
      grpc::CallbackServerContext* context,
      const v1::CurrentJamRequest* request,
      v1::CurrentJamResponse* response) override;
  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* context,
                                    const v1::RefreshRequest* request,
                                    v1::RefreshResponse* response) override;
  grpc::ServerUnaryReactor* RemoveUser(
      grpc::CallbackServerContext* context,
      const v1::RemoveUserRequest* request,
      v1::RemoveUserResponse* response) override;
  grpc::ServerUnaryReactor* HasCapacity(
      grpc::CallbackServerContext* context,
      const v1::HasCapacityRequest* request,
      v1::HasCapacityResponse* response) override;
  grpc::ServerUnaryReactor* AddUser(grpc::CallbackServerContext* context,
                                    const v1::AddUserRequest* request,
                                    v1::AddUserResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListJams(grpc::CallbackServerContext* context,
                                     const v1::ListJamsRequest* request,
                                     v1::ListJamsResponse* response) override;

 private:
  // Posts `operation` to the strand and finishes `reactor` with OK after it
  // ran, or with UNAVAILABLE at once if the balancer is shutting down.
  grpc::ServerUnaryReactor* Dispatch(grpc::ServerUnaryReactor* reactor,
                                     JamBalancer::Operation operation);

  JamBalancer* const balancer_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_BALANCER_SERVICE_H_
