// The C++ client library against replicas that split the pools between
// them: real servers on loopback, each pool of each behind a serving gate
// whose answers the test sets (standing in for the per-pool etcd
// elections). Each call goes to its pool's leader, a leader hint refreshes
// the whole route table, epochs are checked per pool, and the session calls
// (Sync, KeepAlive, EndSession) reach every leader.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"
#include "client/frontend_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/pool_config.h"
#include "server/rpc/serving_gate.h"
#include "tests/testing/settable_gate.h"
#include "tests/testing/silent_listener.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using test::SettableGate;

using test::SilentListener;

const std::vector<std::string> kPools = {kDefaultPoolName, "a", "b"};

// One replica: a real server with the pools default, a and b, a gate each.
struct Replica {
  std::map<std::string, SettableGate> gates;  // Outlive the server.
  std::unique_ptr<BalancerServer> server;
  std::string target;
};

class BalancerClientPoolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = test::LoopbackOptions();
    options.pools = {PoolConfig{.name = "a", .max_users = 3},
                     PoolConfig{.name = "b", .max_users = 5}};
    for (int i = 0; i < 3; ++i) {
      auto replica = std::make_unique<Replica>();
      for (const std::string& pool : kPools) replica->gates[pool];
      auto started = BalancerServer::Start(
          options, [gates = &replica->gates](const std::string& pool) {
            return &gates->at(pool);
          });
      ASSERT_TRUE(started.ok()) << started.status();
      replica->server = *std::move(started);
      replica->target = test::TargetOf(*replica->server);
      replicas_.push_back(std::move(replica));
    }
  }

  Replica& r(int i) { return *replicas_[i]; }

  // `pool` is led by replica `leader` at `epoch`; the others stand by and
  // name it. The leader starts the pool over empty.
  void Lead(const std::string& pool, int leader, int64_t epoch) {
    for (int i = 0; i < static_cast<int>(replicas_.size()); ++i) {
      r(i).gates.at(pool).Set(i == leader, epoch, r(leader).target);
      r(i).server->OnLeadershipChange(pool, i == leader, epoch);
    }
  }

  // A client of all three replicas, r(0) first.
  std::unique_ptr<BalancerClient> Connect(
      std::string frontend_id = "",
      absl::Duration deadline = absl::Seconds(5)) {
    BalancerClient::Options options;
    options.deadline = deadline;
    options.frontend_id = std::move(frontend_id);
    return BalancerClient::Connect({r(0).target, r(1).target, r(2).target},
                                   options);
  }

  // A client of replica `i` alone (one RPC per call, never following).
  std::unique_ptr<BalancerClient> Direct(int i) {
    return BalancerClient::Connect(r(i).target);
  }

  // The ids of the jams of `pool` on replica `i` (which must lead it).
  std::vector<std::string> JamsAt(int i, const std::string& pool) {
    absl::StatusOr<v1::ListJamsResponse> listed =
        Direct(i)->ListJams(0, "", pool);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<std::string> ids;
    if (listed.ok()) {
      for (const v1::Jam& jam : listed->jams()) ids.push_back(jam.jam_id());
    }
    return ids;
  }

  // The front ends with a session in `pool` on replica `i` (which must
  // lead it).
  std::vector<std::string> SessionsAt(int i, const std::string& pool) {
    absl::StatusOr<v1::ListSessionsResponse> listed =
        Direct(i)->ListSessions(pool);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<std::string> ids;
    if (listed.ok()) {
      for (const v1::Session& s : listed->sessions()) {
        ids.push_back(s.frontend_id());
      }
    }
    return ids;
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(BalancerClientPoolsTest, EachCallGoesToItsPoolsLeader) {
  Lead(kDefaultPoolName, 0, 4);
  Lead("a", 2, 7);
  Lead("b", 1, 2);
  std::unique_ptr<BalancerClient> client = Connect();
  // Nothing is known yet: every pool goes where the default pool does.
  EXPECT_EQ(client->current_target("b"), r(0).target);

  // r0 refuses b's call naming r1; the table is refreshed from r0.
  absl::StatusOr<v1::AddUserResponse> added = client->AddUser("j", "ann", "b");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(client->current_target("b"), r(1).target);
  EXPECT_EQ(client->highest_epoch("b"), 2);
  // a was learned with it, before any call of a.
  EXPECT_EQ(client->current_target("a"), r(2).target);
  EXPECT_EQ(client->highest_epoch("a"), 7);
  EXPECT_EQ(client->current_target(), r(0).target);

  // Epochs are per pool: b's answers of epoch 2 count, after a's 7.
  ASSERT_TRUE(client->AddUser("j", "ann", "a").ok());
  ASSERT_TRUE(client->AddUser("j", "bob", "b").ok());
  ASSERT_TRUE(client->AddUser("k", "cat").ok());
  absl::StatusOr<BalancerClient::Leader> leader = client->FindLeader("a");
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->target, r(2).target);
  EXPECT_EQ(leader->epoch, 7);

  // Each pool's calls landed on its leader, and on no other.
  absl::StatusOr<v1::GetStatsResponse> b = Direct(1)->GetStats("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->user_count(), 2u);
  absl::StatusOr<v1::GetStatsResponse> a = Direct(2)->GetStats("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->user_count(), 1u);
  EXPECT_EQ(a->max_users(), 3u);
  EXPECT_THAT(JamsAt(0, kDefaultPoolName), ElementsAre("k"));

  // An unconfigured pool: NOT_FOUND as the server says it, at once.
  const absl::Status unknown = client->GetStats("nope").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
  EXPECT_THAT(unknown.message(), HasSubstr("nope"));
}

TEST_F(BalancerClientPoolsTest, AHintRefreshesTheWholeTable) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 1, 1);
  Lead("b", 1, 1);
  std::unique_ptr<BalancerClient> client = Connect();
  ASSERT_TRUE(client->AddUser("j", "ann", "a").ok());
  ASSERT_EQ(client->current_target("a"), r(1).target);
  ASSERT_EQ(client->current_target("b"), r(1).target);

  // Both pools move: a to r2, b to r0. The next call of a follows r1's
  // hint, and the table learns where b went too.
  Lead("a", 2, 2);
  Lead("b", 0, 2);
  absl::StatusOr<v1::AddUserResponse> added = client->AddUser("j", "bob", "a");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->user_count(), 1u);  // r2's fresh pool.
  EXPECT_EQ(client->current_target("a"), r(2).target);
  EXPECT_EQ(client->current_target("b"), r(0).target);
  EXPECT_EQ(client->highest_epoch("b"), 2);
  ASSERT_TRUE(client->AddUser("j", "cat", "b").ok());
  absl::StatusOr<v1::GetStatsResponse> b = Direct(0)->GetStats("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->user_count(), 1u);
}

