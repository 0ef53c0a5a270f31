#include "server/runtime/jam_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/pool_reader.h"

namespace jambalancer {
namespace {

using test::EventuallyOnStrand;
using test::ReadOnStrand;

// Every test runs with the strand in both modes (see Strand).
class JamPoolTest : public ::testing::TestWithParam<bool> {};

TEST_P(JamPoolTest, OperationsRunInOrderWithTheCurrentTime) {
  JamPool pool(7, /*run_inline=*/GetParam());
  const absl::Time before = absl::Now();
  for (int i = 0; i < 20; ++i) {
    pool.Post([i](PoolState& state, absl::Time now) {
      state.jams.AddUser("j", std::to_string(i), now);
    });
  }
  const uint64_t users =
      ReadOnStrand<uint64_t>(pool, [&](PoolState& state, absl::Time now) {
        EXPECT_GE(now, before);
        return state.jams.Snapshot(now).user_count;
      });
  // 7 joined, 13 were turned away, in post order: users 0..6.
  EXPECT_EQ(users, 7u);
  const bool first_seven =
      ReadOnStrand<bool>(pool, [](PoolState& state, absl::Time now) {
        return state.jams.HasCapacity("j", "6", now).has_capacity &&
               !state.jams.HasCapacity("j", "7", now).has_capacity;
      });
  EXPECT_TRUE(first_seven);
}

// The strand's timer expires reservations with no call arriving: NextExpiry
// does not expire anything itself, so it only changes if the timer ran.
TEST_P(JamPoolTest, TimerExpiresReservationsWithoutCalls) {
  JamPool pool(7, /*run_inline=*/GetParam());
  const absl::Time reserved_at =
      ReadOnStrand<absl::Time>(pool, [](PoolState& state, absl::Time now) {
        state.jams.ReserveSeat("ann", absl::Milliseconds(100), now);
        return now;
      });
  EXPECT_TRUE(EventuallyOnStrand(pool, [](PoolState& state, absl::Time) {
    return state.jams.NextExpiry() == absl::InfiniteFuture();
  }));
  EXPECT_GE(absl::Now(), reserved_at + absl::Milliseconds(100));
}

TEST_P(JamPoolTest, EarlierReservationRearmsTheTimer) {
  JamPool pool(7, /*run_inline=*/GetParam());
  ReadOnStrand<bool>(pool, [](PoolState& state, absl::Time now) {
    state.jams.ReserveSeat("late", absl::Hours(1), now);
    state.jams.ReserveSeat("soon", absl::Milliseconds(50), now);
    return true;
  });
  EXPECT_TRUE(EventuallyOnStrand(pool, [](PoolState& state, absl::Time now) {
    // Only the hour-long reservation may be left: its expiry is next.
    return state.jams.NextExpiry() > now + absl::Minutes(30);
  }));
}

TEST_P(JamPoolTest, PostAfterShutdownIsRefused) {
  JamPool pool(7, /*run_inline=*/GetParam());
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(pool.Post([&](PoolState&, absl::Time) { ++ran; }));
  }
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(pool.Post([&](PoolState&, absl::Time) { ++ran; }));
}

// Places `count` users of `frontend_id` in jams of 7 and starts its session
// with `lease`. Returns the lease's expiry.
absl::Time HostUsers(JamPool& pool, const std::string& frontend_id, int count,
                     absl::Duration lease) {
  return ReadOnStrand<absl::Time>(pool, [&](PoolState& state, absl::Time now) {
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      ids.push_back(absl::StrCat(frontend_id, "-u", i));
    }
    for (int i = 0; i < count; i += 7) {
      std::vector<absl::string_view> jam;
      for (int j = i; j < std::min(count, i + 7); ++j) {
        jam.push_back(ids[j]);
      }
      state.jams.Refresh(absl::StrCat(frontend_id, "-j", i / 7), jam, now,
                         frontend_id);
    }
    return state.sessions.Start(frontend_id, lease, now);
  });
}

