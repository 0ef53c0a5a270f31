#include "tests/testing/test_server.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jambalancer::test {

ServerOptions LoopbackOptions() {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "";
  options.resync_grace = absl::ZeroDuration();
  return options;
}

std::unique_ptr<BalancerServer> StartServer(const ServerOptions& options) {
  absl::StatusOr<std::unique_ptr<BalancerServer>> server =
      BalancerServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

std::string TargetOf(const BalancerServer& server) {
  return absl::StrCat("127.0.0.1:", server.port());
}

std::unique_ptr<BalancerClient> NewClient(const BalancerServer& server,
                                          absl::Duration deadline) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  BalancerClient::Options options;
  options.deadline = deadline;
  return std::make_unique<BalancerClient>(
      grpc::CreateCustomChannel(TargetOf(server),
                                grpc::InsecureChannelCredentials(), args),
      options);
}

}  // namespace jambalancer::test
