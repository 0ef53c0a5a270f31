// The C++ client library against several replicas of the balancer, real
// servers on loopback, each behind a serving gate whose answers the test
// sets (standing in for the etcd election, which tests/ha and
// tests/system/ha_test.py test against real etcd members): the client finds
// the leader, follows the address a standby names, rides through a
// handover within its deadline, and never returns an answer of an epoch
// lower than one it has seen.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/serving_gate.h"
#include "tests/testing/settable_gate.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

using test::SettableGate;

// One replica: a real server behind its own gate.
struct Replica {
  SettableGate gate;  // Outlives the server.
  std::unique_ptr<BalancerServer> server;
  std::string target;

  // Serves, as the leader of `epoch` (its pool starts over empty).
  void Lead(int64_t epoch) {
    gate.Set(true, epoch, target);
    server->OnLeadershipChange("default", true, epoch);
  }
  // Stands by at `epoch`, naming `leader` ("": none known).
  void StandBy(int64_t epoch, std::string leader) {
    gate.Set(false, epoch, std::move(leader));
    server->OnLeadershipChange("default", false, epoch);
  }
};

class BalancerClientReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      auto replica = std::make_unique<Replica>();
      auto started = BalancerServer::Start(
          test::LoopbackOptions(),
          [gate = &replica->gate](const std::string&) { return gate; });
      ASSERT_TRUE(started.ok()) << started.status();
      replica->server = *std::move(started);
      replica->target = test::TargetOf(*replica->server);
      replicas_.push_back(std::move(replica));
    }
  }

  Replica& a() { return *replicas_[0]; }
  Replica& b() { return *replicas_[1]; }

  // A client of both replicas, a's target first.
  std::unique_ptr<BalancerClient> Connect(
      absl::Duration deadline = absl::Seconds(5),
      std::string frontend_id = "") {
    BalancerClient::Options options;
    options.deadline = deadline;
    options.frontend_id = std::move(frontend_id);
    return BalancerClient::Connect({a().target, b().target}, options);
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST(BalancerClientTargetsTest, SplitsHostPortListsButNotTargetUris) {
  using Targets = std::vector<std::string>;
  EXPECT_EQ(BalancerClient::SplitTargets("10.0.0.1:50051"),
            Targets{"10.0.0.1:50051"});
  EXPECT_EQ(BalancerClient::SplitTargets("a:1,b:2"), (Targets{"a:1", "b:2"}));
  EXPECT_EQ(BalancerClient::SplitTargets(" a:1 , ,b:2, "),
            (Targets{"a:1", "b:2"}));
  EXPECT_EQ(BalancerClient::SplitTargets("[::1]:1,[::1]:2"),
            (Targets{"[::1]:1", "[::1]:2"}));
  EXPECT_EQ(BalancerClient::SplitTargets("localhost:50051,jam-b.svc:50051"),
            (Targets{"localhost:50051", "jam-b.svc:50051"}));
  // A URI is one target, as gRPC reads it (ipv4: takes several addresses).
  EXPECT_EQ(BalancerClient::SplitTargets("ipv4:10.0.0.1:1,10.0.0.2:1"),
            Targets{"ipv4:10.0.0.1:1,10.0.0.2:1"});
  EXPECT_EQ(BalancerClient::SplitTargets("dns:///jam:50051"),
            Targets{"dns:///jam:50051"});
  EXPECT_EQ(BalancerClient::SplitTargets("unix:/run/jam.sock"),
            Targets{"unix:/run/jam.sock"});
  EXPECT_EQ(BalancerClient::SplitTargets(""), Targets{""});
}

TEST(BalancerClientTargetsTest, MetadataKeysAreTheServers) {
  EXPECT_STREQ(BalancerClient::kEpochMetadataKey, kEpochMetadataKey);
  EXPECT_STREQ(BalancerClient::kLeaderMetadataKey, kLeaderMetadataKey);
}

TEST_F(BalancerClientReplicasTest, FindsTheLeaderPastAStandbyThatKnowsNone) {
  a().StandBy(3, "");  // Knows of no leader: the client tries the next.
  b().Lead(3);
  std::unique_ptr<BalancerClient> client = Connect();
  EXPECT_EQ(client->current_target(), a().target);
  EXPECT_EQ(client->highest_epoch(), 0);

  absl::StatusOr<v1::AddUserResponse> added = client->AddUser("j", "ann");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(added->added());
  EXPECT_EQ(client->current_target(), b().target);
  EXPECT_EQ(client->highest_epoch(), 3);

  // The next call goes to the leader straight away.
  absl::StatusOr<BalancerClient::Leader> leader = client->FindLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->target, b().target);
  EXPECT_EQ(leader->epoch, 3);
  // Health is asked of the replica believed to lead.
  EXPECT_TRUE(*client->IsServing(v1::JamBalancerService::service_full_name()));
}

