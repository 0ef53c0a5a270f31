// Writes the fuzz targets' seed corpora: make_fuzz_corpus <dir> fills
// <dir>/request_fuzzer (one file per request: the RPC's index in
// rpc_list.h, then the request's bytes; Sync streams as 2-byte
// little-endian lengths and messages) and <dir>/pool_fuzzer (operation
// streams: deterministic pseudo-random bytes, which FuzzedDataProvider
// decodes into operations). The output is committed under
// tests/fuzz/corpus; run again after changing an input format.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jambalancer/v1/jam_balancer.pb.h"
#include "jambalancer/v1/rpc_list.h"

namespace jambalancer {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& dir, const std::string& name,
           const std::string& bytes) {
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string Request(Rpc rpc, const google::protobuf::Message& message) {
  return std::string(1, static_cast<char>(rpc)) + message.SerializeAsString();
}

void WriteRequests(const fs::path& dir) {
  fs::create_directories(dir);
  v1::CurrentJamRequest current;
  Write(dir, "current_jam_empty", Request(Rpc::kCurrentJam, current));
  current.set_user_id("user-1");
  current.set_reservation_ttl_ms(5000);
  current.set_frontend_id("fe-a");
  Write(dir, "current_jam_reserve", Request(Rpc::kCurrentJam, current));

  v1::RefreshRequest refresh;
  refresh.set_jam_id("jam-\xc3\xa9");
  for (const char* user : {"u1", "u2", "u2", "\xf0\x9f\x8e\xb8"}) {
    refresh.add_user_ids(user);
  }
  Write(dir, "refresh", Request(Rpc::kRefresh, refresh));
  refresh.set_frontend_id("fe-b");
  refresh.add_user_ids(std::string(128, 'x'));
  Write(dir, "refresh_frontend", Request(Rpc::kRefresh, refresh));
  refresh.add_user_ids("bad\x01");
  Write(dir, "refresh_control_char", Request(Rpc::kRefresh, refresh));

  v1::RemoveUserRequest remove;
  remove.set_jam_id("j");
  remove.set_user_id("u");
  remove.set_hold_seat_ms(1000);
  Write(dir, "remove_user", Request(Rpc::kRemoveUser, remove));

  v1::HasCapacityRequest has;
  has.set_jam_id("j");
  Write(dir, "has_capacity", Request(Rpc::kHasCapacity, has));

  v1::AddUserRequest add;
  add.set_jam_id("j");
  add.set_user_id("u");
  add.set_frontend_id("fe-c");
  Write(dir, "add_user", Request(Rpc::kAddUser, add));
  // The same bytes with the user id made invalid UTF-8.
  std::string bad_utf8 = Request(Rpc::kAddUser, add);
  bad_utf8[bad_utf8.find('u')] = '\xc0';
  Write(dir, "add_user_bad_utf8", bad_utf8);

  Write(dir, "get_stats", Request(Rpc::kGetStats, v1::GetStatsRequest()));
  v1::ListJamsRequest list;
  list.set_page_size(5000);
  list.set_page_token("amFtcy92MS9hZnRlci9qYW0tMQ");  // "jams/v1/after/jam-1"
  Write(dir, "list_jams", Request(Rpc::kListJams, list));

  v1::BatchRequest batch;
  *batch.add_operations()->mutable_current_jam() = current;
  *batch.add_operations()->mutable_refresh() = refresh;
  *batch.add_operations()->mutable_add_user() = add;
  *batch.add_operations()->mutable_remove_user() = remove;
  *batch.add_operations()->mutable_has_capacity() = has;
  batch.add_operations()->mutable_get_stats();
  Write(dir, "batch", Request(Rpc::kBatch, batch));
  batch.add_operations();  // No operation set.
  Write(dir, "batch_unset", Request(Rpc::kBatch, batch));

  v1::KeepAliveRequest keep;
  keep.set_frontend_id("fe-a");
  Write(dir, "keep_alive", Request(Rpc::kKeepAlive, keep));
  v1::EndSessionRequest end;
  end.set_frontend_id("fe-a");
  Write(dir, "end_session", Request(Rpc::kEndSession, end));
  Write(dir, "list_sessions",
        Request(Rpc::kListSessions, v1::ListSessionsRequest()));
  v1::GetJamRequest get;
  get.set_jam_id("j");
  Write(dir, "get_jam", Request(Rpc::kGetJam, get));

  // Sync: two messages, the second continuing the first's front end.
  std::string sync(1, static_cast<char>(Rpc::kSync));
  for (int m = 0; m < 2; ++m) {
    v1::SyncRequest message;
    if (m == 0) {
      message.set_frontend_id("fe-a");
      message.set_lease_ttl_ms(3000);
    }
    v1::JamMembers* jam = message.add_jams();
    jam->set_jam_id(absl::StrCat("j", m));
    jam->add_user_ids("u1");
    jam->add_user_ids(absl::StrCat("u", m + 2));
    const std::string bytes = message.SerializeAsString();
    sync.push_back(static_cast<char>(bytes.size() & 0xff));
    sync.push_back(static_cast<char>(bytes.size() >> 8));
    sync += bytes;
  }
  Write(dir, "sync", sync);
}

void WriteOperationStreams(const fs::path& dir) {
  fs::create_directories(dir);
  std::mt19937 random(20261201);
  for (int i = 0; i < 16; ++i) {
    std::string bytes(64 << (i % 6), '\0');
    for (char& byte : bytes) byte = static_cast<char>(random());
    Write(dir, absl::StrCat("stream_", i), bytes);
  }
}

}  // namespace
}  // namespace jambalancer

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir(argv[1]);
  jambalancer::WriteRequests(dir / "request_fuzzer");
  jambalancer::WriteOperationStreams(dir / "pool_fuzzer");
  return 0;
}
