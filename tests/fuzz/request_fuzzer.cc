// Fuzzes what the edge does with a request's bytes. The first byte picks an
// RPC; the rest is what arrives on the wire, parsed exactly as the service
// parses it: ParseRequest, then CommandParser::Parse (for Sync the rest is
// the stream's messages, each a 2-byte little-endian length and its bytes,
// parsed one by one and then together, as SyncReactor does).
//
// Checked: nothing crashes (ASan, UBSan); ParseRequest accepts exactly what
// protobuf itself parses, however the bytes are sliced; every refusal is
// INVALID_ARGUMENT with a message (naming the operation in a Batch and the
// message in a Sync); every command accepted keeps the documented limits
// (ids of 1 to 128 bytes of well-formed UTF-8 without control characters,
// checked here by a decoder of our own; list and page sizes; TTLs defaulted
// and capped, in whole milliseconds) and borrows its ids from the request.
// Each accepted command is then applied to a fresh pool state (with a live
// session for each front end it names): it must succeed, store the ids
// byte for byte, and leave the collection's promises intact
// (tests/testing/pool_invariants.h).

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "jambalancer/v1/jam_balancer.pb.h"
#include "jambalancer/v1/rpc_list.h"
#include "server/rpc/commands.h"
#include "server/rpc/operations.h"
#include "server/rpc/page_token.h"
#include "server/rpc/pool_config.h"
#include "server/rpc/request_parser.h"
#include "server/runtime/pool_state.h"
#include "tests/fuzz/fuzz_require.h"
#include "tests/testing/pool_invariants.h"