TEST_F(BalancerClientReplicasTest, EveryCallFollowsTheLeaderAStandbyNames) {
  a().StandBy(5, b().target);
  b().Lead(5);
  ASSERT_TRUE(Connect(absl::Seconds(5), "fe")
                  ->Sync(absl::Seconds(30), {{"j", {"ann"}}})
                  .ok());
  const std::vector<
      std::pair<std::string, std::function<absl::Status(BalancerClient&)>>>
      calls = {
          {"CurrentJam",
           [](BalancerClient& c) { return c.CurrentJam().status(); }},
          {"CurrentJam(user)",
           [](BalancerClient& c) { return c.CurrentJam("bob").status(); }},
          {"Refresh",
           [](BalancerClient& c) {
             return c.Refresh("j", {"ann", "cat"}).status();
           }},
          {"RemoveUser",
           [](BalancerClient& c) { return c.RemoveUser("j", "cat").status(); }},
          {"HasCapacity",
           [](BalancerClient& c) { return c.HasCapacity("j").status(); }},
          {"AddUser",
           [](BalancerClient& c) { return c.AddUser("j", "dan").status(); }},
          {"GetStats", [](BalancerClient& c) { return c.GetStats().status(); }},
          {"ListJams",
           [](BalancerClient& c) { return c.ListJams(0, "").status(); }},
          {"Batch",
           [](BalancerClient& c) {
             return c.Batch(v1::BatchRequest()).status();
           }},
          {"KeepAlive",
           [](BalancerClient& c) { return c.KeepAlive().status(); }},
          {"ListSessions",
           [](BalancerClient& c) { return c.ListSessions().status(); }},
          {"GetJam", [](BalancerClient& c) { return c.GetJam("j").status(); }},
          {"Sync",
           [](BalancerClient& c) {
             return c.Sync(absl::Seconds(30), {{"j", {"ann", "dan"}}}).status();
           }},
          {"EndSession",
           [](BalancerClient& c) { return c.EndSession().status(); }},
      };
  for (const auto& [name, call] : calls) {
    // A fresh client each time, so that each call starts at the standby.
    std::unique_ptr<BalancerClient> client = Connect(absl::Seconds(5), "fe");
    const absl::Status status = call(*client);
    EXPECT_TRUE(status.ok()) << name << ": " << status;
    EXPECT_EQ(client->current_target(), b().target) << name;
    EXPECT_EQ(client->highest_epoch(), 5) << name;
  }
  // All of it reached the leader, and nothing the standby.
  absl::StatusOr<v1::GetStatsResponse> stats = Connect()->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->session_count(), 0u);  // EndSession came last.
}

