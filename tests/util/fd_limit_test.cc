#include "server/util/fd_limit.h"

#include <sys/resource.h>

#include "gtest/gtest.h"

namespace jambalancer {
namespace {

TEST(FdLimitTest, RaisesTheSoftLimitToTheHardLimit) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  const rlim_t hard = limit.rlim_max;
  // Lower the soft limit first, so there is something to raise.
  if (hard > 64) {
    limit.rlim_cur = 64;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  absl::StatusOr<FdLimit> raised = RaiseFdLimit();
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(raised->before, hard > 64 ? 64 : hard);
  EXPECT_EQ(raised->after, hard);
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(limit.rlim_cur, hard);
  // Raising again changes nothing.
  raised = RaiseFdLimit();
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(raised->before, hard);
}

}  // namespace
}  // namespace jambalancer
