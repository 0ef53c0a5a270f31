#include "server/rpc/listener_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace jambalancer {
namespace {

// What a client sends first on an HTTP/2 connection: the magic string and
// an empty SETTINGS frame.
constexpr char kPreface[] =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
constexpr size_t kPrefaceBytes = sizeof(kPreface) - 1;

// A TLS ClientHello, made by OpenSSL once: a client's first flight.
const std::string& ClientHello() {
  static const std::string* const hello = [] {
    auto* bytes = new std::string;
    SSL_CTX* context = SSL_CTX_new(TLS_client_method());
    if (context == nullptr) return bytes;
    SSL* ssl = SSL_new(context);
    if (ssl != nullptr) {
      // The SSL owns both memory BIOs; it writes its hello into `out` and
      // waits for an answer that never comes.
      BIO* in = BIO_new(BIO_s_mem());
      BIO* out = BIO_new(BIO_s_mem());
      SSL_set_bio(ssl, in, out);
      SSL_connect(ssl);
      char* data = nullptr;
      const long size = BIO_get_mem_data(out, &data);
      if (size > 0) bytes->assign(data, static_cast<size_t>(size));
      SSL_free(ssl);
    }
    SSL_CTX_free(context);
    return bytes;
  }();
  return *hello;
}

struct HostPort {
  std::string host;
  std::string port;
};

absl::StatusOr<HostPort> Split(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listener probe: no port in \"", address, "\""));
  }
  HostPort result{std::string(address.substr(0, colon)),
                  std::string(address.substr(colon + 1))};
  if (result.host.size() >= 2 && result.host.front() == '[' &&
      result.host.back() == ']') {
    result.host = result.host.substr(1, result.host.size() - 2);
  }
  // A wildcard listener is reachable on loopback.
  if (result.host.empty() || result.host == "0.0.0.0") {
    result.host = "127.0.0.1";
  } else if (result.host == "::") {
    result.host = "::1";
  }
  return result;
}

// Closes the descriptor when it goes out of scope.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` on `fd` until `deadline`; returns the revents, 0 on
// timeout, -1 (errno set) on error.
int WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return 0;
    pollfd entry{fd, events, 0};
    const int ready = poll(&entry, 1, static_cast<int>(ms));
    if (ready > 0) return entry.revents;
    if (ready == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

absl::Status Failed(absl::string_view what, absl::string_view address) {
  return absl::UnavailableError(absl::StrCat(
      "listener probe of ", address, ": ", what, ": ", std::strerror(errno)));
}

}  // namespace

ListenerProbeOptions ListenerProbeOptionsFor(absl::string_view listen,
                                             int bound_port) {
  ListenerProbeOptions options;
  const size_t colon = listen.rfind(':');
  const absl::string_view host =
      colon == absl::string_view::npos ? listen : listen.substr(0, colon);
  options.address = absl::StrCat(host, ":", bound_port);
  return options;
}

absl::Status ListenerProbe::ProbeOnce(const std::string& address,
                                      absl::Duration timeout, bool tls) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<HostPort> target = Split(address);
  if (!target.ok()) return target.status();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(target->host.c_str(), target->port.c_str(),
                                    &hints, &found);
      error != 0) {
    return absl::UnavailableError(
        absl::StrCat("listener probe of ", address, ": ", gai_strerror(error)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found,
                                                           &freeaddrinfo);
  // Out of descriptors (EMFILE) fails here: the listener cannot accept
  // either then.
  Socket socket_fd(socket(found->ai_family,
                          found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          found->ai_protocol));
  const int fd = socket_fd.fd();
  if (fd < 0) return Failed("socket", address);
  if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return Failed("connect", address);
    const int ready = WaitFor(fd, POLLOUT, deadline);
    if (ready < 0) return Failed("poll", address);
    if (ready == 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "listener probe of ", address, ": connect timed out after ",
          absl::FormatDuration(timeout)));
    }
    int error = 0;
    socklen_t length = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      errno = error;
      return Failed("connect", address);
    }
  }
  // The kernel completes the TCP handshake even when the server never
  // accepts: only an answer (or a close) from the server tells.
  const absl::string_view greeting =
      tls ? absl::string_view(ClientHello())
          : absl::string_view(kPreface, kPrefaceBytes);
  if (greeting.empty()) {
    return absl::InternalError(
        absl::StrCat("listener probe of ", address, ": no TLS ClientHello"));
  }
  if (send(fd, greeting.data(), greeting.size(), MSG_NOSIGNAL) < 0 &&
      errno != EAGAIN) {
    return Failed("send", address);
  }
  const int ready = WaitFor(fd, POLLIN, deadline);
  if (ready < 0) return Failed("poll", address);
  if (ready == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("listener probe of ", address,
                     ": connected, but no "
                     "answer within ",
                     absl::FormatDuration(timeout),
                     " (the server is not accepting connections)"));
  }
  return absl::OkStatus();  // Bytes, EOF or a reset: the server had it.
}

absl::StatusOr<std::unique_ptr<ListenerProbe>> ListenerProbe::Start(
    ListenerProbeOptions options) {
  if (absl::StatusOr<HostPort> target = Split(options.address); !target.ok()) {
    return target.status();
  }
  if (options.interval <= absl::ZeroDuration() ||
      options.timeout <= absl::ZeroDuration() ||
      options.failures_to_unhealthy < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listener probe: interval and timeout must be positive and "
        "failures_to_unhealthy at least 1; got ",
        absl::FormatDuration(options.interval), ", ",
        absl::FormatDuration(options.timeout), " and ",
        options.failures_to_unhealthy));
  }
  return std::unique_ptr<ListenerProbe>(new ListenerProbe(std::move(options)));
}

ListenerProbe::ListenerProbe(ListenerProbeOptions options)
    : options_(std::move(options)), thread_([this] { Run(); }) {}

ListenerProbe::~ListenerProbe() {
  stop_.Notify();
  thread_.join();
}

absl::Status ListenerProbe::Check() const {
  if (healthy()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return absl::UnavailableError(
      absl::StrCat(failures_in_a_row_,
                   " listener probes failed in a row; "
                   "last: ",
                   last_failure_.message()));
}

void ListenerProbe::Run() {
  do {
    const absl::Status status =
        ProbeOnce(options_.address, options_.timeout, options_.tls);
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      failures_in_a_row_ = 0;
      healthy_.store(true);
    } else {
      ++failures_in_a_row_;
      last_failure_ = status;
      if (failures_in_a_row_ >= options_.failures_to_unhealthy) {
        healthy_.store(false);
      }
    }
  } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
}

}  // namespace jambalancer
