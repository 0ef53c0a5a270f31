#ifndef JAM_BALANCER_BENCH_LOAD_SETUP_H_
#define JAM_BALANCER_BENCH_LOAD_SETUP_H_

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load/config.h"

namespace jambalancer {
namespace bench {

// What comes before the load: the channels, and the state of the server
// that the workloads count on (its max_users, the prepopulated jams).

// The max_users assumed of a server that does not say (the empty server).
inline constexpr uint32_t kDefaultMaxUsers = 7;

// The id of jam `i` (0 to --prepopulate - 1) of the prepopulated set.
std::string PrepopulatedJamId(int i);

// The id of front end `f` (0 to --frontends - 1) of the arrivals_fe and
// sync workloads.
std::string FrontendId(int f);

// Opens `channels` channels to `target`, each with its own subchannel, hence
// its own TCP connection, and waits up to 5 s for each to connect. An error
// naming the target if one does not. `credentials` null: plaintext.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ConnectChannels(
    const std::string& target, int channels,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

// Reads the server's max_users over `channel` (kDefaultMaxUsers if it says
// 0), then fills the config.prepopulate jams: jam i gets 1 + i % max_users
// members, by Batch calls of Refresh. With config.pools, the max_users is
// the first pool's, and the jams are filled in every pool (the same ids in
// each); a pool the server lacks is an error (NOT_FOUND). Says how long that
// took on stderr if config.progress and there were jams to fill. Returns
// max_users, or an error naming the call that failed.
absl::StatusOr<uint32_t> SetUpServer(
    const std::shared_ptr<grpc::Channel>& channel, const Config& config);

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_SETUP_H_