namespace jambalancer {
namespace {

const ReservationPolicy kReservations{absl::Seconds(15), absl::Minutes(2)};
const LeasePolicy kLeases{absl::Seconds(10), absl::Minutes(5)};
const CommandParser& Parser() {
  static const CommandParser* parser =
      new CommandParser(kReservations, kLeases);
  return *parser;
}
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

// The length of the well-formed UTF-8 sequence at the start of `s`, per
// the Unicode Standard's table 3-7; 0 if there is none. Written apart from
// server/rpc/id_validation.cc on purpose: the two must agree.
size_t Utf8SequenceLength(absl::string_view s, uint32_t* code_point) {
  const auto at = [&](size_t i) -> uint32_t {
    return i < s.size() ? static_cast<uint8_t>(s[i]) : 0x100;
  };
  const auto in = [](uint32_t b, uint32_t lo, uint32_t hi) {
    return b >= lo && b <= hi;
  };
  const uint32_t b0 = at(0), b1 = at(1), b2 = at(2), b3 = at(3);
  if (b0 <= 0x7f) {
    *code_point = b0;
    return 1;
  }
  if (in(b0, 0xc2, 0xdf) && in(b1, 0x80, 0xbf)) {
    *code_point = (b0 & 0x1f) << 6 | (b1 & 0x3f);
    return 2;
  }
  const bool three =
      (b0 == 0xe0 && in(b1, 0xa0, 0xbf)) ||
      ((in(b0, 0xe1, 0xec) || in(b0, 0xee, 0xef)) && in(b1, 0x80, 0xbf)) ||
      (b0 == 0xed && in(b1, 0x80, 0x9f));
  if (three && in(b2, 0x80, 0xbf)) {
    *code_point = (b0 & 0x0f) << 12 | (b1 & 0x3f) << 6 | (b2 & 0x3f);
    return 3;
  }
  const bool four = (b0 == 0xf0 && in(b1, 0x90, 0xbf)) ||
                    (in(b0, 0xf1, 0xf3) && in(b1, 0x80, 0xbf)) ||
                    (b0 == 0xf4 && in(b1, 0x80, 0x8f));
  if (four && in(b2, 0x80, 0xbf) && in(b3, 0x80, 0xbf)) {
    *code_point =
        (b0 & 0x07) << 18 | (b1 & 0x3f) << 12 | (b2 & 0x3f) << 6 | (b3 & 0x3f);
    return 4;
  }
  return 0;
}

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  while (!id.empty()) {
    uint32_t c;
    const size_t n = Utf8SequenceLength(id, &c);
    if (n == 0 || c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
    id.remove_prefix(n);
  }
  return true;
}

bool IsValidOptionalId(absl::string_view id) {
  return id.empty() || IsValidId(id);
}

// The command's view is the request's own string (borrowed, not copied).
bool Borrows(absl::string_view view, const std::string& field) {
  return view.data() == field.data() && view.size() == field.size();
}

bool IsWholeMillis(absl::Duration d) {
  return d == absl::Milliseconds(absl::ToInt64Milliseconds(d));
}

// A TTL the parser made of `asked_ms` under `policy`.
template <typename Policy>
bool IsCapped(absl::Duration ttl, uint32_t asked_ms, const Policy& policy) {
  const absl::Duration expected =
      asked_ms == 0 ? policy.default_ttl
                    : std::min(absl::Milliseconds(asked_ms), policy.max_ttl);
  return ttl == expected && ttl > absl::ZeroDuration() &&
         ttl <= policy.max_ttl && IsWholeMillis(ttl);
}

void CheckRefusal(const absl::Status& status) {
  FUZZ_REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_REQUIRE(!status.message().empty());
}

// The bytes as gRPC may hand them over: in up to three slices.
grpc::ByteBuffer BytesOf(absl::string_view bytes) {
  std::vector<grpc::Slice> slices;
  const size_t cut1 = bytes.size() / 3, cut2 = bytes.size() * 2 / 3;
  for (auto [from, to] : {std::pair{size_t{0}, cut1}, std::pair{cut1, cut2},
                          std::pair{cut2, bytes.size()}}) {
    if (to > from) slices.emplace_back(bytes.data() + from, to - from);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// --- Each accepted command keeps the limits -------------------------------

void CheckAccepted(const v1::CurrentJamRequest& r, const CurrentJamCommand& c) {
  FUZZ_REQUIRE(IsValidOptionalId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, r.frontend_id()));
  if (r.user_id().empty()) {
    FUZZ_REQUIRE(c.user_id.empty());
    FUZZ_REQUIRE(c.reservation_ttl == absl::ZeroDuration());
  } else {
    FUZZ_REQUIRE(IsValidId(c.user_id) && Borrows(c.user_id, r.user_id()));
    FUZZ_REQUIRE(
        IsCapped(c.reservation_ttl, r.reservation_ttl_ms(), kReservations));
  }
}

void CheckAccepted(const v1::RefreshRequest& r, const RefreshCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.jam_id) && Borrows(c.jam_id, r.jam_id()));
  FUZZ_REQUIRE(IsValidOptionalId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, r.frontend_id()));
  FUZZ_REQUIRE(c.user_ids.size() <= kMaxRefreshUsers);
  FUZZ_REQUIRE(c.user_ids.size() == static_cast<size_t>(r.user_ids_size()));
  for (size_t i = 0; i < c.user_ids.size(); ++i) {
    FUZZ_REQUIRE(IsValidId(c.user_ids[i]));
    FUZZ_REQUIRE(Borrows(c.user_ids[i], r.user_ids(static_cast<int>(i))));
  }
}

void CheckAccepted(const v1::RemoveUserRequest& r, const RemoveUserCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.jam_id) && Borrows(c.jam_id, r.jam_id()));
  FUZZ_REQUIRE(IsValidId(c.user_id) && Borrows(c.user_id, r.user_id()));
  FUZZ_REQUIRE(IsValidOptionalId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, r.frontend_id()));
  if (r.hold_seat_ms() == 0) {
    FUZZ_REQUIRE(c.hold_seat == absl::ZeroDuration());
  } else {
    FUZZ_REQUIRE(IsCapped(c.hold_seat, r.hold_seat_ms(), kReservations));
  }
}

