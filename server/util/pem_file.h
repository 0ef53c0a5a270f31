#ifndef JAM_BALANCER_SERVER_UTIL_PEM_FILE_H_
#define JAM_BALANCER_SERVER_UTIL_PEM_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace jambalancer {

// The contents of the PEM file at `path` (a certificate, a chain, a CA
// bundle or a private key), read whole. `name` says what the file is for, in
// errors: the option or flag that named it. INVALID_ARGUMENT naming `name`
// and `path` when the file cannot be read (with the system's reason) or
// holds no PEM block ("-----BEGIN "). Only the framing is checked here:
// whether the blocks parse, and a key matches its certificate, is the TLS
// library's to say when it uses them.
absl::StatusOr<std::string> ReadPemFile(absl::string_view name,
                                        const std::string& path);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_UTIL_PEM_FILE_H_
