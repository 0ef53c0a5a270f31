// A real server with pools, over loopback with the generated stub: pools
// are isolated, unconfigured pools are refused without effect, sessions
// span the pools.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "server/rpc/balancer_server.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PoolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = test::LoopbackOptions();
    options.max_users = 3;
    options.pools = {{"duo", 2, absl::Seconds(30), absl::Minutes(2)},
                     {"rock", 7, absl::Seconds(15), absl::Minutes(2)}};
    server_ = test::StartServer(options);
    stub_ = v1::JamBalancerService::NewStub(grpc::CreateChannel(
        test::TargetOf(*server_), grpc::InsecureChannelCredentials()));
  }

  // Runs `method` on the stub with a 5 s deadline.
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::JamBalancerService::Stub::*method)(
                        grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    return (stub_.get()->*method)(&context, request, response);
  }

  v1::AddUserResponse AddUser(const std::string& pool, const std::string& jam,
                              const std::string& user,
                              const std::string& frontend = "") {
    v1::AddUserRequest request;
    request.set_pool(pool);
    request.set_jam_id(jam);
    request.set_user_id(user);
    request.set_frontend_id(frontend);
    v1::AddUserResponse response;
    const grpc::Status status =
        Call(&v1::JamBalancerService::Stub::AddUser, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::GetStatsResponse Stats(const std::string& pool) {
    v1::GetStatsRequest request;
    request.set_pool(pool);
    v1::GetStatsResponse response;
    const grpc::Status status =
        Call(&v1::JamBalancerService::Stub::GetStats, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  uint64_t Users(const std::string& pool) { return Stats(pool).user_count(); }

  grpc::Status Sync(const std::string& frontend, uint32_t lease_ms,
                    const std::vector<v1::JamMembers>& jams,
                    v1::SyncResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    auto writer = stub_->Sync(&context, response);
    v1::SyncRequest message;
    message.set_frontend_id(frontend);
    message.set_lease_ttl_ms(lease_ms);
    for (const v1::JamMembers& jam : jams) *message.add_jams() = jam;
    writer->Write(message);
    writer->WritesDone();
    return writer->Finish();
  }

  static v1::JamMembers Jam(const std::string& pool, const std::string& jam,
                            std::vector<std::string> users) {
    v1::JamMembers members;
    members.set_pool(pool);
    members.set_jam_id(jam);
    for (const std::string& user : users) members.add_user_ids(user);
    return members;
  }

  std::unique_ptr<BalancerServer> server_;
  std::unique_ptr<v1::JamBalancerService::Stub> stub_;
};

TEST_F(PoolsTest, AFullJamInOnePoolIsInvisibleToAnother) {
  EXPECT_TRUE(AddUser("duo", "j", "ann").added());
  EXPECT_TRUE(AddUser("duo", "j", "bob").added());
  const v1::AddUserResponse third = AddUser("duo", "j", "cat");
  EXPECT_FALSE(third.added());  // duo's max_users is 2.
  EXPECT_NE(third.redirect_jam_id(), "j");

  // The same jam id in the default pool (max_users 3) is another jam; a
  // user may be in one jam per pool.
  EXPECT_EQ(AddUser("", "j", "ann").user_count(), 1u);
  EXPECT_EQ(AddUser("default", "j", "cat").user_count(), 2u);
  EXPECT_TRUE(AddUser("", "j", "dan").added());
  EXPECT_FALSE(AddUser("", "j", "eve").added());

  v1::CurrentJamRequest ask;
  ask.set_pool("rock");
  v1::CurrentJamResponse answer;
  ASSERT_TRUE(
      Call(&v1::JamBalancerService::Stub::CurrentJam, ask, &answer).ok());
  EXPECT_TRUE(answer.new_jam());  // rock holds nothing.

  EXPECT_EQ(Stats("duo").user_count(), 2u);
  EXPECT_EQ(Stats("duo").max_users(), 2u);
  EXPECT_EQ(Stats("duo").full_jam_count(), 1u);
  EXPECT_EQ(Stats("").user_count(), 3u);
  EXPECT_EQ(Stats("").max_users(), 3u);
  EXPECT_EQ(Stats("rock").user_count(), 0u);
}

TEST_F(PoolsTest, AnUnconfiguredPoolIsNotFoundAndChangesNothing) {
  AddUser("duo", "j", "ann");
  v1::AddUserRequest add;
  add.set_pool("jazz");
  add.set_jam_id("j");
  add.set_user_id("bob");
  v1::AddUserResponse added;
  const grpc::Status status =
      Call(&v1::JamBalancerService::Stub::AddUser, add, &added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("pool \"jazz\""));

  v1::SyncResponse synced;
  const grpc::Status sync = Sync(
      "fe", 0, {Jam("duo", "k", {"cat"}), Jam("jazz", "j", {"dan"})}, &synced);
  EXPECT_EQ(sync.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Users("duo"), 1u);
  EXPECT_EQ(Users(""), 0u);
  EXPECT_EQ(Stats("duo").session_count(), 0u);

  v1::GetStatsRequest bad;
  bad.set_pool("Not A Pool");
  v1::GetStatsResponse stats;
  EXPECT_EQ(
      Call(&v1::JamBalancerService::Stub::GetStats, bad, &stats).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(PoolsTest, ABatchRunsInItsPoolOnly) {
  v1::BatchRequest batch;
  batch.set_pool("duo");
  for (const char* user : {"ann", "bob", "cat"}) {
    v1::AddUserRequest& add = *batch.add_operations()->mutable_add_user();
    add.set_jam_id("j");
    add.set_user_id(user);
  }
  v1::BatchResponse results;
  ASSERT_TRUE(Call(&v1::JamBalancerService::Stub::Batch, batch, &results).ok());
  ASSERT_EQ(results.results_size(), 3);
  EXPECT_TRUE(results.results(1).add_user().added());
  EXPECT_FALSE(results.results(2).add_user().added());
  EXPECT_EQ(Users("duo"), 2u);
  EXPECT_EQ(Users(""), 0u);

  // An operation naming another pool refuses the whole batch.
  batch.mutable_operations(0)->mutable_add_user()->set_pool("rock");
  batch.mutable_operations(1)->mutable_add_user()->set_jam_id("k");
  const grpc::Status refused =
      Call(&v1::JamBalancerService::Stub::Batch, batch, &results);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("operations[0].add_user.pool"));
  EXPECT_EQ(Users("duo"), 2u);
  EXPECT_EQ(Users("rock"), 0u);
}

TEST_F(PoolsTest, ASessionSpansThePoolsAndItsExpiryClearsThemAll) {
  v1::SyncResponse synced;
  const grpc::Status status =
      Sync("fe", 500,
           {Jam("", "a", {"ann", "bob"}), Jam("duo", "b", {"ann"}),
            Jam("rock", "c", {"cat", "dan", "eve"})},
           &synced);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(synced.jam_count(), 3u);
  EXPECT_EQ(synced.user_count(), 6u);  // ann counts once per pool.
  EXPECT_EQ(Stats("").session_count(), 1u);
  EXPECT_EQ(Stats("duo").session_count(), 1u);
  EXPECT_EQ(Stats("rock").session_count(), 1u);
  EXPECT_EQ(AddUser("rock", "c", "fay", "fe").user_count(), 4u);

  // KeepAlive renews it everywhere.
  v1::KeepAliveRequest keep;
  keep.set_frontend_id("fe");
  v1::KeepAliveResponse kept;
  ASSERT_TRUE(Call(&v1::JamBalancerService::Stub::KeepAlive, keep, &kept).ok());
  EXPECT_GT(kept.lease_expires_unix_ms(), synced.lease_expires_unix_ms() - 1);

  // Then silence: the lease (500 ms) runs out in every pool.
  const absl::Time silent = absl::Now();
  while (absl::Now() - silent < absl::Seconds(10) &&
         Users("") + Users("duo") + Users("rock") > 0) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const absl::Duration took = absl::Now() - silent;
  EXPECT_EQ(Users(""), 0u);
  EXPECT_EQ(Users("duo"), 0u);
  EXPECT_EQ(Users("rock"), 0u);
  EXPECT_LT(took, absl::Seconds(5));
  std::cout << "session of 3 pools expired, all pools empty "
            << absl::FormatDuration(took) << " after the last keepalive\n";
  EXPECT_EQ(
      Call(&v1::JamBalancerService::Stub::KeepAlive, keep, &kept).error_code(),
      grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(PoolsTest, ASyncReplacesTheFrontEndInEveryPoolAndEndSessionEndsIt) {
  v1::SyncResponse synced;
  ASSERT_TRUE(Sync("fe", 0,
                   {Jam("duo", "b", {"ann", "bob"}), Jam("rock", "c", {"cat"})},
                   &synced)
                  .ok());
  // A second Sync naming only rock empties duo of the front end's users.
  ASSERT_TRUE(Sync("fe", 0, {Jam("rock", "c", {"cat", "dan"})}, &synced).ok());
  EXPECT_EQ(Users("duo"), 0u);
  EXPECT_EQ(Users("rock"), 2u);
  EXPECT_EQ(synced.user_count(), 2u);

  v1::EndSessionRequest end;
  end.set_frontend_id("fe");
  v1::EndSessionResponse ended;
  ASSERT_TRUE(
      Call(&v1::JamBalancerService::Stub::EndSession, end, &ended).ok());
  EXPECT_EQ(ended.removed_user_count(), 2u);
  EXPECT_EQ(Users("rock"), 0u);
  EXPECT_EQ(Stats("duo").session_count(), 0u);
  EXPECT_EQ(
      Call(&v1::JamBalancerService::Stub::EndSession, end, &ended).error_code(),
      grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(PoolsTest, ListPoolsAndGetRoutingDescribeEveryPool) {
  AddUser("duo", "j", "ann");
  v1::CurrentJamRequest reserve;
  reserve.set_pool("duo");
  reserve.set_user_id("bob");
  v1::CurrentJamResponse reserved;
  const absl::Time asked = absl::Now();
  ASSERT_TRUE(
      Call(&v1::JamBalancerService::Stub::CurrentJam, reserve, &reserved).ok());
  // duo's own reservation time, 30 s.
  EXPECT_NEAR(static_cast<double>(reserved.reservation_expires_unix_ms() -
                                  absl::ToUnixMillis(asked)),
              30000, 2000);

  v1::ListPoolsResponse pools;
  ASSERT_TRUE(Call(&v1::JamBalancerService::Stub::ListPools,
                   v1::ListPoolsRequest(), &pools)
                  .ok());
  std::vector<std::string> names;
  for (const v1::Pool& pool : pools.pools()) names.push_back(pool.name());
  EXPECT_THAT(names, ElementsAre("default", "duo", "rock"));
  const v1::Pool& duo = pools.pools(1);
  EXPECT_EQ(duo.max_users(), 2u);
  EXPECT_EQ(duo.jam_count(), 1u);
  EXPECT_EQ(duo.user_count(), 1u);
  EXPECT_EQ(duo.reservation_count(), 1u);
  EXPECT_EQ(duo.reservation_ttl_ms(), 30000u);
  EXPECT_EQ(duo.max_reservation_ttl_ms(), 120000u);
  EXPECT_TRUE(duo.serving());
  EXPECT_EQ(duo.leader_address(), "");  // Alone: no election.
  EXPECT_EQ(pools.pools(0).max_users(), 3u);

  v1::GetRoutingResponse routing;
  ASSERT_TRUE(Call(&v1::JamBalancerService::Stub::GetRouting,
                   v1::GetRoutingRequest(), &routing)
                  .ok());
  ASSERT_EQ(routing.routes_size(), 3);
  EXPECT_EQ(routing.routes(2).pool(), "rock");
  EXPECT_EQ(routing.routes(2).leader_address(), "");
  EXPECT_EQ(routing.routes(2).epoch(), 0);
}

}  // namespace
}  // namespace jambalancer
