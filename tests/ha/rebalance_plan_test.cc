#include "server/ha/rebalance_plan.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Queues where every replica campaigns for every pool; `leaders[i]` leads
// pool i (its key oldest), the others follow in `replicas` order. Epochs
// grow with the pool's index.
ElectionQueues Queues(int pools, const std::vector<std::string>& replicas,
                      const std::vector<std::string>& leaders) {
  ElectionQueues queues;
  int64_t revision = 1;
  for (int p = 0; p < pools; ++p) {
    const std::string pool = absl::StrCat("p", p < 10 ? "0" : "", p);
    std::vector<ElectionCandidate>& queue = queues[pool];
    const int64_t leader = revision++;
    queue.push_back({leaders[p], leader, leader});
    for (const std::string& replica : replicas) {
      if (replica == leaders[p]) continue;
      const int64_t follower = 1000 + revision++;
      queue.push_back({replica, follower, follower});
    }
  }
  return queues;
}

std::map<std::string, int> Load(
    const std::map<std::string, std::string>& plan) {
  std::map<std::string, int> load;
  for (const auto& [pool, owner] : plan) ++load[owner];
  return load;
}

int Moved(const ElectionQueues& queues,
          const std::map<std::string, std::string>& plan) {
  int moved = 0;
  for (const auto& [pool, owner] : plan) {
    moved += queues.at(pool).front().address != owner;
  }
  return moved;
}

TEST(PlanLeadersTest, SpreadsPoolsLedByOneReplicaEvenly) {
  const std::vector<std::string> replicas = {"a:1", "b:1", "c:1"};
  const ElectionQueues queues =
      Queues(16, replicas, std::vector<std::string>(16, "a:1"));
  const std::map<std::string, std::string> plan = PlanLeaders(queues);
  ASSERT_EQ(plan.size(), 16u);
  const std::map<std::string, int> load = Load(plan);
  // ceil(16 / 3) = 6 stay with a:1, the rest split between b and c.
  EXPECT_EQ(load.at("a:1"), 6);
  EXPECT_EQ(load.at("b:1") + load.at("c:1"), 10);
  EXPECT_GE(load.at("b:1"), 5);
  EXPECT_GE(load.at("c:1"), 5);
  // The oldest leaderships are the ones kept.
  for (int p = 0; p < 6; ++p) {
    EXPECT_EQ(plan.at(absl::StrCat("p0", p)), "a:1");
  }
}

TEST(PlanLeadersTest, ABalancedPlanMovesNothing) {
  const std::vector<std::string> replicas = {"a:1", "b:1", "c:1"};
  std::vector<std::string> leaders;
  for (int p = 0; p < 16; ++p) leaders.push_back(replicas[p % 3]);
  const ElectionQueues queues = Queues(16, replicas, leaders);
  EXPECT_EQ(Moved(queues, PlanLeaders(queues)), 0);
}

TEST(PlanLeadersTest, AFourthReplicaTakesAQuarter) {
  std::vector<std::string> leaders;
  for (int p = 0; p < 16; ++p) {
    leaders.push_back(std::vector<std::string>{"a:1", "b:1", "c:1"}[p % 3]);
  }
  const ElectionQueues queues =
      Queues(16, {"a:1", "b:1", "c:1", "d:1"}, leaders);
  const std::map<std::string, std::string> plan = PlanLeaders(queues);
  EXPECT_EQ(Moved(queues, plan), 4);
  EXPECT_EQ(Load(plan).at("d:1"), 4);
  for (const auto& [replica, count] : Load(plan)) EXPECT_EQ(count, 4);
}

