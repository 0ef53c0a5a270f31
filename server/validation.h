#ifndef JAM_BALANCER_SERVER_VALIDATION_H_
#define JAM_BALANCER_SERVER_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "jambalancer/v1/jam_balancer.pb.h"

namespace jambalancer {

inline constexpr size_t kMaxIdBytes = 128;
inline constexpr size_t kMaxRefreshUsers = 1024;

// Checks one jam or user id: 1 to kMaxIdBytes bytes of well-formed UTF-8
// without control characters (U+0000-U+001F, U+007F-U+009F). The error is
// INVALID_ARGUMENT and names `field`.
absl::Status ValidateId(absl::string_view field, absl::string_view id);

// Checks that `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF). The error is INVALID_ARGUMENT naming `field`.
absl::Status ValidateUtf8(absl::string_view field, absl::string_view text);

// Request checks: OK, or INVALID_ARGUMENT naming the first bad field.
absl::Status Validate(const v1::CurrentJamRequest& request);
absl::Status Validate(const v1::RefreshRequest& request);
absl::Status Validate(const v1::RemoveUserRequest& request);
absl::Status Validate(const v1::HasCapacityRequest& request);
absl::Status Validate(const v1::AddUserRequest& request);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_VALIDATION_H_
