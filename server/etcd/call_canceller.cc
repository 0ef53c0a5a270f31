#include "server/etcd/call_canceller.h"

#include <grpcpp/client_context.h>

namespace jambalancer {

void CallCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  // TryCancel is thread-safe; the context stays alive while bound (Unbind
  // takes this lock before the call's owner destroys it).
  if (context_ != nullptr) context_->TryCancel();
}

bool CallCanceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool CallCanceller::WaitCancelled(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), timeout);
  return cancelled_;
}

bool CallCanceller::Bind(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  context_ = context;
  return true;
}

void CallCanceller::Unbind() {
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

}  // namespace jambalancer
