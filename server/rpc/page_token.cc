#include "server/rpc/page_token.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/rpc/id_validation.h"

namespace jambalancer {
namespace {

// Versions the format, and makes random strings unlikely to decode.
constexpr absl::string_view kPrefix = "jams/v1/after/";

}  // namespace

std::string EncodePageToken(absl::string_view last_jam_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(kPrefix, last_jam_id));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token) {
  if (token.empty()) return std::string();
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(token, &decoded) ||
      !absl::StartsWith(decoded, kPrefix) ||
      !ValidateId("page_token", decoded.substr(kPrefix.size())).ok()) {
    return absl::InvalidArgumentError(
        "page_token is malformed: pass the next_page_token of the previous "
        "ListJams response, or empty for the first page");
  }
  return decoded.substr(kPrefix.size());
}

}  // namespace jambalancer
