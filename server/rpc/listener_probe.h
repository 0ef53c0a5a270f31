#ifndef JAM_BALANCER_SERVER_RPC_LISTENER_PROBE_H_
#define JAM_BALANCER_SERVER_RPC_LISTENER_PROBE_H_

// Whether the gRPC server still accepts connections on its port. gRPC 1.51
// stops accepting for good after one failed accept4 (EMFILE when the
// process is out of descriptors; CVE-2023-4785, fixed in 1.58): the process
// lives on, its existing connections work, but no new client gets in. Only
// a restart helps, so the probe's verdict is meant for a liveness check
// (health NOT_SERVING on a separate port, which an orchestrator watches).
//
// Every `interval` the probe opens a fresh TCP connection to the port,
// sends the HTTP/2 client preface (or, to a TLS port, a TLS ClientHello)
// and waits up to `timeout` for the server to answer anything or to close
// the connection: either means the server accepted it. A connection left
// in the kernel's backlog gets neither. No credentials are needed: a TLS
// port answers the ClientHello with its ServerHello, also when it asks for
// client certificates; the probe then hangs up.
//
// Thread-safe: healthy() and Check() may be called from any thread.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace jambalancer {

struct ListenerProbeOptions {
  // The server's listening address as in --listen (host:port, [v6]:port);
  // a wildcard host (0.0.0.0, [::] or empty) is probed on loopback.
  std::string address;
  absl::Duration interval = absl::Seconds(5);
  // Per probe: connecting, and waiting for the server's answer.
  absl::Duration timeout = absl::Seconds(2);
  // Failed probes in a row after which healthy() turns false (one success
  // turns it true again).
  int failures_to_unhealthy = 3;
  // The port serves TLS: greet it with a ClientHello. (The HTTP/2 preface
  // works too, but gRPC logs an error for each such failed handshake.)
  bool tls = false;
};

// Options probing a server started with `listen` (host:port as in
// --listen, port possibly 0) that bound `bound_port`; other fields default.
ListenerProbeOptions ListenerProbeOptionsFor(absl::string_view listen,
                                             int bound_port);

class ListenerProbe {
 public:
  // Starts probing on a thread of its own (the first probe at once).
  // Returns InvalidArgumentError for an address without a port or
  // non-positive times or counts.
  static absl::StatusOr<std::unique_ptr<ListenerProbe>> Start(
      ListenerProbeOptions options);

  // One probe of `address` (host:port as in ListenerProbeOptions) on the
  // calling thread: OK if the server accepted within `timeout`, else
  // UnavailableError (or DeadlineExceededError) saying what failed.
  static absl::Status ProbeOnce(const std::string& address,
                                absl::Duration timeout, bool tls = false);

  ListenerProbe(const ListenerProbe&) = delete;
  ListenerProbe& operator=(const ListenerProbe&) = delete;
  // Stops the thread (waits for a probe in flight, at most `timeout`).
  ~ListenerProbe();

  // False once failures_to_unhealthy probes in a row failed.
  bool healthy() const { return healthy_.load(); }
  // OK while healthy(); otherwise UnavailableError with the failures in a
  // row and the last one's message.
  absl::Status Check() const;

 private:
  explicit ListenerProbe(ListenerProbeOptions options);
  void Run();

  const ListenerProbeOptions options_;
  std::atomic<bool> healthy_{true};
  absl::Notification stop_;
  mutable absl::Mutex mu_;
  int failures_in_a_row_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // Last: starts after the members above exist.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_LISTENER_PROBE_H_
