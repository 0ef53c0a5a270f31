#ifndef JAM_BALANCER_SERVER_ETCD_CALL_CANCELLER_H_
#define JAM_BALANCER_SERVER_ETCD_CALL_CANCELLER_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace jambalancer {

// Ends a blocking EtcdClient call (Campaign, Observe) from another thread,
// and the waits between such calls in a worker's retry loop.
//
// Cancellation is sticky: once Cancel() has run, the call bound now ends
// with CANCELLED, and every call started with this canceller afterwards ends
// at once. One call at a time may be bound to a canceller.
//
// Thread-safe. The canceller must outlive the calls bound to it.
class CallCanceller {
 public:
  CallCanceller() = default;
  CallCanceller(const CallCanceller&) = delete;
  CallCanceller& operator=(const CallCanceller&) = delete;

  void Cancel();
  bool cancelled() const;

  // Waits until cancelled or `timeout` has passed; true if cancelled. For a
  // retry loop's backoff that must not delay its owner's shutdown.
  bool WaitCancelled(absl::Duration timeout) const;

 private:
  friend class EtcdClient;

  // Binds the context of a call about to start. False, binding nothing, if
  // already cancelled. REQUIRES: no other call bound.
  bool Bind(grpc::ClientContext* context);
  // Unbinds it, before the context is destroyed.
  void Unbind();

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_ETCD_CALL_CANCELLER_H_
