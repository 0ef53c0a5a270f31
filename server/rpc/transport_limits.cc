#include "server/rpc/transport_limits.h"

#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>

#include <climits>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace jambalancer {
namespace {

// gRPC takes times as int milliseconds, INT_MAX meaning "never".
constexpr absl::Duration kLongestTime = absl::Milliseconds(INT_MAX);

// Checks a time given as `name`: at least `shortest`, and either infinite
// or below kLongestTime.
absl::Status CheckTime(absl::string_view name, absl::Duration value,
                       absl::Duration shortest) {
  if (value < shortest ||
      (value != absl::InfiniteDuration() && value >= kLongestTime)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be at least ", absl::FormatDuration(shortest),
                     " and below ", absl::FormatDuration(kLongestTime),
                     " (or inf); got ", absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

int Millis(absl::Duration value) {
  if (value == absl::InfiniteDuration()) return INT_MAX;
  return static_cast<int>(absl::ToInt64Milliseconds(value));
}

absl::Status Check(const TransportLimits& limits) {
  // Below a few MiB gRPC could not hold one connection's read buffers.
  constexpr int64_t kSmallestMemory = int64_t{4} << 20;
  if (limits.memory_limit_bytes < kSmallestMemory) {
    return absl::InvalidArgumentError(
        absl::StrCat("grpc_memory_limit must be at least ", kSmallestMemory,
                     " bytes; got ", limits.memory_limit_bytes));
  }
  if (limits.max_concurrent_streams < 1 ||
      limits.max_concurrent_streams > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_concurrent_streams must be at least 1; got ",
                     limits.max_concurrent_streams));
  }
  // Below 64 KiB a Sync of one full jam would not fit.
  constexpr int32_t kSmallestMessage = 64 << 10;
  if (limits.max_receive_message_bytes < kSmallestMessage ||
      limits.max_send_message_bytes < kSmallestMessage) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_receive_message_size and max_send_message_size must be at "
        "least ",
        kSmallestMessage, " bytes; got ", limits.max_receive_message_bytes,
        " and ", limits.max_send_message_bytes));
  }
  if (limits.max_metadata_bytes < 1024 || limits.max_metadata_bytes > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_metadata_size must be at least 1024 bytes; got ",
                     limits.max_metadata_bytes));
  }
  if (limits.max_ping_strikes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_ping_strikes must not be negative; got ",
                     limits.max_ping_strikes));
  }
  const absl::Duration ms = absl::Milliseconds(1);
  for (const auto& [name, value] :
       {std::pair<absl::string_view, absl::Duration>{
            "max_connection_idle", limits.max_connection_idle},
        {"max_connection_age", limits.max_connection_age},
        {"handshake_timeout", limits.handshake_timeout},
        {"keepalive_time", limits.keepalive_time},
        {"keepalive_timeout", limits.keepalive_timeout}}) {
    if (absl::Status status = CheckTime(name, value, ms); !status.ok()) {
      return status;
    }
  }
  for (const auto& [name, value] :
       {std::pair<absl::string_view, absl::Duration>{
            "max_connection_age_grace", limits.max_connection_age_grace},
        {"min_recv_ping_interval", limits.min_recv_ping_interval}}) {
    if (absl::Status status = CheckTime(name, value, absl::ZeroDuration());
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyTransportLimits(const TransportLimits& limits,
                                  grpc::ServerBuilder& builder) {
  if (absl::Status status = Check(limits); !status.ok()) return status;
  // The quota is shared by every connection of this server; the builder
  // keeps its own reference. No SetMaxThreads: in gRPC 1.51 it bounds only
  // the synchronous server's threads, and this server uses the callback API.
  grpc::ResourceQuota quota("jam-balancer");
  quota.Resize(static_cast<size_t>(limits.memory_limit_bytes));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(limits.max_concurrent_streams));
  builder.SetMaxReceiveMessageSize(limits.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(limits.max_send_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE,
                             static_cast<int>(limits.max_metadata_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             Millis(limits.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             Millis(limits.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             Millis(limits.max_connection_age_grace));
  // For the insecure port too: a connection that never sends its SETTINGS
  // frame is closed at this deadline.
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             Millis(limits.handshake_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             Millis(limits.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Millis(limits.keepalive_timeout));
  // Clients may keep an idle connection alive with pings (idle connections
  // are closed by max_connection_idle anyway); without this every such ping
  // would be a strike.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      Millis(limits.min_recv_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES,
                             limits.max_ping_strikes);
  return absl::OkStatus();
}

}  // namespace jambalancer