TEST_F(BalancerClientPoolsTest, NeverReturnsAnAnswerOfALowerEpochOfThePool) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 1, 9);
  std::unique_ptr<BalancerClient> client = Connect("", absl::Milliseconds(800));
  ASSERT_TRUE(client->GetStats("a").ok());
  ASSERT_EQ(client->highest_epoch("a"), 9);
  // r1 answers a's calls at epoch 3 (a leader whose fence failed), and the
  // others name it.
  Lead("a", 1, 3);
  const absl::Status stale = client->GetStats("a").status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kUnavailable) << stale;
  EXPECT_EQ(client->highest_epoch("a"), 9);
  // The default pool, at epoch 1, is not affected.
  EXPECT_TRUE(client->GetStats().ok());
}

TEST_F(BalancerClientPoolsTest, SyncSendsEachLeaderTheJamsOfItsPools) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  Lead("b", 1, 1);
  // r2 leads nothing.
  std::unique_ptr<BalancerClient> fe = Connect("fe");
  absl::StatusOr<v1::SyncResponse> synced =
      fe->Sync(absl::Seconds(30), {{"d1", {"ann"}},
                                   {"a1", {"ann", "bob"}, "a"},
                                   {"b1", {"cat"}, "b"},
                                   {"b2", {"dan"}, "b"}});
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->jam_count(), 4u);
  EXPECT_EQ(synced->user_count(), 5u);  // ann counts once per pool.
  EXPECT_GT(synced->lease_expires_unix_ms(), 0u);
  EXPECT_THAT(JamsAt(0, kDefaultPoolName), ElementsAre("d1"));
  EXPECT_THAT(JamsAt(0, "a"), ElementsAre("a1"));
  EXPECT_THAT(JamsAt(1, "b"), ElementsAre("b1", "b2"));
  EXPECT_THAT(SessionsAt(1, "b"), ElementsAre("fe"));

  // A leader of pools without jams still gets a Sync: its pools hold the
  // session (and lose the front end's users).
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"a2", {"eve"}, "a"}}).ok());
  EXPECT_THAT(JamsAt(1, "b"), IsEmpty());
  EXPECT_THAT(SessionsAt(1, "b"), ElementsAre("fe"));
  EXPECT_THAT(JamsAt(0, kDefaultPoolName), IsEmpty());
  EXPECT_THAT(JamsAt(0, "a"), ElementsAre("a2"));

  // The calls of the front end in either pool find its session.
  EXPECT_TRUE(fe->AddUser("b3", "fay", "b").ok());
  EXPECT_TRUE(fe->AddUser("a2", "gus", "a").ok());
}

