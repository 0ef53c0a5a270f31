#include "server/rpc/balancer_server.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/balancer_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;

TEST(BalancerServerStartTest, RejectsZeroMaxUsersAndBusyPort) {
  ServerOptions options = test::LoopbackOptions();
  options.max_users = 0;
  EXPECT_EQ(BalancerServer::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);

  options.max_users = 7;
  auto first = BalancerServer::Start(options);
  ASSERT_TRUE(first.ok());
  options.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = BalancerServer::Start(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(options.listen));
}

TEST(BalancerServerStartTest, RejectsReservationSettingsOutOfRange) {
  ServerOptions options = test::LoopbackOptions();
  options.reservation_ttl = absl::ZeroDuration();
  EXPECT_EQ(BalancerServer::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.reservation_ttl = absl::Minutes(5);  // Above the maximum.
  EXPECT_EQ(BalancerServer::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_reservation_ttl = kMaxReservationTtlSetting + absl::Seconds(1);
  const absl::Status status = BalancerServer::Start(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("max_reservation_ttl"));
}

TEST(BalancerServerStartTest, ServesMetricsOnAPortItPicks) {
  ServerOptions options = test::LoopbackOptions();
  EXPECT_EQ(test::StartServer(options)->metrics_port(), 0);  // Off.
  options.metrics_listen = "127.0.0.1:0";
  std::unique_ptr<BalancerServer> server = test::StartServer(options);
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->metrics_port(), 0);
  // A second server cannot take the same metrics port.
  options.metrics_listen = absl::StrCat("127.0.0.1:", server->metrics_port());
  const absl::Status busy = BalancerServer::Start(options).status();
  EXPECT_EQ(busy.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(busy.message(), HasSubstr("metrics"));
}

TEST(BalancerServerTest, HealthNamesTheServiceUntilShutdown) {
  std::unique_ptr<BalancerServer> server = test::StartServer();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<BalancerClient> client = test::NewClient(*server);
  const std::string service = v1::JamBalancerService::service_full_name();
  EXPECT_EQ(service, "jambalancer.v1.JamBalancerService");
  absl::StatusOr<bool> serving = client->IsServing(service);
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
  server->Shutdown(absl::Seconds(1));
  server->Shutdown(absl::Seconds(1));  // Idempotent.
  EXPECT_FALSE(client->IsServing(service).ok());
}

}  // namespace
}  // namespace jambalancer