TEST_P(JamPoolTest, ALapsedLeaseRemovesItsFrontEndsUsersOnly) {
  JamPool pool(7, /*run_inline=*/GetParam());
  const absl::Time lapses =
      HostUsers(pool, "dead", 20, absl::Milliseconds(100));
  HostUsers(pool, "alive", 10, absl::Hours(1));
  ReadOnStrand<bool>(pool, [](PoolState& state, absl::Time now) {
    return state.jams.ReserveSeat("waiting", absl::Hours(1), now, "dead")
        .new_jam;
  });
  EXPECT_TRUE(EventuallyOnStrand(pool, [](PoolState& state, absl::Time) {
    return state.sessions.size() == 1 && state.removals.empty() &&
           state.jams.CountsOf("dead").member_count == 0;
  }));
  EXPECT_GE(absl::Now(), lapses);
  ReadOnStrand<bool>(pool, [](PoolState& state, absl::Time now) {
    EXPECT_EQ(state.sessions_expired, 1u);
    EXPECT_EQ(state.members_removed_by_expiry, 20u);
    EXPECT_EQ(state.reservations_removed_by_expiry, 1u);
    EXPECT_TRUE(state.sessions.IsLive("alive", now));
    const CollectionSnapshot snapshot = state.jams.Snapshot(now);
    EXPECT_EQ(snapshot.user_count, 10u);
    EXPECT_EQ(snapshot.jam_count, 2u);
    EXPECT_EQ(snapshot.reservation_count, 0u);
    return true;
  });
}

// A front end larger than one removal step goes in several strand tasks:
// calls posted meanwhile run between them and see it half removed.
TEST_P(JamPoolTest, OtherCallsRunBetweenRemovalSteps) {
  JamPool pool(7, /*run_inline=*/GetParam());
  constexpr int kUsers = 49 * static_cast<int>(JamPool::kRemovalStep);
  HostUsers(pool, "big", kUsers, absl::Milliseconds(200));
  const LatencyHistogram::Snapshot before = pool.strand_run_time().Read();
  bool saw_part = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  uint64_t removed = 0;
  while (removed < kUsers && absl::Now() < give_up) {
    removed = ReadOnStrand<uint64_t>(pool, [](PoolState& state, absl::Time) {
      return state.members_removed_by_expiry;
    });
    if (removed > 0 && removed < kUsers) saw_part = true;
  }
  EXPECT_EQ(removed, static_cast<uint64_t>(kUsers));
  EXPECT_TRUE(saw_part);
  // For the record: the longest strand task during the removal (the
  // histogram's buckets, counted since the users were placed).
  const LatencyHistogram::Snapshot after = pool.strand_run_time().Read();
  const uint64_t tasks = after.count - before.count;
  for (size_t i = 0; i < after.upper_bounds_seconds.size(); ++i) {
    if (after.cumulative_counts[i] - before.cumulative_counts[i] == tasks) {
      std::printf(
          "removing %d users: longest strand task <= %g ms (%llu "
          "tasks)\n",
          kUsers, after.upper_bounds_seconds[i] * 1000,
          static_cast<unsigned long long>(tasks));
      break;
    }
  }
}

