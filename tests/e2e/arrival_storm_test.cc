// Arrival storms against the real server over loopback: many clients on
// separate channels place N users at once, with the reservation protocol
// (CurrentJam with the user id, then AddUser) and with the original one
// (CurrentJam without an id, then AddUser). Also users leaving while others
// arrive. The server's state is checked after every phase.

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "client/balancer_client.h"
#include "gtest/gtest.h"
#include "server/rpc/balancer_server.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

constexpr uint32_t kMaxUsers = 7;
constexpr int kUsers = 1000;
constexpr int kClients = 20;  // Threads, each with its own channel.
constexpr int kMaxAttempts = 50;

struct JamState {
  std::vector<std::string> members;
  uint32_t reserved = 0;
};

class ArrivalStormTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = test::LoopbackOptions();
    options.max_users = kMaxUsers;
    // Long enough that no seat lapses during a storm on a slow machine.
    options.reservation_ttl = absl::Minutes(1);
    server_ = test::StartServer(options);
    ASSERT_NE(server_, nullptr);
    for (int i = 0; i < kClients; ++i) {
      clients_.push_back(test::NewClient(*server_, absl::Seconds(30)));
    }
  }

  // Every jam, following next_page_token.
  std::map<std::string, JamState> ListAll() {
    std::map<std::string, JamState> jams;
    std::string token;
    for (int page = 0; page < 1000; ++page) {
      auto response = clients_[0]->ListJams(1000, token);
      EXPECT_TRUE(response.ok()) << response.status();
      if (!response.ok()) break;
      for (const v1::Jam& jam : response->jams()) {
        jams[jam.jam_id()] = {{jam.user_ids().begin(), jam.user_ids().end()},
                              jam.reserved_count()};
      }
      token = response->next_page_token();
      if (token.empty()) break;
    }
    return jams;
  }

  // No jam holds more than max_users members plus reserved seats.
  void ExpectNoJamOverfilled(const std::map<std::string, JamState>& jams) {
    for (const auto& [id, jam] : jams) {
      EXPECT_LE(jam.members.size() + jam.reserved, kMaxUsers) << id;
    }
  }

  std::unique_ptr<BalancerServer> server_;
  std::vector<std::unique_ptr<BalancerClient>> clients_;
};

struct StormResult {
  int placed = 0;
  int redirects = 0;
  int reserved_turned_away = 0;
  int errors = 0;
};

// Places users [0, kUsers) with kClients threads. With `reserve`, CurrentJam
// carries the user id. With `all_at_once`, every user asks CurrentJam before
// any joins (the widest race window); otherwise each user joins right after
// asking.
StormResult RunStorm(std::vector<std::unique_ptr<BalancerClient>>& clients,
                     bool reserve, bool all_at_once,
                     const std::function<void()>& between_phases) {
  std::vector<std::string> answers(kUsers);
  std::vector<bool> had_reservation(kUsers);
  std::atomic<int> placed{0}, redirects{0}, reserved_turned_away{0}, errors{0};
  absl::Barrier* start = new absl::Barrier(kClients);
  absl::Barrier* asked = new absl::Barrier(kClients + 1);
  absl::Barrier* proceed = new absl::Barrier(kClients + 1);

  auto ask = [&](BalancerClient& client, int user) {
    const std::string id = absl::StrCat("user-", user);
    auto answer = reserve ? client.CurrentJam(id) : client.CurrentJam();
    if (!answer.ok()) {
      ++errors;
      return;
    }
    answers[user] = answer->jam_id();
    had_reservation[user] = answer->reservation_expires_unix_ms() != 0;
  };
  auto join = [&](BalancerClient& client, int user) {
    const std::string id = absl::StrCat("user-", user);
    std::string jam = answers[user];
    for (int attempt = 0; attempt < kMaxAttempts && !jam.empty(); ++attempt) {
      auto added = client.AddUser(jam, id);
      if (!added.ok()) {
        ++errors;
        return;
      }
      if (added->added()) {
        ++placed;
        return;
      }
      if (attempt == 0 && had_reservation[user]) ++reserved_turned_away;
      ++redirects;
      jam = added->redirect_jam_id();
    }
  };

  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      if (start->Block()) delete start;
      for (int user = c; user < kUsers; user += kClients) {
        ask(*clients[c], user);
        if (!all_at_once) join(*clients[c], user);
      }
      if (asked->Block()) delete asked;
      if (proceed->Block()) delete proceed;
      if (all_at_once) {
        for (int user = c; user < kUsers; user += kClients) {
          join(*clients[c], user);
        }
      }
    });
  }
  if (asked->Block()) delete asked;
  between_phases();
  if (proceed->Block()) delete proceed;
  for (std::thread& t : threads) t.join();
  return {placed.load(), redirects.load(), reserved_turned_away.load(),
          errors.load()};
}

void Report(const char* name, const StormResult& result, size_t jams) {
  std::printf("storm %-40s users=%d placed=%d jams=%zu redirects=%d\n", name,
              kUsers, result.placed, jams, result.redirects);
}

constexpr size_t kExactJams = (kUsers + kMaxUsers - 1) / kMaxUsers;

