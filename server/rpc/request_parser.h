#ifndef JAM_BALANCER_SERVER_RPC_REQUEST_PARSER_H_
#define JAM_BALANCER_SERVER_RPC_REQUEST_PARSER_H_

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace jambalancer {

// Parses a serialized request. The service parses requests itself (raw
// methods) rather than letting gRPC do it, because gRPC 1.51's callback API
// answers a request that fails to parse with UNIMPLEMENTED and no message. A
// proto3 string holding invalid UTF-8 fails to parse; here it becomes
// INVALID_ARGUMENT naming the field, like every other bad id (with its path
// in nested messages, e.g. "operations[3].add_user.user_id").
absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* request);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_REQUEST_PARSER_H_
