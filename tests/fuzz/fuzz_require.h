#ifndef JAM_BALANCER_TESTS_FUZZ_FUZZ_REQUIRE_H_
#define JAM_BALANCER_TESTS_FUZZ_FUZZ_REQUIRE_H_

#include <cstdio>
#include <cstdlib>

// Stops the fuzzer (libFuzzer keeps the input) when `condition` is false,
// naming it. Unlike assert, it stays on in every build type.
#define FUZZ_REQUIRE(condition)                                       \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "%s:%d: broken: %s\n", __FILE__, __LINE__, \
                   #condition);                                       \
      std::abort();                                                   \
    }                                                                 \
  } while (false)

#endif  // JAM_BALANCER_TESTS_FUZZ_FUZZ_REQUIRE_H_
