#ifndef JAM_BALANCER_SERVER_RPC_TRANSPORT_LIMITS_H_
#define JAM_BALANCER_SERVER_RPC_TRANSPORT_LIMITS_H_

// What a peer may cost the gRPC server below the service: memory, streams,
// message sizes, pings and how long a connection may live. ServerOptions
// holds one (server_options.h); BalancerServer applies it to its
// grpc::ServerBuilder. The defaults are the server's defaults: jam-balancer's
// flags take theirs from here.
//
// gRPC 1.51 honours every argument set here, but some attacks stay unbounded
// by them (HTTP/2 rapid reset costs CPU, responses a peer never reads are not
// counted in the memory quota): see README.md, "Transport limits".

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace jambalancer {

struct TransportLimits {
  // Memory gRPC may take for its buffers and calls (a grpc::ResourceQuota);
  // above it gRPC shrinks its read buffers, closes idle connections and
  // cancels streams. The jam state is not counted.
  int64_t memory_limit_bytes = int64_t{256} << 20;
  // Streams a client may have open on one connection (HTTP/2
  // SETTINGS_MAX_CONCURRENT_STREAMS); further calls wait in the client.
  uint32_t max_concurrent_streams = 100;
  // Largest request message. The clients split Sync into messages of at most
  // 1 MiB (BalancerClient::kMaxSyncMessageBytes, sync_messages.js); twice
  // that leaves room for a Batch.
  int32_t max_receive_message_bytes = 2 << 20;
  // Largest response message; clients refuse more than 4 MiB by default.
  int32_t max_send_message_bytes = 4 << 20;
  // Largest request metadata (headers), per call.
  uint32_t max_metadata_bytes = 8 << 10;
  // A connection without a call for this long is closed (GOAWAY); the
  // client reconnects on its next call.
  absl::Duration max_connection_idle = absl::Minutes(1);
  // A connection is sent GOAWAY after this long (gRPC adds +-10% jitter);
  // calls still open max_connection_age_grace later are cancelled. Bounds
  // how long any stream, finished or not, can hold the server's memory.
  absl::Duration max_connection_age = absl::Minutes(30);
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // A connection that has not finished its TLS handshake and sent its HTTP/2
  // SETTINGS within this is closed.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // The server pings a connection quiet for keepalive_time and closes it if
  // the ping is not answered within keepalive_timeout: finds dead peers.
  absl::Duration keepalive_time = absl::Minutes(1);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Client pings closer together than this while the server sends nothing
  // are strikes; after max_ping_strikes more the connection is closed
  // (GOAWAY ENHANCE_YOUR_CALM). Client keepalive times must be longer.
  absl::Duration min_recv_ping_interval = absl::Seconds(10);
  int max_ping_strikes = 2;
};

// Checks `limits` and sets them on `builder`: its ResourceQuota and channel
// arguments. Returns InvalidArgumentError naming the first value out of
// range (and then leaves `builder` as it was).
absl::Status ApplyTransportLimits(const TransportLimits& limits,
                                  grpc::ServerBuilder& builder);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_TRANSPORT_LIMITS_H_