TEST(PlanLeadersTest, OnlyTheDeadReplicasPoolsMove) {
  // c:1 died; its pools (p02, p05, ...) failed over to a:1, the next in
  // their queues. a:1's keys there were queued at the start, before the
  // keys of the pools a:1 and b:1 took over later in a rebalance: their
  // create revisions are older, but their leaderships (mod revisions, set
  // when a leader proclaims itself) are the newest.
  ElectionQueues queues;
  int64_t revision = 1;
  std::set<std::string> failed_over;
  for (int p = 0; p < 16; ++p) {
    const std::string pool = absl::StrCat("p", p < 10 ? "0" : "", p);
    const std::string was =
        std::vector<std::string>{"a:1", "b:1", "c:1"}[p % 3];
    if (was == "c:1") {
      failed_over.insert(pool);
      queues[pool] = {{"a:1", revision, 9000 + revision},
                      {"b:1", revision + 1, revision + 1}};
    } else {
      const std::string other = was == "a:1" ? "b:1" : "a:1";
      queues[pool] = {{was, 3000 + revision, 3000 + revision},
                      {other, 4000 + revision, 4000 + revision}};
    }
    revision += 2;
  }
  const std::map<std::string, std::string> plan = PlanLeaders(queues);
  for (const auto& [pool, owner] : plan) {
    if (failed_over.count(pool) == 0) {
      EXPECT_EQ(owner, queues.at(pool).front().address) << pool;
    }
  }
  EXPECT_EQ(Load(plan).at("a:1"), 8);
  EXPECT_EQ(Load(plan).at("b:1"), 8);
}

TEST(PlanLeadersTest, OnlyCandidatesOfAPoolMayLeadIt) {
  ElectionQueues queues;
  queues["solo"] = {{"a:1", 1, 1}};
  queues["both"] = {{"a:1", 2, 2}, {"b:1", 3, 3}};
  queues["empty"] = {};
  const std::map<std::string, std::string> plan = PlanLeaders(queues);
  EXPECT_EQ(plan.at("solo"), "a:1");
  EXPECT_EQ(plan.at("both"), "b:1");  // a:1's share is ceil(2 / 2) = 1.
  EXPECT_EQ(plan.count("empty"), 0u);
}

TEST(PlanLeadersTest, TheOrderOfFollowersDoesNotChangeThePlan) {
  // Replicas read the queues at slightly different moments; a follower
  // that stepped back meanwhile must not change who should lead.
  const std::vector<std::string> leaders(16, "b:1");
  const ElectionQueues one = Queues(16, {"a:1", "b:1", "c:1"}, leaders);
  const ElectionQueues other = Queues(16, {"c:1", "b:1", "a:1"}, leaders);
  ASSERT_NE(one, other);
  EXPECT_EQ(PlanLeaders(one), PlanLeaders(other));
}

TEST(ActionsForTest, TheLeaderYieldsOnlyToThePlannedLeaderRightBehindIt) {
  ElectionQueues queues;
  queues["x"] = {{"a:1", 1, 1}, {"b:1", 2, 2}, {"c:1", 3, 3}};
  queues["y"] = {{"a:1", 4, 4}, {"c:1", 5, 5}, {"b:1", 6, 6}};
  const std::map<std::string, std::string> plan = {{"x", "b:1"}, {"y", "b:1"}};
  const RebalanceActions a = ActionsFor("a:1", queues, plan);
  EXPECT_THAT(a.yield, ElementsAre("x"));  // Not y: c:1 would win it.
  EXPECT_THAT(a.requeue, IsEmpty());
  const RebalanceActions c = ActionsFor("c:1", queues, plan);
  EXPECT_THAT(c.yield, IsEmpty());
  EXPECT_THAT(c.requeue, ElementsAre("y"));  // It stands ahead of b:1.
  const RebalanceActions b = ActionsFor("b:1", queues, plan);
  EXPECT_THAT(b.yield, IsEmpty());
  EXPECT_THAT(b.requeue, IsEmpty());
}

TEST(ActionsForTest, NothingToDoWhenThePlannedLeaderLeads) {
  ElectionQueues queues;
  queues["x"] = {{"a:1", 1, 1}, {"b:1", 2, 2}};
  for (const char* self : {"a:1", "b:1"}) {
    const RebalanceActions actions = ActionsFor(self, queues, {{"x", "a:1"}});
    EXPECT_THAT(actions.yield, IsEmpty());
    EXPECT_THAT(actions.requeue, IsEmpty());
  }
}

}  // namespace
}  // namespace jambalancer