// A removal queued by an operation (as EndSession queues one) goes in steps
// too, other calls running in between, and its `done` hears the count once
// every user is gone.
TEST_P(JamPoolTest, AQueuedRemovalAnswersOnceAllAreGone) {
  JamPool pool(7, /*run_inline=*/GetParam());
  constexpr int kUsers = 20 * static_cast<int>(JamPool::kRemovalStep) + 3;
  HostUsers(pool, "leaving", kUsers, absl::Minutes(1));
  HostUsers(pool, "staying", 10, absl::Minutes(1));
  std::atomic<int> answers{0};
  std::atomic<uint64_t> answered{0};
  // The users still there when the answer came.
  std::atomic<uint64_t> left_at_answer{~uint64_t{0}};
  std::thread ender([&] {
    pool.Post([&](PoolState& state, absl::Time) {
      state.sessions.End("leaving");
      state.removals.emplace_back(
          "leaving", /*expired=*/false, [&](absl::StatusOr<uint64_t> removed) {
            answered = removed.value_or(0);
            left_at_answer = state.jams.CountsOf("leaving").member_count;
            ++answers;
          });
    });
  });
  // Two threads read: whichever holds the strand in inline mode drains it,
  // so the other's reads are the ones that queue between the steps.
  std::atomic<bool> saw_part{false};
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  auto probe = [&] {
    while (answers.load() == 0 && absl::Now() < give_up) {
      const uint64_t left =
          ReadOnStrand<uint64_t>(pool, [](PoolState& state, absl::Time) {
            return state.jams.CountsOf("leaving").member_count;
          });
      if (left > 0 && left < kUsers) saw_part = true;
    }
  };
  std::thread prober(probe);
  probe();
  prober.join();
  ender.join();
  ASSERT_EQ(answers.load(), 1);
  EXPECT_EQ(answered.load(), static_cast<uint64_t>(kUsers));
  EXPECT_EQ(left_at_answer.load(), 0u);
  EXPECT_TRUE(saw_part.load());
  ReadOnStrand<bool>(pool, [](PoolState& state, absl::Time now) {
    EXPECT_TRUE(state.removals.empty());
    EXPECT_EQ(state.members_removed_by_expiry, 0u);  // Not an expiry.
    EXPECT_EQ(state.jams.Snapshot(now).user_count, 10u);
    return true;
  });
}

TEST_P(JamPoolTest, RemovalsQueueInExpiryOrder) {
  JamPool pool(7, /*run_inline=*/GetParam());
  HostUsers(pool, "first", 3000, absl::Milliseconds(50));
  HostUsers(pool, "second", 3000, absl::Milliseconds(60));
  EXPECT_TRUE(EventuallyOnStrand(pool, [](PoolState& state, absl::Time now) {
    return state.sessions_expired == 2 && state.removals.empty() &&
           state.jams.Snapshot(now).user_count == 0;
  }));
}

// A large Sync runs in strand steps of kSyncStep users: calls queued while
// it runs are answered before it ends, and its outcome counts everything.
TEST_P(JamPoolTest, LargeSyncRunsInStepsWithOtherCallsBetween) {
  JamPool pool(7, /*run_inline=*/GetParam());
  constexpr int kJams = 2000;
  constexpr int kPerJam = 5;  // 10,000 users: 5 steps at least.
  std::vector<std::string> jam_ids;
  std::vector<std::vector<std::string>> users(kJams);
  std::vector<std::vector<absl::string_view>> views(kJams);
  std::vector<JamMembers> jams;
  for (int j = 0; j < kJams; ++j) {
    jam_ids.push_back(absl::StrCat("jam-", j));
    for (int u = 0; u < kPerJam; ++u) {
      users[j].push_back(absl::StrCat("user-", j, "-", u));
    }
  }
  for (int j = 0; j < kJams; ++j) {
    views[j].assign(users[j].begin(), users[j].end());
    jams.push_back({jam_ids[j], views[j]});
  }
  std::atomic<int> calls_done{0};
  std::atomic<int> calls_done_at_sync_end{-1};
  absl::Notification synced;
  absl::StatusOr<SyncOutcome> outcome;
  // Hold the strand (from a thread of its own: an idle inline strand runs
  // a task on the posting thread) while the Sync and the calls queue up.
  absl::Notification hold_started;
  absl::Notification release;
  std::thread holder([&] {
    pool.Post([&](PoolState&, absl::Time) {
      hold_started.Notify();
      release.WaitForNotification();
    });
  });
  hold_started.WaitForNotification();
  pool.Post([&](PoolState& state, absl::Time) {
    state.syncs.emplace_back(JamCollection::PlanReplace("fe", jams),
                             absl::Seconds(10),
                             [&](absl::StatusOr<SyncOutcome> result) {
                               outcome = std::move(result);
                               calls_done_at_sync_end = calls_done.load();
                               synced.Notify();
                             });
  });
  // Queued behind the Sync: each runs before its second step.
  constexpr int kCalls = 50;
  for (int i = 0; i < kCalls; ++i) {
    pool.Post([&](PoolState& state, absl::Time now) {
      state.jams.HasCapacity("jam-0", "", now);
      ++calls_done;
    });
  }
  // A call that arrives while it runs sees it half done: begun (the session
  // is live from its first step) and not finished. A probe that posts
  // itself again each time it runs alternates with the steps (each step
  // posts the next one); a Sync applied in one step is never seen so.
  std::atomic<int> seen_mid_sync{0};
  std::function<void(PoolState&, absl::Time)> probe = [&](PoolState& state,
                                                          absl::Time now) {
    if (state.syncs.empty()) return;  // Done.
    if (state.sessions.IsLive("fe", now)) ++seen_mid_sync;
    pool.Post(probe);
  };
  pool.Post(probe);
  release.Notify();
  ASSERT_TRUE(synced.WaitForNotificationWithTimeout(absl::Seconds(30)));
  holder.join();
  EXPECT_EQ(calls_done_at_sync_end.load(), kCalls);
  EXPECT_GT(seen_mid_sync.load(), 0);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->counts.member_count, uint64_t{kJams * kPerJam});
  EXPECT_EQ(outcome->counts.jam_count, uint64_t{kJams});
  const bool live =
      ReadOnStrand<bool>(pool, [](PoolState& state, absl::Time now) {
        return state.sessions.IsLive("fe", now) &&
               state.jams.Snapshot(now).user_count == kJams * kPerJam;
      });
  EXPECT_TRUE(live);
}