void CheckAccepted(const v1::HasCapacityRequest& r,
                   const HasCapacityCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.jam_id) && Borrows(c.jam_id, r.jam_id()));
  FUZZ_REQUIRE(IsValidOptionalId(c.user_id) && Borrows(c.user_id, r.user_id()));
}

void CheckAccepted(const v1::AddUserRequest& r, const AddUserCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.jam_id) && Borrows(c.jam_id, r.jam_id()));
  FUZZ_REQUIRE(IsValidId(c.user_id) && Borrows(c.user_id, r.user_id()));
  FUZZ_REQUIRE(IsValidOptionalId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, r.frontend_id()));
}

void CheckAccepted(const v1::GetStatsRequest&, const GetStatsCommand&) {}
void CheckAccepted(const v1::ListSessionsRequest&, const ListSessionsCommand&) {
}

void CheckAccepted(const v1::ListJamsRequest& r, const ListJamsCommand& c) {
  FUZZ_REQUIRE(c.page_size >= 1 && c.page_size <= kMaxPageSize);
  FUZZ_REQUIRE(c.page_size == (r.page_size() == 0
                                   ? kDefaultPageSize
                                   : std::min(r.page_size(), kMaxPageSize)));
  FUZZ_REQUIRE(c.after_jam_id.empty() == r.page_token().empty());
  if (!r.page_token().empty()) {
    FUZZ_REQUIRE(IsValidId(c.after_jam_id));
    const absl::StatusOr<std::string> again =
        DecodePageToken(EncodePageToken(c.after_jam_id));
    FUZZ_REQUIRE(again.ok() && *again == c.after_jam_id);
  }
}

void CheckAccepted(const v1::BatchRequest& r, const BatchCommand& c) {
  FUZZ_REQUIRE(c.operations.size() <= static_cast<size_t>(kMaxBatchOperations));
  FUZZ_REQUIRE(c.operations.size() == static_cast<size_t>(r.operations_size()));
  for (int i = 0; i < r.operations_size(); ++i) {
    const v1::BatchOperation& op = r.operations(i);
    const BatchItem& item = c.operations[static_cast<size_t>(i)];
    switch (op.operation_case()) {
#define JAM_BALANCER_CHECK_OPERATION(Method, field)              \
  case v1::BatchOperation::k##Method:                            \
    FUZZ_REQUIRE(std::holds_alternative<Method##Command>(item)); \
    CheckAccepted(op.field(), std::get<Method##Command>(item));  \
    break;
      JAM_BALANCER_BATCH_RPCS(JAM_BALANCER_CHECK_OPERATION)
#undef JAM_BALANCER_CHECK_OPERATION
      case v1::BatchOperation::OPERATION_NOT_SET:
        FUZZ_REQUIRE(false);  // Refused by the parser.
    }
  }
}

void CheckAccepted(const v1::KeepAliveRequest& r, const KeepAliveCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, r.frontend_id()));
}

void CheckAccepted(const v1::EndSessionRequest& r, const EndSessionCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, r.frontend_id()));
}

void CheckAccepted(const v1::GetJamRequest& r, const GetJamCommand& c) {
  FUZZ_REQUIRE(IsValidId(c.jam_id) && Borrows(c.jam_id, r.jam_id()));
}

void CheckAccepted(const v1::ListPoolsRequest&, const ListPoolsCommand&) {}
void CheckAccepted(const v1::GetRoutingRequest&, const GetRoutingCommand&) {}

