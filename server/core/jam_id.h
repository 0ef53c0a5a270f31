#ifndef JAM_BALANCER_SERVER_CORE_JAM_ID_H_
#define JAM_BALANCER_SERVER_CORE_JAM_ID_H_

#include <string>

#include "absl/random/bit_gen_ref.h"

namespace jambalancer {

// A random UUID version 4 (RFC 4122 variant) in lowercase canonical form,
// e.g. "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c".
std::string NewJamId(absl::BitGenRef random);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_JAM_ID_H_