TEST_F(BalancerClientPoolsTest, SyncFollowsAPoolThatMoved) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  Lead("b", 1, 1);
  std::unique_ptr<BalancerClient> fe = Connect("fe");
  ASSERT_TRUE(fe->GetStats("b").ok());  // The table: b at r1.
  // b moves to r2, but r0 (asked for the routes first) has not seen it
  // yet: the Sync sends b's jams to r1, which refuses naming r2; the table
  // is refreshed from r2 and the whole Sync sent again.
  Lead("b", 2, 2);
  r(0).gates.at("b").Set(false, 1, r(1).target);
  absl::StatusOr<v1::SyncResponse> synced =
      fe->Sync(absl::Seconds(30), {{"a1", {"ann"}, "a"}, {"b1", {"bob"}, "b"}});
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->jam_count(), 2u);
  EXPECT_THAT(JamsAt(2, "b"), ElementsAre("b1"));
  EXPECT_THAT(JamsAt(0, "a"), ElementsAre("a1"));
  EXPECT_EQ(fe->current_target("b"), r(2).target);
}

TEST_F(BalancerClientPoolsTest, KeepAliveRenewsTheSessionOnEveryLeader) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  Lead("b", 1, 1);
  std::unique_ptr<BalancerClient> fe = Connect("fe");
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {}).ok());
  const auto lease_at = [&](int i, const std::string& pool) -> uint64_t {
    absl::StatusOr<v1::ListSessionsResponse> listed =
        Direct(i)->ListSessions(pool);
    EXPECT_TRUE(listed.ok()) << listed.status();
    return listed.ok() && listed->sessions_size() == 1
               ? listed->sessions(0).lease_expires_unix_ms()
               : 0;
  };
  const uint64_t before_a = lease_at(0, "a");
  const uint64_t before_b = lease_at(1, "b");
  ASSERT_GT(before_a, 0u);
  ASSERT_GT(before_b, 0u);
  absl::SleepFor(absl::Milliseconds(20));  // The millisecond clock moves.
  absl::StatusOr<v1::KeepAliveResponse> renewed = fe->KeepAlive();
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  const uint64_t after_a = lease_at(0, "a");
  const uint64_t after_b = lease_at(1, "b");
  EXPECT_GT(after_a, before_a);
  EXPECT_GT(after_b, before_b);
  // The earliest lease of the two.
  EXPECT_EQ(renewed->lease_expires_unix_ms(), std::min(after_a, after_b));
}

