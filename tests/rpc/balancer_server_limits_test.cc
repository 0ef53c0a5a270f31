// The server's limits and liveness end to end over loopback: calls past a
// limit are refused with RESOURCE_EXHAUSTED naming it and change nothing,
// and health (on the gRPC port and on the health-only port) turns
// NOT_SERVING while the strand is stuck.

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "server/rpc/balancer_server.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<grpc::Channel> Dial(int port) {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                             grpc::InsecureChannelCredentials());
}

v1::GetStatsResponse Stats(v1::JamBalancerService::Stub& stub) {
  grpc::ClientContext context;
  v1::GetStatsResponse stats;
  EXPECT_TRUE(stub.GetStats(&context, {}, &stats).ok());
  return stats;
}

grpc::Status Refresh(v1::JamBalancerService::Stub& stub, const std::string& jam,
                     int users, const std::string& prefix) {
  v1::RefreshRequest request;
  request.set_jam_id(jam);
  for (int i = 0; i < users; ++i) {
    request.add_user_ids(absl::StrCat(prefix, i));
  }
  grpc::ClientContext context;
  v1::RefreshResponse response;
  return stub.Refresh(&context, request, &response);
}

TEST(ServerLimitsTest, MaxTotalUsersAndMaxJamsRefuseAndChangeNothing) {
  ServerOptions options = test::LoopbackOptions();
  options.max_total_users = 20;
  options.max_jams = 3;
  std::unique_ptr<BalancerServer> server = test::StartServer(options);
  auto stub = v1::JamBalancerService::NewStub(Dial(server->port()));

  ASSERT_TRUE(Refresh(*stub, "a", 15, "u").ok());
  // 15 + 6 new users would pass 20: refused, nothing stored.
  grpc::Status refused = Refresh(*stub, "b", 6, "v");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("max_total_users (20)"));
  EXPECT_EQ(Stats(*stub).user_count(), 15u);
  EXPECT_EQ(Stats(*stub).jam_count(), 1u);
  ASSERT_TRUE(Refresh(*stub, "b", 5, "v").ok());
  EXPECT_EQ(Stats(*stub).user_count(), 20u);
  // Users already stored count nothing: listing them again is fine.
  EXPECT_TRUE(Refresh(*stub, "b", 5, "v").ok());
  {
    v1::AddUserRequest request;
    request.set_jam_id("a");
    request.set_user_id("one-more");
    grpc::ClientContext context;
    v1::AddUserResponse response;
    grpc::Status status = stub->AddUser(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // A seat for a new user would be a 21st user.
  {
    v1::CurrentJamRequest request;
    request.set_user_id("seat");
    grpc::ClientContext context;
    v1::CurrentJamResponse response;
    EXPECT_EQ(stub->CurrentJam(&context, request, &response).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Removing makes room again.
  {
    v1::RemoveUserRequest request;
    request.set_jam_id("a");
    request.set_user_id("u14");
    grpc::ClientContext context;
    v1::RemoveUserResponse response;
    ASSERT_TRUE(stub->RemoveUser(&context, request, &response).ok());
    EXPECT_TRUE(response.removed());
  }
  ASSERT_TRUE(Refresh(*stub, "c", 1, "w").ok());    // A third jam.
  grpc::Status jams = Refresh(*stub, "d", 0, "x");  // Lists no one: fine.
  EXPECT_TRUE(jams.ok());
  {
    v1::RemoveUserRequest request;
    request.set_jam_id("c");
    request.set_user_id("w0");
    grpc::ClientContext context;
    v1::RemoveUserResponse response;
    ASSERT_TRUE(stub->RemoveUser(&context, request, &response).ok());
  }
  ASSERT_TRUE(Refresh(*stub, "c", 1, "w").ok());
  // A fourth jam passes max_jams = 3, though users would fit.
  {
    v1::RemoveUserRequest request;
    request.set_jam_id("a");
    request.set_user_id("u13");
    grpc::ClientContext context;
    v1::RemoveUserResponse response;
    ASSERT_TRUE(stub->RemoveUser(&context, request, &response).ok());
  }
  grpc::Status fourth = Refresh(*stub, "d", 1, "y");
  EXPECT_EQ(fourth.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(fourth.error_message(), HasSubstr("max_jams (3)"));
  EXPECT_EQ(Stats(*stub).jam_count(), 3u);
}

TEST(ServerLimitsTest, BatchIsAdmittedWholeOrNotAtAll) {
  ServerOptions options = test::LoopbackOptions();
  options.max_total_users = 10;
  std::unique_ptr<BalancerServer> server = test::StartServer(options);
  auto stub = v1::JamBalancerService::NewStub(Dial(server->port()));
  v1::BatchRequest request;
  for (int i = 0; i < 4; ++i) {
    v1::RefreshRequest* refresh = request.add_operations()->mutable_refresh();
    refresh->set_jam_id(absl::StrCat("j", i));
    for (int u = 0; u < 3; ++u) refresh->add_user_ids(absl::StrCat(i, "-", u));
  }
  grpc::ClientContext context;
  v1::BatchResponse response;
  grpc::Status status = stub->Batch(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Stats(*stub).user_count(), 0u);  // Not the first three.
}

TEST(ServerLimitsTest, MaxSessionsRefusesAnotherFrontEnd) {
  ServerOptions options = test::LoopbackOptions();
  options.max_sessions = 2;
  std::unique_ptr<BalancerServer> server = test::StartServer(options);
  auto stub = v1::JamBalancerService::NewStub(Dial(server->port()));
  auto sync = [&](const std::string& frontend) {
    grpc::ClientContext context;
    v1::SyncResponse response;
    auto writer = stub->Sync(&context, &response);
    v1::SyncRequest request;
    request.set_frontend_id(frontend);
    v1::JamMembers* jam = request.add_jams();
    jam->set_jam_id(absl::StrCat("jam-of-", frontend));
    jam->add_user_ids(absl::StrCat("user-of-", frontend));
    writer->Write(request);
    writer->WritesDone();
    return writer->Finish();
  };
  EXPECT_TRUE(sync("fe-1").ok());
  EXPECT_TRUE(sync("fe-2").ok());
  EXPECT_TRUE(sync("fe-1").ok());  // A session held already: renewed.
  grpc::Status third = sync("fe-3");
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("max_sessions (2)"));
  const v1::GetStatsResponse stats = Stats(*stub);
  EXPECT_EQ(stats.session_count(), 2u);
  EXPECT_EQ(stats.user_count(), 2u);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(
    grpc::health::v1::Health::Stub& stub, const std::string& service) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(2));
  if (!stub.Check(&context, request, &response).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return response.status();
}

TEST(ServerLivenessTest, HealthTurnsNotServingWhileTheStrandIsStuck) {
  using grpc::health::v1::HealthCheckResponse;
  ServerOptions options = test::LoopbackOptions();
  options.health_listen = "127.0.0.1:0";
  options.strand_stall_limit = absl::Milliseconds(200);
  options.listener_probe_interval = absl::ZeroDuration();
  std::unique_ptr<BalancerServer> server = test::StartServer(options);
  ASSERT_NE(server->health_port(), 0);
  ASSERT_NE(server->health_port(), server->port());
  auto main_health = grpc::health::v1::Health::NewStub(Dial(server->port()));
  auto port_health =
      grpc::health::v1::Health::NewStub(Dial(server->health_port()));
  const std::string service = "jambalancer.v1.JamBalancerService";
  EXPECT_EQ(Health(*port_health, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(*port_health, service), HealthCheckResponse::SERVING);

  // Hold the strand, as a runaway operation would (posted from a thread of
  // its own: an idle inline strand runs a task on the posting thread).
  absl::Notification release;
  const absl::Time stuck = absl::Now();
  std::thread holder([&] {
    server->pool_for_testing().Post([&release](PoolState&, absl::Time) {
      release.WaitForNotificationWithTimeout(absl::Seconds(10));
    });
  });
  HealthCheckResponse::ServingStatus seen = HealthCheckResponse::SERVING;
  while (seen == HealthCheckResponse::SERVING &&
         absl::Now() - stuck < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(20));
    seen = Health(*port_health, "");
  }
  const absl::Duration noticed = absl::Now() - stuck;
  EXPECT_EQ(seen, HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(*port_health, service), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(*main_health, ""), HealthCheckResponse::NOT_SERVING);
  // Noticed after the limit, within a few watchdog rounds.
  EXPECT_GE(noticed, absl::Milliseconds(200));
  EXPECT_LT(noticed, absl::Seconds(3));
  std::cout << "stuck strand noticed by health after "
            << absl::FormatDuration(noticed) << " (limit 200ms)\n";

  release.Notify();
  holder.join();
  const absl::Time released = absl::Now();
  while (Health(*port_health, "") != HealthCheckResponse::SERVING &&
         absl::Now() - released < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Health(*port_health, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(*main_health, service), HealthCheckResponse::SERVING);
  EXPECT_GT(server->pool_for_testing().LongestStep(), absl::Milliseconds(200));
}

}  // namespace
}  // namespace jambalancer
