#include "server/rpc/listener_probe.h"

#include <fcntl.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  // preface it cannot read); returns the first byte it got, or -1.
  int AcceptOne() {
    const int client = accept(fd_, nullptr, nullptr);
    if (client < 0) return -1;
    unsigned char first = 0;
    const bool got = recv(client, &first, 1, 0) == 1;
    close(client);
    return got ? first : -1;
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

// The failure the probe exists for, with the gRPC this is built with: a
// server out of descriptors fails accept4 with EMFILE once, and gRPC 1.51
// never accepts on that port again (CVE-2023-4785). If this fails because
// the probe succeeds, gRPC was fixed: update README.md ("Transport limits").
// Whether the test binary runs under AddressSanitizer (tools/sanitize.sh).
constexpr bool kUnderAsan =
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

TEST(ListenerProbeTest, DetectsAGrpcListenerStoppedByEmfile) {
  // gRPC 1.51's own EMFILE path then releases a security connector whose
  // memory the sanitizers see as gone (a report inside libgrpc, in about
  // half the runs): the bug this probe exists for, not ours to catch there.
  // The plain build runs it.
  if (kUnderAsan) GTEST_SKIP() << "gRPC's EMFILE path trips the sanitizers";
  int port = 0;
  // A server needs a service; this one answers UNIMPLEMENTED.
  grpc::CallbackGenericService service;
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&service);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  ASSERT_TRUE(ListenerProbe::ProbeOnce(address, absl::Seconds(5)).ok());

  // 40 client sockets, then a soft limit that leaves no descriptor free:
  // gRPC's accept4 of their connections fails with EMFILE.
  std::vector<int> flood;
  for (int i = 0; i < 40; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    flood.push_back(fd);
  }
  // The lowest free descriptor: with the soft limit there, none is free.
  int lowest_free = 0;
  while (fcntl(lowest_free, F_GETFD) != -1) ++lowest_free;
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = lowest_free;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (const int fd : flood) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  absl::SleepFor(absl::Milliseconds(500));  // gRPC tries to accept.
  for (const int fd : flood) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  absl::SleepFor(absl::Milliseconds(500));

  const absl::Status status =
      ListenerProbe::ProbeOnce(address, absl::Milliseconds(500));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  server->Shutdown();
}

TEST(ListenerProbeTest, OptionsForAListenAddressTakeTheBoundPort) {
  EXPECT_EQ(ListenerProbeOptionsFor("0.0.0.0:0", 4242).address, "0.0.0.0:4242");
  EXPECT_EQ(ListenerProbeOptionsFor("[::]:50051", 50051).address, "[::]:50051");
  Listener listener;
  const int port =
      std::stoi(listener.address().substr(listener.address().rfind(':') + 1));
  std::thread server([&] { listener.AcceptOne(); });
  EXPECT_TRUE(
      ListenerProbe::ProbeOnce(
          ListenerProbeOptionsFor("0.0.0.0:0", port).address, absl::Seconds(5))
          .ok());
  server.join();
}

TEST(ListenerProbeTest, GreetsWithTheHttp2PrefaceOrATlsClientHello) {
  for (const bool tls : {false, true}) {
    Listener listener;
    int first = -1;
    std::thread server([&] { first = listener.AcceptOne(); });
    EXPECT_TRUE(
        ListenerProbe::ProbeOnce(listener.address(), absl::Seconds(5), tls)
            .ok());
    server.join();
    // 'P' of "PRI * HTTP/2.0", or a TLS handshake record (type 22).
    EXPECT_EQ(first, tls ? 0x16 : 'P') << "tls " << tls;
  }
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