TEST_F(BalancerClientPoolsTest, KeepAliveFailsPreconditionOnceAPoolMoved) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  Lead("b", 1, 1);
  std::unique_ptr<BalancerClient> fe = Connect("fe");
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"b1", {"ann"}, "b"}}).ok());
  ASSERT_TRUE(fe->KeepAlive().ok());

  // b moves to r2, which starts it empty: the front end must resync.
  Lead("b", 2, 2);
  const absl::Status lost = fe->KeepAlive().status();
  EXPECT_EQ(lost.code(), absl::StatusCode::kFailedPrecondition) << lost;
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"b1", {"ann"}, "b"}}).ok());
  EXPECT_THAT(JamsAt(2, "b"), ElementsAre("b1"));
  EXPECT_TRUE(fe->KeepAlive().ok());

  // And when a pool moves to a replica that leads others already.
  Lead("a", 2, 2);
  EXPECT_EQ(fe->KeepAlive().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(BalancerClientPoolsTest, SessionCallsGoOnlyToNamedLeaders) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  // b has no leader: r0 refuses its call naming none, so b's route moves on
  // to the next target, which never answers (the call gives up at its
  // deadline). b's route is left at a replica no one named.
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  BalancerClient::Options options;
  options.deadline = absl::Seconds(1);
  options.frontend_id = "fe";
  std::unique_ptr<BalancerClient> fe = BalancerClient::Connect(
      {r(0).target, absl::StrCat("127.0.0.1:", silent.port()), r(1).target},
      options);
  EXPECT_EQ(fe->GetStats("b").status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(fe->current_target("b"), absl::StrCat("127.0.0.1:", silent.port()));
  // The session calls go to r0 alone.
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"a1", {"ann"}, "a"}}).ok());
  EXPECT_TRUE(fe->KeepAlive().ok());
  absl::StatusOr<v1::EndSessionResponse> ended = fe->EndSession();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 1u);
}

TEST(BalancerClientSessionTargetsTest, SessionCallsMoveOnFromADeadTarget) {
  // Two targets, the first down: a balancer running alone names no
  // leaders, so the session calls try the next target, as others do.
  std::unique_ptr<BalancerServer> down = test::StartServer();
  ASSERT_NE(down, nullptr);
  const std::string down_target = test::TargetOf(*down);
  down->Shutdown(absl::ZeroDuration());
  std::unique_ptr<BalancerServer> alone = test::StartServer();
  ASSERT_NE(alone, nullptr);
  BalancerClient::Options options;
  options.frontend_id = "fe";
  std::unique_ptr<BalancerClient> fe =
      BalancerClient::Connect({down_target, test::TargetOf(*alone)}, options);
  absl::StatusOr<v1::SyncResponse> synced =
      fe->Sync(absl::Seconds(30), {{"j", {"ann"}}});
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(fe->current_target(), test::TargetOf(*alone));
  EXPECT_TRUE(fe->KeepAlive().ok());
  absl::StatusOr<v1::EndSessionResponse> ended = fe->EndSession();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 1u);
}

TEST_F(BalancerClientPoolsTest, EndSessionEndsItOnEveryLeader) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 1, 1);
  Lead("b", 2, 1);
  std::unique_ptr<BalancerClient> fe = Connect("fe");
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"d1", {"ann"}},
                                           {"a1", {"bob", "cat"}, "a"},
                                           {"b1", {"dan"}, "b"}})
                  .ok());
  absl::StatusOr<v1::EndSessionResponse> ended = fe->EndSession();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 4u);
  EXPECT_THAT(SessionsAt(0, kDefaultPoolName), IsEmpty());
  EXPECT_THAT(SessionsAt(1, "a"), IsEmpty());
  EXPECT_THAT(SessionsAt(2, "b"), IsEmpty());
  // No leader has it any more.
  EXPECT_EQ(fe->EndSession().status().code(),
            absl::StatusCode::kFailedPrecondition);

  // A session on some leaders only is ended there.
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"a1", {"bob"}, "a"}}).ok());
  Lead("b", 2, 2);  // r2's b starts over without the session.
  ended = fe->EndSession();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 1u);
}