// EndSession while its Sync is being applied: the later call wins. The
// Sync is answered ABORTED and the front end's users are all removed.
TEST_P(JamPoolTest, SessionEndedMidSyncAbortsTheSync) {
  JamPool pool(7, /*run_inline=*/GetParam());
  std::vector<std::string> users;
  for (int u = 0; u < 10000; ++u) users.push_back(absl::StrCat("user-", u));
  std::vector<std::vector<absl::string_view>> views(1000);
  std::vector<std::string> jam_ids;
  for (int j = 0; j < 1000; ++j) jam_ids.push_back(absl::StrCat("jam-", j));
  std::vector<JamMembers> jams;
  for (int j = 0; j < 1000; ++j) {
    for (int u = 0; u < 10; ++u) views[j].push_back(users[j * 10 + u]);
    jams.push_back({jam_ids[j], views[j]});
  }
  absl::Notification synced;
  absl::Notification removed;
  absl::StatusOr<SyncOutcome> outcome;
  std::function<void(PoolState&, absl::Time)> end_when_half_done =
      [&](PoolState& state, absl::Time now) {
        if (state.syncs.empty()) return;  // Too late: the test fails below.
        if (!state.sessions.IsLive("fe", now)) {
          pool.Post(end_when_half_done);
          return;
        }
        state.sessions.End("fe");
        state.removals.emplace_back(
            "fe", /*expired=*/false,
            [&](absl::StatusOr<uint64_t>) { removed.Notify(); });
      };
  pool.Post([&](PoolState& state, absl::Time) {
    state.syncs.emplace_back(JamCollection::PlanReplace("fe", jams),
                             absl::Seconds(10),
                             [&](absl::StatusOr<SyncOutcome> result) {
                               outcome = std::move(result);
                               synced.Notify();
                             });
    pool.Post(end_when_half_done);
  });
  ASSERT_TRUE(synced.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kAborted)
      << outcome.status();
  ASSERT_TRUE(removed.WaitForNotificationWithTimeout(absl::Seconds(30)));
  const uint64_t left =
      ReadOnStrand<uint64_t>(pool, [](PoolState& state, absl::Time now) {
        return state.jams.Snapshot(now).user_count +
               (state.sessions.IsLive("fe", now) ? 1 : 0);
      });
  EXPECT_EQ(left, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, JamPoolTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Inline" : "DedicatedThread";
                         });

}  // namespace
}  // namespace jambalancer