void CheckAccepted(const std::vector<const v1::SyncRequest*>& messages,
                   const SyncCommand& c) {
  FUZZ_REQUIRE(!messages.empty());
  FUZZ_REQUIRE(IsValidId(c.frontend_id));
  FUZZ_REQUIRE(Borrows(c.frontend_id, messages[0]->frontend_id()));
  FUZZ_REQUIRE(IsCapped(c.lease_ttl, messages[0]->lease_ttl_ms(), kLeases));
  FUZZ_REQUIRE(c.lease_ttl >= absl::Milliseconds(500));
  FUZZ_REQUIRE(c.jams.size() == c.user_lists.size());
  FUZZ_REQUIRE(c.pools.size() == c.jams.size());
  size_t j = 0;
  for (size_t m = 0; m < messages.size(); ++m) {
    const v1::SyncRequest& message = *messages[m];
    FUZZ_REQUIRE(message.frontend_id().empty() ||
                 message.frontend_id() == c.frontend_id);
    FUZZ_REQUIRE(m == 0 || message.lease_ttl_ms() == 0);
    for (const v1::JamMembers& jam : message.jams()) {
      FUZZ_REQUIRE(j < c.jams.size());
      const JamMembers& parsed = c.jams[j];
      FUZZ_REQUIRE(IsValidId(parsed.jam_id) &&
                   Borrows(parsed.jam_id, jam.jam_id()));
      FUZZ_REQUIRE(parsed.user_ids.size() <= kMaxRefreshUsers);
      FUZZ_REQUIRE(parsed.user_ids.size() ==
                   static_cast<size_t>(jam.user_ids_size()));
      FUZZ_REQUIRE(parsed.user_ids.data() == c.user_lists[j].data());
      FUZZ_REQUIRE(Borrows(c.pools[j], jam.pool()));
      FUZZ_REQUIRE(c.pools[j].empty() ||
                   ValidatePoolName("pool", c.pools[j]).ok());
      for (size_t u = 0; u < parsed.user_ids.size(); ++u) {
        FUZZ_REQUIRE(IsValidId(parsed.user_ids[u]));
        FUZZ_REQUIRE(
            Borrows(parsed.user_ids[u], jam.user_ids(static_cast<int>(u))));
      }
      ++j;
    }
  }
  FUZZ_REQUIRE(j == c.jams.size());
}

// --- Each accepted command applies ----------------------------------------

// A fresh pool state in which every front end that `command` names has a
// live session.
struct Applied {
  PoolState state{/*max_users=*/3};
  std::vector<std::string> frontends;
  void Open(absl::string_view frontend_id) {
    if (frontend_id.empty()) return;
    frontends.emplace_back(frontend_id);
    state.sessions.Start(frontend_id, absl::Seconds(10), kNow);
  }
  void Check(testing::PoolView* view = nullptr) {
    const absl::Status status =
        testing::CheckPoolInvariants(state, kNow, frontends, view);
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
      std::abort();
    }
  }
};

template <typename Command>
absl::string_view FrontEndOf(const Command& command) {
  if constexpr (std::is_same_v<Command, CurrentJamCommand> ||
                std::is_same_v<Command, RefreshCommand> ||
                std::is_same_v<Command, RemoveUserCommand> ||
                std::is_same_v<Command, AddUserCommand> ||
                std::is_same_v<Command, KeepAliveCommand> ||
                std::is_same_v<Command, EndSessionCommand>) {
    return command.frontend_id;
  } else {
    return "";
  }
}

// The response type of each command's Apply.
template <typename Command>
struct ResponseOf;
#define JAM_BALANCER_RESPONSE_OF(Method, field) \
  template <>                                   \
  struct ResponseOf<Method##Command> {          \
    using type = v1::Method##Response;          \
  };
JAM_BALANCER_RPCS(JAM_BALANCER_RESPONSE_OF)
JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_RESPONSE_OF)
#undef JAM_BALANCER_RESPONSE_OF

