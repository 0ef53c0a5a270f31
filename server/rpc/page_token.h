#ifndef JAM_BALANCER_SERVER_RPC_PAGE_TOKEN_H_
#define JAM_BALANCER_SERVER_RPC_PAGE_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jambalancer {

// ListJams page tokens. A token carries the id of the last jam of the page it
// ends, so the next page starts after that id even if jams come and go in
// between. Tokens are opaque to clients (web-safe base64).

std::string EncodePageToken(absl::string_view last_jam_id);

// The last jam id the token carries; "" for the empty token (first page).
// INVALID_ARGUMENT naming page_token if the token was not made by
// EncodePageToken.
absl::StatusOr<std::string> DecodePageToken(absl::string_view token);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_PAGE_TOKEN_H_
