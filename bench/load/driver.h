#ifndef JAM_BALANCER_BENCH_LOAD_DRIVER_H_
#define JAM_BALANCER_BENCH_LOAD_DRIVER_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bench/load/config.h"
#include "bench/load/recorder.h"
#include "bench/load/workload.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {
namespace bench {

// Runs a workload (bench/load/workload.h) against a server, on the gRPC
// callback client API, and records every call (bench/load/recorder.h).
//
// Calls go out over the channels given, `config.concurrency` of them in
// flight in total, slot i on channel i % channels. A slot is one simulated
// client: it runs its workload's calls one after the other, so a slot never
// has more than one call in flight.
//
//   Closed loop (config.rate = 0): every slot starts its next call as soon
//   as the previous one answered. Latency is the time from a call's start to
//   its answer. This finds the peak rate.
//
//   Open loop (config.rate = R): a scheduler starts calls at fixed times, R
//   per second (evenly spaced), whether or not earlier calls have answered,
//   each on a free slot. Latency counts from the call's scheduled time, so a
//   call that had to wait for a free slot (all slots busy: the server is not
//   keeping up) is charged that wait too (no coordinated omission). Starts
//   that found no free slot are counted as late starts. This measures
//   latency at a given load, e.g. at half of the peak.
//
// Phases: config.warmup, then the measured window of config.duration, then
// a drain of the calls still in flight (bounded by config.deadline). Only
// calls that answer inside the window count in the rates and the latency
// histogram; errors count in every phase. With config.progress, a progress
// line goes to stderr every second.
class Driver {
 public:
  // `channels`: connected (bench/load/setup.h), at least one. `max_users`:
  // the server's.
  Driver(const Config& config,
         const std::vector<std::shared_ptr<grpc::Channel>>& channels,
         uint32_t max_users);
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Warm-up, measured window, drain. Call once. False if calls were still
  // in flight long after their deadline: they point into the Driver, so it
  // must not be destroyed; the process should end at once.
  bool Run();

  // Sums of what the calls recorded so far. Any thread, any time.
  Totals Collect() { return recorder_.Collect(); }
  // The length of the measured window, in seconds. After Run.
  double WindowSeconds() const;
  // Open loop: calls that were due when no slot was free.
  uint64_t late_starts() const { return late_starts_.load(); }
  // The first call that failed or answered nonsense, as "CODE: message";
  // empty if none did.
  std::string FirstError();

  // Counts the calls answered OK that start in [begin, end) in probe window
  // `window` (0 to kProbeWindows - 1) too. Set it before `begin`; any thread.
  void SetProbe(int window, std::chrono::steady_clock::time_point begin,
                std::chrono::steady_clock::time_point end);

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kWarmup, kMeasure, kDrain };

  // Starts `slot`'s next call, due at `start`. The caller has counted it in
  // in_flight_.
  void Start(Slot& slot, Clock::time_point start);
  // Records a call that completed and starts the slot's next one, or parks
  // or frees the slot. On a gRPC thread.
  void Done(Slot& slot, const grpc::Status& status, const Outcome& outcome);
  void NoteError(std::string message);
  // Closed loop: restarts the slots whose last call failed.
  void RestartParked();
  // Open loop: starts a call every 1/rate seconds from `begin` until `end`,
  // each on a free slot (waiting for one if all are busy).
  void Schedule(Clock::time_point begin, Clock::time_point end);
  void PrintProgress(const Totals& totals, Clock::duration elapsed,
                     uint64_t answered_before, Clock::duration since);

  const Config config_;
  std::vector<std::unique_ptr<v1::JamBalancerService::Stub>> stubs_;
  Workload workload_;
  std::vector<Slot> slots_;
  Recorder recorder_;
  std::atomic<Phase> phase_{Phase::kWarmup};
  Clock::time_point measure_begin_;
  Clock::time_point measure_end_;
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> late_starts_{0};

  std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  std::vector<Slot*> free_slots_;  // open loop: slots with no call
  std::vector<Slot*> parked_;      // closed loop: slots whose call failed
  bool stop_scheduler_ = false;    // guarded by slots_mu_

  // Probe windows as [begin, end) in steady-clock nanoseconds; empty
  // (0, 0) until set.
  std::array<std::atomic<int64_t>, kProbeWindows> probe_begin_{};
  std::array<std::atomic<int64_t>, kProbeWindows> probe_end_{};

  std::atomic<bool> have_error_{false};
  std::mutex first_error_mu_;
  std::string first_error_;
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_DRIVER_H_
