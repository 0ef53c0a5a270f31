#ifndef JAM_BALANCER_TESTS_TESTING_SETTABLE_GATE_H_
#define JAM_BALANCER_TESTS_TESTING_SETTABLE_GATE_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/rpc/serving_gate.h"

namespace jambalancer::test {

// A gate whose answers the test sets, standing in for a pool's etcd
// election (server/ha, which has tests of its own against real etcd
// members). Thread-safe.
class SettableGate : public ServingGate {
 public:
  bool MayServe(absl::Time) const override {
    absl::MutexLock lock(&mu_);
    return serving_;
  }
  int64_t Epoch() const override {
    absl::MutexLock lock(&mu_);
    return epoch_;
  }
  std::string LeaderAddress() const override {
    absl::MutexLock lock(&mu_);
    return leader_;
  }
  void Set(bool serving, int64_t epoch, std::string leader) {
    absl::MutexLock lock(&mu_);
    serving_ = serving;
    epoch_ = epoch;
    leader_ = std::move(leader);
  }

 private:
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::string leader_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jambalancer::test

#endif  // JAM_BALANCER_TESTS_TESTING_SETTABLE_GATE_H_
