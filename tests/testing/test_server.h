#ifndef JAM_BALANCER_TESTS_TESTING_TEST_SERVER_H_
#define JAM_BALANCER_TESTS_TESTING_TEST_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/server_options.h"

namespace jambalancer::test {

// The server's defaults, except that it listens on 127.0.0.1 on a port the
// OS picks, serves no metrics (tests run side by side) and opens no resync
// window at start (tests of the window ask for one).
ServerOptions LoopbackOptions();

// Starts a real server; fails the test if it cannot.
std::unique_ptr<BalancerServer> StartServer(
    const ServerOptions& options = LoopbackOptions());

// "127.0.0.1:PORT" of `server`.
std::string TargetOf(const BalancerServer& server);

// A client of `server` on a channel of its own (its own TCP connection), so
// that clients in different threads do not share one connection.
std::unique_ptr<BalancerClient> NewClient(
    const BalancerServer& server, absl::Duration deadline = absl::Seconds(10));

}  // namespace jambalancer::test

#endif  // JAM_BALANCER_TESTS_TESTING_TEST_SERVER_H_
