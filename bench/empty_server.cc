// empty-server: the limit for benchmarks of the jam balancer. A minimal
// callback-API unary gRPC server of the same service (JamBalancerService),
// built with the same flags, that does no work: every method finishes at
// once on the gRPC thread with a constant, plausible answer (CurrentJam a
// fixed jam id, AddUser added, Batch one such answer per operation), so
// jam-bench and h2load drive it exactly as they drive jam-balancer. What
// jam-balancer adds over this server is its own cost.
//
// Serves until SIGTERM or SIGINT, then logs how many calls it answered
// (`calls=N`), which lets a benchmark check a third-party client's count.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051",
          "host:port for gRPC; port 0 picks a free port (logged at start)");

namespace jambalancer {
namespace {

constexpr char kJamId[] = "6f1c2a9e-3b7d-4c55-9a0e-2d8f41b7c6a3";
constexpr uint32_t kMaxUsers = 7;

// Answers every call at once, counting the calls.
class EmptyService final : public v1::JamBalancerService::CallbackService {
 public:
  uint64_t calls() const { return calls_.load(); }

  grpc::ServerUnaryReactor* CurrentJam(
      grpc::CallbackServerContext* context, const v1::CurrentJamRequest*,
      v1::CurrentJamResponse* response) override {
    Answer(response);
    return Finish(context);
  }
  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* context,
                                    const v1::RefreshRequest* request,
                                    v1::RefreshResponse* response) override {
    Answer(*request, response);
    return Finish(context);
  }
  grpc::ServerUnaryReactor* RemoveUser(
      grpc::CallbackServerContext* context, const v1::RemoveUserRequest*,
      v1::RemoveUserResponse* response) override {
    Answer(response);
    return Finish(context);
  }
  grpc::ServerUnaryReactor* HasCapacity(
      grpc::CallbackServerContext* context, const v1::HasCapacityRequest*,
      v1::HasCapacityResponse* response) override {
    Answer(response);
    return Finish(context);
  }
  grpc::ServerUnaryReactor* AddUser(grpc::CallbackServerContext* context,
                                    const v1::AddUserRequest*,
                                    v1::AddUserResponse* response) override {
    Answer(response);
    return Finish(context);
  }
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest*,
                                     v1::GetStatsResponse* response) override {
    Answer(response);
    return Finish(context);
  }
  grpc::ServerUnaryReactor* ListJams(grpc::CallbackServerContext* context,
                                     const v1::ListJamsRequest*,
                                     v1::ListJamsResponse*) override {
    return Finish(context);
  }
  // One answer per operation, of the operation's kind.
  grpc::ServerUnaryReactor* Batch(grpc::CallbackServerContext* context,
                                  const v1::BatchRequest* request,
                                  v1::BatchResponse* response) override {
    response->mutable_results()->Reserve(request->operations_size());
    for (const v1::BatchOperation& operation : request->operations()) {
      v1::BatchResult* result = response->add_results();
      switch (operation.operation_case()) {
        case v1::BatchOperation::kCurrentJam:
          Answer(result->mutable_current_jam());
          break;
        case v1::BatchOperation::kRefresh:
          Answer(operation.refresh(), result->mutable_refresh());
          break;
        case v1::BatchOperation::kRemoveUser:
          Answer(result->mutable_remove_user());
          break;
        case v1::BatchOperation::kHasCapacity:
          Answer(result->mutable_has_capacity());
          break;
        case v1::BatchOperation::kAddUser:
          Answer(result->mutable_add_user());
          break;
        case v1::BatchOperation::kGetStats:
          Answer(result->mutable_get_stats());
          break;
        case v1::BatchOperation::OPERATION_NOT_SET:
          break;
      }
    }
    return Finish(context);
  }

 private:
  static void Answer(v1::CurrentJamResponse* response) {
    response->set_jam_id(kJamId);
    response->set_user_count(3);
  }
  static void Answer(const v1::RefreshRequest& request,
                     v1::RefreshResponse* response) {
    response->set_user_count(request.user_ids_size());
  }
  static void Answer(v1::RemoveUserResponse* response) {
    response->set_removed(true);
    response->set_user_count(3);
  }
  static void Answer(v1::HasCapacityResponse* response) {
    response->set_has_capacity(true);
    response->set_user_count(3);
    response->set_max_users(kMaxUsers);
  }
  static void Answer(v1::AddUserResponse* response) {
    response->set_added(true);
    response->set_user_count(4);
  }
  static void Answer(v1::GetStatsResponse* response) {
    response->set_max_users(kMaxUsers);
  }

  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::atomic<uint64_t> calls_{0};
};

void Log(const std::string& line) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", absl::Now(),
                                absl::UTCTimeZone())
            << line << std::endl;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "An empty JamBalancerService (the limit for benchmarks).\n"
      "Usage: empty-server [--listen=HOST:PORT]");
  absl::ParseCommandLine(argc, argv);
  // As jam-balancer does, so that the limit is measured alike.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string listen = absl::GetFlag(FLAGS_listen);

  // Only sigwait below receives the stop signals: block them before any
  // thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  EmptyService service;
  grpc::ServerBuilder builder;
  // As jam-balancer does.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(absl::StrCat("ERROR not started: cannot listen on ", listen));
    return EXIT_FAILURE;
  }
  Log(absl::StrCat("INFO empty-server started listen=", listen,
                   " port=", port));

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  Log(absl::StrCat("INFO empty-server stopped calls=", service.calls()));
  return EXIT_SUCCESS;
}

}  // namespace
}  // namespace jambalancer

int main(int argc, char** argv) { return jambalancer::Main(argc, argv); }
