#ifndef JAM_BALANCER_SERVER_UTIL_FD_LIMIT_H_
#define JAM_BALANCER_SERVER_UTIL_FD_LIMIT_H_

// The process's limit on open file descriptors (RLIMIT_NOFILE). Every gRPC
// connection holds one; at the soft limit accept4 fails with EMFILE. Many
// systems start processes with a soft limit of 1024 and a hard limit far
// above it.

#include <cstdint>

#include "absl/status/statusor.h"

namespace jambalancer {

struct FdLimit {
  uint64_t before = 0;  // Soft limit found at the call.
  uint64_t after = 0;   // Soft limit set (the hard limit; RLIM_INFINITY as
                        // UINT64_MAX).
};

// Raises the soft RLIMIT_NOFILE to the hard limit. Call early in main,
// before threads open descriptors. Returns the limits, or an error naming
// getrlimit or setrlimit and errno's text.
absl::StatusOr<FdLimit> RaiseFdLimit();

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_UTIL_FD_LIMIT_H_