TEST_F(BalancerClientReplicasTest, FollowsALeaderOutsideTheTargets) {
  // The client is given a and a replica that is down; a names b, which it
  // was not given (e.g. the address b advertises).
  std::unique_ptr<BalancerServer> down = test::StartServer();
  ASSERT_NE(down, nullptr);
  const std::string down_target = test::TargetOf(*down);
  down->Shutdown(absl::ZeroDuration());
  a().StandBy(2, b().target);
  b().Lead(2);
  std::unique_ptr<BalancerClient> client =
      BalancerClient::Connect(std::vector<std::string>{down_target, a().target},
                              BalancerClient::Options());
  absl::StatusOr<BalancerClient::Leader> leader = client->FindLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->target, b().target);
  EXPECT_EQ(client->current_target(), b().target);
}

TEST_F(BalancerClientReplicasTest, RidesThroughAHandoverWithinItsDeadline) {
  a().Lead(4);
  b().StandBy(4, a().target);
  std::unique_ptr<BalancerClient> client = Connect();
  ASSERT_TRUE(client->AddUser("j", "ann").ok());
  ASSERT_EQ(client->current_target(), a().target);

  // The leader dies. For a while b still names it (etcd has not expired
  // its lease yet), then knows of no leader, then leads at a new epoch.
  a().server->Shutdown(absl::ZeroDuration());
  std::thread election([&] {
    absl::SleepFor(absl::Milliseconds(300));
    b().StandBy(4, "");
    absl::SleepFor(absl::Milliseconds(300));
    b().Lead(5);
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::AddUserResponse> added = client->AddUser("j", "bob");
  const absl::Duration took = absl::Now() - start;
  election.join();
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->user_count(), 1u);  // The new leader started empty.
  EXPECT_EQ(client->current_target(), b().target);
  EXPECT_EQ(client->highest_epoch(), 5);
  EXPECT_GE(took, absl::Milliseconds(600));
  EXPECT_LT(took, absl::Seconds(5));
  std::cout << "handover ridden through in " << absl::FormatDuration(took)
            << " (new leader after 600ms)\n";
}

TEST_F(BalancerClientReplicasTest, GivesUpWithTheLastErrorAtItsDeadline) {
  a().StandBy(1, "");
  b().StandBy(1, "");
  std::unique_ptr<BalancerClient> client = Connect(absl::Milliseconds(700));
  const absl::Time start = absl::Now();
  const absl::Status status = client->GetStats().status();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("no leader is known"));
  EXPECT_LT(took, absl::Seconds(5));  // The deadline, plus a busy machine.
  EXPECT_EQ(client->highest_epoch(), 1);
}