TEST_F(ArrivalStormTest, ReservationsPlaceEveryoneInExactlyCeilNOverMaxJams) {
  for (bool all_at_once : {true, false}) {
    SCOPED_TRACE(all_at_once ? "all at once" : "interleaved");
    // Empty the server between runs: everyone leaves.
    for (const auto& [id, jam] : ListAll()) {
      ASSERT_TRUE(clients_[0]->Refresh(id, {}).ok());
    }
    StormResult result = RunStorm(clients_, /*reserve=*/true, all_at_once, [&] {
      // After everyone asked: seats are promised, nothing is overfilled.
      std::map<std::string, JamState> jams = ListAll();
      ExpectNoJamOverfilled(jams);
      if (all_at_once) {
        EXPECT_EQ(jams.size(), kExactJams);
        auto stats = clients_[0]->GetStats();
        ASSERT_TRUE(stats.ok());
        EXPECT_EQ(stats->reservation_count(), static_cast<uint64_t>(kUsers));
      }
    });
    EXPECT_EQ(result.errors, 0);
    EXPECT_EQ(result.placed, kUsers);
    EXPECT_EQ(result.reserved_turned_away, 0);
    EXPECT_EQ(result.redirects, 0);

    std::map<std::string, JamState> jams = ListAll();
    ExpectNoJamOverfilled(jams);
    EXPECT_EQ(jams.size(), kExactJams);
    size_t members = 0;
    for (const auto& [id, jam] : jams) {
      members += jam.members.size();
      EXPECT_EQ(jam.reserved, 0u) << id;  // Every seat became membership.
    }
    EXPECT_EQ(members, static_cast<size_t>(kUsers));
    auto stats = clients_[0]->GetStats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->user_count(), static_cast<uint64_t>(kUsers));
    EXPECT_EQ(stats->reservation_count(), 0u);
    Report(all_at_once ? "with user ids, all at once"
                       : "with user ids, interleaved",
           result, jams.size());
  }
}

TEST_F(ArrivalStormTest, OriginalProtocolPlacesEveryoneWithoutOverfilling) {
  for (bool all_at_once : {true, false}) {
    SCOPED_TRACE(all_at_once ? "all at once" : "interleaved");
    for (const auto& [id, jam] : ListAll()) {
      ASSERT_TRUE(clients_[0]->Refresh(id, {}).ok());
    }
    StormResult result = RunStorm(clients_, /*reserve=*/false, all_at_once,
                                  [&] { ExpectNoJamOverfilled(ListAll()); });
    EXPECT_EQ(result.errors, 0);
    EXPECT_EQ(result.placed, kUsers);
    std::map<std::string, JamState> jams = ListAll();
    ExpectNoJamOverfilled(jams);
    // AddUser is atomic, so nothing overfills; but packing is not exact.
    EXPECT_GE(jams.size(), kExactJams);
    Report(all_at_once ? "without user ids, all at once"
                       : "without user ids, interleaved",
           result, jams.size());
  }
}

// Users leave at random while others arrive; after every round the server is
// not overfilled and CurrentJam backfills the jam with the most occupied
// seats that has room (ties: smallest id).
TEST_F(ArrivalStormTest, DeparturesWhileArrivingBackfillTheFullestJam) {
  constexpr int kRounds = 15;
  constexpr int kPerClient = 10;
  std::vector<std::vector<std::pair<std::string, std::string>>> seated(
      kClients);  // Per client: (jam, user) it placed.
  std::atomic<int> next_user{0}, errors{0}, turned_away{0};
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) {
      threads.emplace_back([&, c] {
        std::mt19937 random(round * 1000 + c);
        BalancerClient& client = *clients_[c];
        for (int i = 0; i < kPerClient; ++i) {
          auto& mine = seated[c];
          if (!mine.empty() && random() % 3 == 0) {  // Someone leaves.
            const size_t k = random() % mine.size();
            auto removed = client.RemoveUser(mine[k].first, mine[k].second);
            if (!removed.ok() || !removed->removed()) ++errors;
            mine[k] = mine.back();
            mine.pop_back();
            continue;
          }
          const std::string user = absl::StrCat("u", next_user++);
          auto seat = client.CurrentJam(user);
          if (!seat.ok()) {
            ++errors;
            continue;
          }
          auto added = client.AddUser(seat->jam_id(), user);
          if (!added.ok()) {
            ++errors;
          } else if (!added->added()) {
            ++turned_away;
          } else {
            mine.emplace_back(seat->jam_id(), user);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(errors.load(), 0);
    ASSERT_EQ(turned_away.load(), 0);

    std::map<std::string, JamState> jams = ListAll();
    ExpectNoJamOverfilled(jams);
    std::optional<std::string> best;
    size_t best_occupancy = 0;
    for (const auto& [id, jam] : jams) {  // In id order: first wins ties.
      const size_t occupancy = jam.members.size() + jam.reserved;
      if (occupancy < kMaxUsers && occupancy > best_occupancy) {
        best = id, best_occupancy = occupancy;
      }
    }
    auto current = clients_[0]->CurrentJam();
    ASSERT_TRUE(current.ok());
    if (best) {
      EXPECT_EQ(current->jam_id(), *best);
    } else {
      EXPECT_TRUE(current->new_jam());
    }
    size_t members = 0;
    for (const auto& [id, jam] : jams) members += jam.members.size();
    size_t expected = 0;
    for (const auto& mine : seated) expected += mine.size();
    EXPECT_EQ(members, expected);
  }
}

}  // namespace
}  // namespace jambalancer
