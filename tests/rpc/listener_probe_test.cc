#include "server/rpc/listener_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;

// A TCP socket listening on a free loopback port, which accepts only when
// asked: a listener that stopped accepting, like gRPC 1.51's after EMFILE.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(fd_, 16);
  }
  ~Listener() { close(fd_); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  // Accepts one connection and closes it (as a TLS server closes on a
  // preface it cannot read).
  void AcceptOne() {
    const int client = accept(fd_, nullptr, nullptr);
    if (client >= 0) close(client);
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(ListenerProbeTest, OkWhenTheServerAcceptsAndAnswers) {
  Listener listener;
  std::thread server([&] { listener.AcceptOne(); });
  EXPECT_TRUE(
      ListenerProbe::ProbeOnce(listener.address(), absl::Seconds(5)).ok());
  server.join();
}

TEST(ListenerProbeTest, FailsWhenConnectionsWaitInTheBacklog) {
  Listener listener;  // Never accepts.
  const absl::Status status =
      ListenerProbe::ProbeOnce(listener.address(), absl::Milliseconds(200));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("not accepting connections"));
}

TEST(ListenerProbeTest, FailsWhenNothingListens) {
  int port = 0;
  {
    Listener gone;
    port = std::stoi(gone.address().substr(gone.address().rfind(':') + 1));
  }
  const absl::Status status = ListenerProbe::ProbeOnce(
      absl::StrCat("127.0.0.1:", port), absl::Milliseconds(200));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

TEST(ListenerProbeTest, UnhealthyAfterFailuresInARow) {
  Listener listener;  // Never accepts.
  ListenerProbeOptions options;
  options.address = listener.address();
  options.interval = absl::Milliseconds(20);
  options.timeout = absl::Milliseconds(50);
  options.failures_to_unhealthy = 3;
  absl::StatusOr<std::unique_ptr<ListenerProbe>> probe =
      ListenerProbe::Start(options);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_TRUE((*probe)->healthy());  // One failure is not enough.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((*probe)->healthy() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_FALSE((*probe)->healthy());
  EXPECT_THAT((*probe)->Check().message(),
              HasSubstr("listener probes failed in a row"));
}

TEST(ListenerProbeTest, WildcardAddressesAreProbedOnLoopback) {
  Listener listener;
  const std::string port =
      listener.address().substr(listener.address().rfind(':'));
  std::thread server([&] { listener.AcceptOne(); });
  EXPECT_TRUE(
      ListenerProbe::ProbeOnce(absl::StrCat("0.0.0.0", port), absl::Seconds(5))
          .ok());
  server.join();
}

TEST(ListenerProbeTest, RejectsBadOptions) {
  ListenerProbeOptions options;
  options.address = "localhost";
  EXPECT_EQ(ListenerProbe::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.address = "127.0.0.1:1";
  options.failures_to_unhealthy = 0;
  EXPECT_EQ(ListenerProbe::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace jambalancer