TEST_F(BalancerClientPoolsTest, OneTargetSendsOneSyncWhateverItAnswers) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  Lead("b", 1, 1);
  BalancerClient::Options options;
  options.frontend_id = "fe";
  std::unique_ptr<BalancerClient> fe =
      BalancerClient::Connect(r(0).target, options);
  const absl::Status refused =
      fe->Sync(absl::Seconds(30), {{"b1", {"ann"}, "b"}}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("leader at " + r(1).target));
  EXPECT_EQ(fe->current_target("b"), r(0).target);
  // r0's own pools: one Sync, one KeepAlive.
  ASSERT_TRUE(fe->Sync(absl::Seconds(30), {{"a1", {"ann"}, "a"}}).ok());
  EXPECT_TRUE(fe->KeepAlive().ok());
}

TEST_F(BalancerClientPoolsTest, RoutingAndPoolsFromAnyReplica) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 1, 3);
  Lead("b", 2, 5);
  absl::StatusOr<v1::GetRoutingResponse> routing = Direct(2)->GetRouting();
  ASSERT_TRUE(routing.ok()) << routing.status();
  std::vector<std::string> routes;
  for (const v1::PoolRoute& route : routing->routes()) {
    routes.push_back(absl::StrCat(route.pool(), "@", route.leader_address(),
                                  "#", route.epoch()));
  }
  EXPECT_THAT(routes, ElementsAre(absl::StrCat("a@", r(1).target, "#3"),
                                  absl::StrCat("b@", r(2).target, "#5"),
                                  absl::StrCat("default@", r(0).target, "#1")));
  // A client of several replicas learns the table from it.
  std::unique_ptr<BalancerClient> client = Connect();
  ASSERT_TRUE(client->GetRouting().ok());
  EXPECT_EQ(client->current_target("a"), r(1).target);
  EXPECT_EQ(client->current_target("b"), r(2).target);
  EXPECT_EQ(client->highest_epoch("b"), 5);
}

TEST_F(BalancerClientPoolsTest, ListPoolsFromAnyReplica) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 1, 3);
  Lead("b", 2, 5);
  absl::StatusOr<v1::ListPoolsResponse> pools = Direct(2)->ListPools();
  ASSERT_TRUE(pools.ok()) << pools.status();
  ASSERT_EQ(pools->pools_size(), 3);
  EXPECT_EQ(pools->pools(0).name(), "a");
  EXPECT_EQ(pools->pools(0).max_users(), 3u);
  EXPECT_FALSE(pools->pools(0).serving());
  EXPECT_TRUE(pools->pools(1).serving());
  EXPECT_TRUE(Connect()->ListPools().ok());
}

// A front end's session across pools led by different replicas: the pool a
// call names moved, its new leader lacks the session, and the session
// resyncs the truth there through the client's fan-out.
TEST_F(BalancerClientPoolsTest, FrontEndSessionResyncsAPoolThatMoved) {
  Lead(kDefaultPoolName, 0, 1);
  Lead("a", 0, 1);
  Lead("b", 1, 1);
  std::unique_ptr<BalancerClient> fe = Connect("fe");
  absl::Mutex mu;
  std::vector<BalancerClient::JamUsers> truth = {{"a1", {"ann"}, "a"},
                                                 {"b1", {"bob"}, "b"}};
  FrontEndSession session(*fe, absl::Seconds(30), [&] {
    absl::MutexLock lock(&mu);
    return truth;
  });
  ASSERT_TRUE(session.Start().ok());
  EXPECT_THAT(JamsAt(1, "b"), ElementsAre("b1"));

  Lead("b", 2, 2);
  {
    absl::MutexLock lock(&mu);
    truth[1].user_ids.push_back("cat");  // Joining: counted first.
  }
  absl::StatusOr<v1::AddUserResponse> added = session.Call(
      [](BalancerClient& c) { return c.AddUser("b1", "cat", "b"); });
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->user_count(), 2u);
  EXPECT_EQ(session.sync_count(), 2);
  EXPECT_THAT(JamsAt(2, "b"), ElementsAre("b1"));
  EXPECT_THAT(JamsAt(0, "a"), ElementsAre("a1"));
  absl::StatusOr<v1::EndSessionResponse> ended = session.End();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 3u);
}

}  // namespace
}  // namespace jambalancer
