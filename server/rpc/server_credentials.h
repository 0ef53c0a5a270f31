#ifndef JAM_BALANCER_SERVER_RPC_SERVER_CREDENTIALS_H_
#define JAM_BALANCER_SERVER_RPC_SERVER_CREDENTIALS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/rpc/server_options.h"

namespace jambalancer {

// The credentials of the gRPC port as `options` ask for them:
//   no tls_* option               plaintext (insecure credentials);
//   tls_cert and tls_key          TLS; clients verify the server;
//   ... and tls_client_ca         mutual TLS: a client must present a
//                                 certificate that chains to that CA, else
//                                 its handshake fails.
// The files are read now, once; the server keeps what they held until it
// restarts. INVALID_ARGUMENT naming the option (and file): tls_key without
// tls_cert or the reverse, tls_client_ca without tls_cert, a file that
// cannot be read or holds no PEM block, a key that is not the certificate's
// (or is encrypted).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerOptions& options);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_SERVER_CREDENTIALS_H_
