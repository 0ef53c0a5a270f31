#include "server/rpc/balancer_server.h"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/balancer_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/settable_gate.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Key;
using ::testing::Not;
using ::testing::Pair;

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

using test::SettableGate;

// One AddUser over a raw stub, with its trailing metadata.
struct Answer {
  grpc::Status status;
  v1::AddUserResponse response;
  std::multimap<std::string, std::string> trailers;
};
Answer AddUser(v1::JamBalancerService::Stub& stub, const std::string& user) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::AddUserRequest request;
  request.set_jam_id("j");
  request.set_user_id(user);
  Answer answer;
  answer.status = stub.AddUser(&context, request, &answer.response);
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    answer.trailers.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
  }
  return answer;
}

TEST(BalancerServerGateTest, OnlyTheLeaderAnswersAndOnlyAtItsEpoch) {
  SettableGate gate;
  auto started = BalancerServer::Start(
      test::LoopbackOptions(), [&gate](const std::string&) { return &gate; });
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<BalancerServer> server = *std::move(started);
  std::unique_ptr<BalancerClient> client = test::NewClient(*server);
  const std::string service = v1::JamBalancerService::service_full_name();
  auto stub = v1::JamBalancerService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                          grpc::InsecureChannelCredentials()));

  // A standby: refused, pointing at the leader; health NOT_SERVING for the
  // balancer service, SERVING for the process.
  gate.Set(false, 7, "10.0.0.1:50051");
  Answer standby = AddUser(*stub, "ann");
  EXPECT_EQ(standby.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(standby.status.error_message(), HasSubstr("10.0.0.1:50051"));
  EXPECT_THAT(standby.trailers,
              Contains(Pair(kLeaderMetadataKey, "10.0.0.1:50051")));
  EXPECT_THAT(standby.trailers, Contains(Pair(kEpochMetadataKey, "7")));
  EXPECT_FALSE(*client->IsServing(service));
  EXPECT_TRUE(*client->IsServing(""));

  // It now leads at epoch 9, but its state is not that epoch's until the
  // server is told: an answer from the old state must not go out.
  gate.Set(true, 9, "127.0.0.1:1");
  EXPECT_EQ(AddUser(*stub, "bob").status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  server->OnLeadershipChange("default", true, 9);
  Answer leader = AddUser(*stub, "cat");
  ASSERT_TRUE(leader.status.ok()) << leader.status.error_message();
  EXPECT_TRUE(leader.response.added());
  EXPECT_EQ(leader.response.user_count(), 1u);  // A fresh state: cat only.
  EXPECT_THAT(leader.trailers, Contains(Pair(kEpochMetadataKey, "9")));
  EXPECT_THAT(leader.trailers, Not(Contains(Key(kLeaderMetadataKey))));
  EXPECT_TRUE(*client->IsServing(service));

  // Fenced (its lease lapsed): refused at once, before etcd says anything.
  gate.Set(false, 9, "");
  Answer fenced = AddUser(*stub, "dan");
  EXPECT_EQ(fenced.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(fenced.trailers, Not(Contains(Key(kLeaderMetadataKey))));
  server->OnLeadershipChange("default", false, 9);
  EXPECT_FALSE(*client->IsServing(service));

  // Leading again later at a higher epoch: it starts empty again.
  gate.Set(true, 12, "127.0.0.1:1");
  server->OnLeadershipChange("default", true, 12);
  Answer again = AddUser(*stub, "eve");
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_EQ(again.response.user_count(), 1u);
  EXPECT_THAT(again.trailers, Contains(Pair(kEpochMetadataKey, "12")));
}

}  // namespace
}  // namespace jambalancer
