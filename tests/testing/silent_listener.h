#ifndef JAM_BALANCER_TESTS_TESTING_SILENT_LISTENER_H_
#define JAM_BALANCER_TESTS_TESTING_SILENT_LISTENER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace jambalancer::test {

// A TCP port on 127.0.0.1 that accepts connections (the kernel completes
// them) but never speaks: a gRPC call to it waits until its deadline.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // The OS picks.
    socklen_t size = sizeof(address);
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    if (fd_ >= 0 && bind(fd_, generic, size) == 0 && listen(fd_, 16) == 0 &&
        getsockname(fd_, generic, &size) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~SilentListener() {
    if (fd_ >= 0) close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  int port() const { return port_; }  // 0 if it could not listen.

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace jambalancer::test

#endif  // JAM_BALANCER_TESTS_TESTING_SILENT_LISTENER_H_