// Where each listed user ends after a Refresh or Sync by `frontend_id` on
// an empty collection: in the last jam that lists it, owned by the caller.
void CheckPlaced(const testing::PoolView& view,
                 const std::map<std::string, std::string>& jam_of,
                 absl::string_view frontend_id) {
  size_t members = 0;
  for (const auto& [id, jam] : view) members += jam.members.size();
  FUZZ_REQUIRE(members == jam_of.size());
  for (const auto& [user, jam] : jam_of) {
    auto it = view.find(jam);
    FUZZ_REQUIRE(it != view.end());
    auto member = it->second.members.find(user);
    FUZZ_REQUIRE(member != it->second.members.end());
    FUZZ_REQUIRE(member->second == frontend_id);
  }
}

// Applies an accepted command to a fresh pool state in which every front
// end it names has a live session: it must succeed, and what it stores
// must be its ids byte for byte.
template <typename Command>
void ApplyFresh(const Command& command) {
  Applied applied;
  testing::PoolView view;
  if constexpr (std::is_same_v<Command, ListPoolsCommand> ||
                std::is_same_v<Command, GetRoutingCommand>) {
    // Read every pool's settings and leader at the edge: nothing to apply.
    return;
  } else if constexpr (std::is_same_v<Command, EndSessionCommand>) {
    applied.Open(command.frontend_id);
    bool answered = false;
    FUZZ_REQUIRE(Apply(command, kNow, applied.state,
                       [&answered](absl::StatusOr<uint64_t> removed) {
                         FUZZ_REQUIRE(removed.ok() && *removed == 0);
                         answered = true;
                       })
                     .ok());
    FUZZ_REQUIRE(applied.state.removals.size() == 1);
    FrontEndRemovalTask& task = applied.state.removals.front();
    const FrontEndRemoval step =
        applied.state.jams.RemoveFrontEnd(task.frontend_id, 1, kNow);
    FUZZ_REQUIRE(step.done);
    applied.state.CountRemoved(task, step);
    task.Finish(task.members_removed);
    applied.state.removals.pop_front();
    FUZZ_REQUIRE(answered);
    applied.Check();
    return;
  } else {
    if constexpr (std::is_same_v<Command, BatchCommand>) {
      for (const BatchItem& item : command.operations) {
        std::visit([&](const auto& typed) { applied.Open(FrontEndOf(typed)); },
                   item);
      }
    } else if constexpr (std::is_same_v<Command, SyncCommand>) {
      applied.frontends.emplace_back(command.frontend_id);
    } else {
      applied.Open(FrontEndOf(command));
    }
    typename ResponseOf<Command>::type response;
    FUZZ_REQUIRE(Apply(command, kNow, applied.state, &response).ok());
    applied.Check(&view);

    if constexpr (std::is_same_v<Command, RefreshCommand>) {
      std::map<std::string, std::string> jam_of;
      for (absl::string_view user : command.user_ids) {
        jam_of[std::string(user)] = std::string(command.jam_id);
      }
      CheckPlaced(view, jam_of, command.frontend_id);
      FUZZ_REQUIRE(response.user_count() == jam_of.size());
    } else if constexpr (std::is_same_v<Command, SyncCommand>) {
      std::map<std::string, std::string> jam_of;
      std::set<std::string> jams;
      for (const JamMembers& jam : command.jams) {
        for (absl::string_view user : jam.user_ids) {
          jam_of[std::string(user)] = std::string(jam.jam_id);
        }
      }
      for (const auto& [user, jam] : jam_of) jams.insert(jam);
      CheckPlaced(view, jam_of, command.frontend_id);
      FUZZ_REQUIRE(response.user_count() == jam_of.size());
      FUZZ_REQUIRE(response.jam_count() == jams.size());
      FUZZ_REQUIRE(
          response.lease_expires_unix_ms() ==
          static_cast<uint64_t>(absl::ToUnixMillis(kNow + command.lease_ttl)));
    } else if constexpr (std::is_same_v<Command, AddUserCommand>) {
      FUZZ_REQUIRE(response.added());
      CheckPlaced(view,
                  {{std::string(command.user_id), std::string(command.jam_id)}},
                  command.frontend_id);
    } else if constexpr (std::is_same_v<Command, CurrentJamCommand>) {
      if (!command.user_id.empty()) {
        FUZZ_REQUIRE(response.new_jam());
        FUZZ_REQUIRE(view.size() == 1 && view.count(response.jam_id()) &&
                     view[response.jam_id()].reserved == 1);
        FUZZ_REQUIRE(response.reservation_expires_unix_ms() ==
                     static_cast<uint64_t>(
                         absl::ToUnixMillis(kNow + command.reservation_ttl)));
      } else {
        FUZZ_REQUIRE(view.empty());
      }
    } else if constexpr (!std::is_same_v<Command, BatchCommand>) {
      FUZZ_REQUIRE(view.empty());  // Nothing else places anyone here.
    }
  }
}

