#ifndef JAM_BALANCER_SERVER_RPC_ID_VALIDATION_H_
#define JAM_BALANCER_SERVER_RPC_ID_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace jambalancer {

// The rules every jam and user id follows at the edge.

inline constexpr size_t kMaxIdBytes = 128;

// Checks one jam or user id: 1 to kMaxIdBytes bytes of well-formed UTF-8
// without control characters (U+0000-U+001F, U+007F-U+009F). The error is
// INVALID_ARGUMENT and names `field`.
absl::Status ValidateId(absl::string_view field, absl::string_view id);

// Checks that `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF). The error is INVALID_ARGUMENT naming `field`.
absl::Status ValidateUtf8(absl::string_view field, absl::string_view text);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_ID_VALIDATION_H_