TEST_F(BalancerClientReplicasTest, ErrorsOtherThanUnavailableAreNotRetried) {
  a().Lead(1);
  b().StandBy(1, a().target);
  std::unique_ptr<BalancerClient> client = Connect();
  EXPECT_EQ(client->AddUser("j", "").status(),
            absl::InvalidArgumentError("user_id must not be empty"));
  // A front end without a session: FAILED_PRECONDITION at once.
  BalancerClient::Options options;
  options.frontend_id = "fe";
  std::unique_ptr<BalancerClient> frontend =
      BalancerClient::Connect({a().target, b().target}, options);
  EXPECT_EQ(frontend->KeepAlive().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(BalancerClientReplicasTest, NeverReturnsAnAnswerOfALowerEpoch) {
  a().StandBy(7, b().target);
  b().Lead(7);
  std::unique_ptr<BalancerClient> client = Connect(absl::Milliseconds(800));
  ASSERT_TRUE(client->AddUser("j", "ann").ok());
  ASSERT_EQ(client->highest_epoch(), 7);

  // a answers as the leader of epoch 4 (a leader whose fence failed), and b
  // names it: its answers are never taken.
  a().Lead(4);
  b().StandBy(7, a().target);
  const absl::Status stale = client->AddUser("j", "bob").status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kUnavailable) << stale;
  // The last error: a's answer, or b's refusal naming a.
  EXPECT_THAT(stale.message(),
              AnyOf(HasSubstr("stale replica " + a().target +
                              ": its answer belongs to epoch 4, but epoch 7"),
                    HasSubstr("leader at " + a().target)));
  EXPECT_EQ(client->highest_epoch(), 7);
  // a did answer (and added bob), as a client that has seen no epoch
  // believes.
  absl::StatusOr<v1::GetStatsResponse> at_a =
      BalancerClient::Connect(a().target)->GetStats();
  ASSERT_TRUE(at_a.ok()) << at_a.status();
  EXPECT_EQ(at_a->user_count(), 1u);

  // b leads at a higher epoch: the client moves on from a to it.
  b().Lead(8);
  absl::StatusOr<BalancerClient::Leader> leader = client->FindLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->target, b().target);
  EXPECT_EQ(leader->epoch, 8);
  absl::StatusOr<v1::ListJamsResponse> jams = client->ListJams(0, "");
  ASSERT_TRUE(jams.ok()) << jams.status();
  EXPECT_EQ(jams->jams_size(), 0);  // b's fresh state, not a's.

  // Nor an answer without an epoch (a balancer outside the election).
  std::unique_ptr<BalancerServer> alone = test::StartServer();
  ASSERT_NE(alone, nullptr);
  BalancerClient::Options options;
  options.deadline = absl::Milliseconds(500);
  std::unique_ptr<BalancerClient> mixed =
      BalancerClient::Connect({b().target, test::TargetOf(*alone)}, options);
  ASSERT_TRUE(mixed->GetStats().ok());  // b, at epoch 8.
  b().StandBy(8, test::TargetOf(*alone));
  EXPECT_EQ(mixed->GetStats().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(BalancerClientReplicasTest, OneTargetNeitherFollowsNorRetries) {
  a().StandBy(6, b().target);
  b().Lead(6);
  BalancerClient::Options options;
  std::unique_ptr<BalancerClient> client =
      BalancerClient::Connect(a().target, options);
  const absl::Status refused = client->GetStats().status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("leader at " + b().target));
  EXPECT_EQ(client->current_target(), a().target);
  EXPECT_EQ(client->highest_epoch(), 6);

  // The epoch check alone still applies: the one replica answering at a
  // lower epoch than it did is not believed.
  std::unique_ptr<BalancerClient> leader_client =
      BalancerClient::Connect(b().target, options);
  ASSERT_TRUE(leader_client->GetStats().ok());
  b().Lead(3);
  const absl::Status stale = leader_client->GetStats().status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stale.message(), HasSubstr("stale replica"));
}

TEST_F(BalancerClientReplicasTest, ConcurrentCallsNeverGoBackInEpochs) {
  a().Lead(1);
  b().StandBy(1, a().target);
  std::unique_ptr<BalancerClient> client = Connect();
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  std::vector<std::vector<int64_t>> epochs(4);
  for (std::vector<int64_t>& seen : epochs) {
    threads.emplace_back([&client, &done, &seen] {
      while (!done.load()) {
        absl::StatusOr<BalancerClient::Leader> leader = client->FindLeader();
        EXPECT_TRUE(leader.ok()) << leader.status();
        if (leader.ok()) seen.push_back(leader->epoch);
      }
    });
  }
  // Five handovers, back and forth, each through a moment with no leader.
  for (int64_t epoch = 2; epoch <= 6; ++epoch) {
    absl::SleepFor(absl::Milliseconds(100));
    Replica& from = epoch % 2 == 0 ? a() : b();
    Replica& to = epoch % 2 == 0 ? b() : a();
    from.StandBy(epoch - 1, "");
    absl::SleepFor(absl::Milliseconds(50));
    to.Lead(epoch);
    from.StandBy(epoch, to.target);
  }
  absl::SleepFor(absl::Milliseconds(100));
  done = true;
  for (std::thread& thread : threads) thread.join();
  for (const std::vector<int64_t>& seen : epochs) {
    ASSERT_FALSE(seen.empty());
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_EQ(seen.back(), 6);
  }
  EXPECT_EQ(client->highest_epoch(), 6);
}

}  // namespace
}  // namespace jambalancer
