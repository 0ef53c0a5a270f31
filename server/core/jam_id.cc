#include "server/core/jam_id.h"

#include <cstdint>

#include "absl/random/distributions.h"

namespace jambalancer {

std::string NewJamId(absl::BitGenRef random) {
  uint8_t bytes[16];
  for (uint8_t& byte : bytes) byte = absl::Uniform<uint8_t>(random);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;  // Version 4.
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant.

  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    id.push_back(kHex[bytes[i] >> 4]);
    id.push_back(kHex[bytes[i] & 0x0f]);
  }
  return id;
}

}  // namespace jambalancer