// One unary RPC: ParseRequest, then CommandParser::Parse, as
// JamBalancerServiceImpl::Serve does.
template <typename Request>
void FuzzUnary(absl::string_view bytes, absl::string_view rpc) {
  Request request;
  const absl::Status parsed = ParseRequest(BytesOf(bytes), &request);
  Request direct;
  const bool protobuf_parses =
      direct.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  FUZZ_REQUIRE(parsed.ok() == protobuf_parses);
  if (!parsed.ok()) {
    CheckRefusal(parsed);
    return;
  }
  auto command = Parser().Parse(request);
  if (!command.ok()) {
    CheckRefusal(command.status());
    if (rpc == "Batch") {
      FUZZ_REQUIRE(absl::StartsWith(command.status().message(), "operations"));
    }
    return;
  }
  CheckAccepted(request, *command);
  ApplyFresh(*command);
}

// A Sync stream: each message parsed as it arrives, then all together, as
// JamBalancerServiceImpl::SyncReactor does.
void FuzzSync(absl::string_view bytes) {
  std::vector<v1::SyncRequest> storage;
  std::vector<absl::string_view> chunks;
  while (!bytes.empty()) {
    if (bytes.size() < 2) {
      chunks.push_back(bytes);
      break;
    }
    const size_t length = static_cast<uint8_t>(bytes[0]) |
                          static_cast<size_t>(static_cast<uint8_t>(bytes[1]))
                              << 8;
    bytes.remove_prefix(2);
    chunks.push_back(bytes.substr(0, length));
    bytes.remove_prefix(chunks.back().size());
  }
  storage.resize(chunks.size());
  std::vector<const v1::SyncRequest*> messages;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const absl::Status parsed = ParseRequest(BytesOf(chunks[i]), &storage[i]);
    if (!parsed.ok()) {
      CheckRefusal(parsed);  // The reactor answers it, naming messages[i].
      return;
    }
    messages.push_back(&storage[i]);
  }
  absl::StatusOr<SyncCommand> command = Parser().Parse(messages);
  if (!command.ok()) {
    CheckRefusal(command.status());
    FUZZ_REQUIRE(absl::StartsWith(command.status().message(), "messages[") ||
                 absl::StartsWith(command.status().message(), "a Sync stream"));
    return;
  }
  CheckAccepted(messages, *command);
  ApplyFresh(*command);
}

}  // namespace
}  // namespace jambalancer

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs each string with invalid UTF-8; ParseRequest reports it.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jambalancer;  // NOLINT(build/namespaces)
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  switch (static_cast<Rpc>(data[0] % kRpcCount)) {
#define JAM_BALANCER_FUZZ_UNARY(Method, field)     \
  case Rpc::k##Method:                             \
    FuzzUnary<v1::Method##Request>(rest, #Method); \
    break;
    JAM_BALANCER_RPCS(JAM_BALANCER_FUZZ_UNARY)
#undef JAM_BALANCER_FUZZ_UNARY
    case Rpc::kSync:
      FuzzSync(rest);
      break;
  }
  return 0;
}
