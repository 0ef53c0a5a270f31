#include "server/runtime/strand.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

// Every test runs with the dedicated thread only (false) and in inline mode
// (true), where an idle strand runs a posted task on the posting thread.
class StrandTest : public ::testing::TestWithParam<bool> {};

TEST_P(StrandTest, RunsTasksInPostOrder) {
  std::vector<int> order;  // Touched only by strand tasks.
  {
    Strand strand(/*run_inline=*/GetParam());
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(strand.Post([&order, i] { order.push_back(i); }));
    }
  }  // Destruction drains the queue.
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
}

TEST_P(StrandTest, ManyProducersKeepEachProducersOrderAndLoseNothing) {
  constexpr int kProducers = 8;
  constexpr int kPerProducer = 5000;
  // Deliberately unsynchronized: the strand must serialize the tasks (run
  // under TSan to check that claim as well).
  std::vector<std::vector<int>> seen(kProducers);
  int total = 0;
  Strand strand(/*run_inline=*/GetParam());
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        strand.Post([&, p, i] {
          seen[p].push_back(i);
          ++total;
        });
      }
    });
  }
  for (std::thread& t : producers) t.join();
  strand.Shutdown();
  EXPECT_EQ(total, kProducers * kPerProducer);
  for (int p = 0; p < kProducers; ++p) {
    ASSERT_EQ(seen[p].size(), static_cast<size_t>(kPerProducer));
    for (int i = 0; i < kPerProducer; ++i) ASSERT_EQ(seen[p][i], i);
  }
}

TEST_P(StrandTest, TasksNeverOverlap) {
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  Strand strand(/*run_inline=*/GetParam());
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        strand.Post([&] {
          const int now = ++running;
          int seen = max_running.load();
          while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
          }
          --running;
        });
      }
    });
  }
  for (std::thread& t : producers) t.join();
  strand.Shutdown();
  EXPECT_EQ(max_running.load(), 1);
}

TEST_P(StrandTest, ShutdownRunsPendingWorkThenRefusesMore) {
  Strand strand(/*run_inline=*/GetParam());
  absl::Notification release;
  std::atomic<int> ran{0};
  // Hold the strand so the following tasks are still queued at Shutdown.
  // Posted from another thread: in inline mode it runs on the poster.
  absl::Notification holding;
  std::thread holder([&] {
    strand.Post([&] {
      holding.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(10));
    });
  });
  ASSERT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(strand.Post([&] { ++ran; }));
  EXPECT_GE(strand.QueueDepth(), 100u);

  std::thread stopper([&] { strand.Shutdown(); });
  // Once shutdown has begun, posts are refused; wait for that (bounded).
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {
    refused = !strand.Post([&] { ran += 1000; });
    if (!refused) absl::SleepFor(absl::Milliseconds(1));
  }
  release.Notify();
  holder.join();
  stopper.join();
  EXPECT_TRUE(refused);
  // Every task posted before shutdown ran; a refused one never does. Posts
  // accepted before the refusal (at most the polling ones) add 1000 each.
  EXPECT_EQ(ran.load() % 1000, 100);
  EXPECT_EQ(strand.QueueDepth(), 0u);
  EXPECT_FALSE(strand.Post([] {}));
}

TEST_P(StrandTest, ShutdownIsIdempotent) {
  Strand strand(/*run_inline=*/GetParam());
  strand.Shutdown();
  strand.Shutdown();
  EXPECT_FALSE(strand.Post([] {}));
}

TEST_P(StrandTest, TaskMayPostAnotherTask) {
  std::vector<int> order;
  absl::Notification done;
  Strand strand(/*run_inline=*/GetParam());
  strand.Post([&] {
    order.push_back(1);
    strand.Post([&] {
      order.push_back(3);
      done.Notify();
    });
    order.push_back(2);
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  strand.Shutdown();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(StrandTest, TimerRunsOnTheStrandWhenDue) {
  Strand strand(/*run_inline=*/GetParam());
  absl::Notification fired;
  const absl::Time due = absl::Now() + absl::Milliseconds(30);
  absl::Time fired_at;
  strand.SetTimer(due, [&] {
    fired_at = absl::Now();
    fired.Notify();
  });
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(fired_at, due);
}

TEST_P(StrandTest, SettingTheTimerAgainReplacesIt) {
  Strand strand(/*run_inline=*/GetParam());
  std::atomic<int> first{0};
  absl::Notification second;
  strand.SetTimer(absl::Now() + absl::Hours(1), [&] { ++first; });
  // An earlier time must wake the strand that sleeps for the hour.
  strand.SetTimer(absl::Now() + absl::Milliseconds(10),
                  [&] { second.Notify(); });
  ASSERT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(first.load(), 0);
}

TEST_P(StrandTest, ClearedOrPendingTimersNeverRun) {
  std::atomic<int> ran{0};
  {
    Strand strand(/*run_inline=*/GetParam());
    strand.SetTimer(absl::Now() + absl::Milliseconds(1), [&] { ++ran; });
    strand.SetTimer(absl::InfiniteFuture(), nullptr);
    strand.Post([] {});
    absl::SleepFor(absl::Milliseconds(20));
    strand.SetTimer(absl::Now() + absl::Hours(1), [&] { ++ran; });
  }  // Shutdown with the hour-long timer pending.
  EXPECT_EQ(ran.load(), 0);
}

TEST(InlineStrandTest, IdleStrandRunsTheTaskOnThePostingThread) {
  Strand strand(/*run_inline=*/true);
  std::thread::id ran_on;
  strand.Post([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(InlineStrandTest, TaskPostedFromATaskRunsAfterIt) {
  Strand strand(/*run_inline=*/true);
  std::vector<int> order;
  strand.Post([&] {
    strand.Post([&] { order.push_back(2); });
    order.push_back(1);
  });
  // The poster drained the nested task before Post returned.
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(InlineStrandTest, APosterRunsOneBatchAndLeavesTheRestToTheThread) {
  Strand strand(/*run_inline=*/true);
  absl::Notification a_running, b_posted, c_ran;
  std::vector<char> order;
  std::thread::id b_ran_on, c_ran_on;
  std::thread other([&] {
    a_running.WaitForNotification();
    strand.Post([&] {  // Queued behind A: the poster's one batch.
      order.push_back('b');
      b_ran_on = std::this_thread::get_id();
      strand.Post([&] {  // Queued during that batch: not the poster's.
        order.push_back('c');
        c_ran_on = std::this_thread::get_id();
        c_ran.Notify();
      });
    });
    b_posted.Notify();
  });
  strand.Post([&] {
    order.push_back('a');
    a_running.Notify();
    b_posted.WaitForNotification();
  });
  const std::thread::id other_id = other.get_id();
  other.join();
  c_ran.WaitForNotification();
  EXPECT_EQ(order, (std::vector<char>{'a', 'b', 'c'}));
  EXPECT_EQ(b_ran_on, std::this_thread::get_id());
  EXPECT_NE(c_ran_on, std::this_thread::get_id());
  EXPECT_NE(c_ran_on, other_id);
}

INSTANTIATE_TEST_SUITE_P(Modes, StrandTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Inline" : "DedicatedThread";
                         });

}  // namespace
}  // namespace jambalancer
