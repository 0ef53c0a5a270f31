#ifndef JAM_BALANCER_TESTS_TESTING_STATUS_EXPECTATIONS_H_
#define JAM_BALANCER_TESTS_TESTING_STATUS_EXPECTATIONS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer::test {

// Expects INVALID_ARGUMENT whose message names `field` and states `rule`
// (any rule when empty).
inline void ExpectInvalidArgument(const absl::Status& status,
                                  absl::string_view field,
                                  absl::string_view rule = "") {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), ::testing::HasSubstr(field));
  EXPECT_THAT(status.message(), ::testing::HasSubstr(rule));
}

}  // namespace jambalancer::test

#endif  // JAM_BALANCER_TESTS_TESTING_STATUS_EXPECTATIONS_H_
