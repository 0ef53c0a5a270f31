#include "bench/load/driver.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/recorder.h"
#include "bench/load/setup.h"
#include "bench/load/workload.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {
namespace bench {

Driver::Driver(const Config& config,
               const std::vector<std::shared_ptr<grpc::Channel>>& channels,
               uint32_t max_users)
    : config_(config),
      workload_(
          config, max_users,
          [this](Slot& slot, const grpc::Status& status,
                 const Outcome& outcome) { Done(slot, status, outcome); }) {
  for (const std::shared_ptr<grpc::Channel>& channel : channels) {
    stubs_.push_back(v1::JamBalancerService::NewStub(channel));
  }
}

bool Driver::Run() {
  slots_.resize(config_.concurrency);
  for (int i = 0; i < config_.concurrency; ++i) {
    slots_[i].index = i;
    const int channel = i % static_cast<int>(stubs_.size());
    slots_[i].stub = stubs_[channel].get();
    if (HasFrontEnds(config_.workload)) {
      slots_[i].frontend_id = FrontendId(channel % config_.frontends);
    }
    if (!config_.pools.empty()) {
      slots_[i].pool = config_.pools[i % config_.pools.size()];
    }
  }
  const Clock::time_point begin = Clock::now();
  const Clock::time_point measure_begin =
      begin + absl::ToChronoNanoseconds(config_.warmup);
  const Clock::time_point measure_end =
      measure_begin + absl::ToChronoNanoseconds(config_.duration);

  std::thread scheduler;
  if (config_.rate > 0) {
    for (Slot& slot : slots_) free_slots_.push_back(&slot);
    scheduler = std::thread(
        [this, begin, measure_end] { Schedule(begin, measure_end); });
  } else {
    for (Slot& slot : slots_) {
      in_flight_.fetch_add(1);
      Start(slot, Clock::now());
    }
  }

  // Every 10 ms: restart parked slots (closed loop); every second: the
  // progress line; at the phase boundaries: switch phases.
  Clock::time_point next_progress = begin + std::chrono::seconds(1);
  uint64_t answered_before = 0;
  Clock::time_point progress_before = begin;
  while (true) {
    const Clock::time_point now = Clock::now();
    if (now >= measure_end) break;
    if (phase_.load() == Phase::kWarmup && now >= measure_begin) {
      measure_begin_ = now;
      phase_.store(Phase::kMeasure);
    }
    if (config_.rate == 0) RestartParked();
    if (now >= next_progress) {
      const Totals totals = recorder_.Collect();
      PrintProgress(totals, now - begin, answered_before,
                    now - progress_before);
      answered_before = totals.answered;
      progress_before = now;
      next_progress += std::chrono::seconds(1);
    }
    std::this_thread::sleep_until(std::min(
        {now + std::chrono::milliseconds(10), measure_end,
         phase_.load() == Phase::kWarmup ? measure_begin : measure_end}));
  }
  if (phase_.load() == Phase::kWarmup) {  // a zero warm-up and duration
    measure_begin_ = Clock::now();
  }
  phase_.store(Phase::kDrain);
  measure_end_ = Clock::now();
  if (scheduler.joinable()) {
    {
      std::lock_guard<std::mutex> lock(slots_mu_);
      stop_scheduler_ = true;
    }
    slots_cv_.notify_all();
    scheduler.join();
  }
  // Every call has a deadline, so the drain ends; give it a margin.
  const Clock::time_point give_up =
      Clock::now() + absl::ToChronoNanoseconds(config_.deadline) +
      std::chrono::seconds(5);
  while (in_flight_.load() > 0) {
    if (Clock::now() >= give_up) {
      std::cerr << "jam-bench: " << in_flight_.load()
                << " calls still in flight well past their deadline\n";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

double Driver::WindowSeconds() const {
  return std::chrono::duration<double>(measure_end_ - measure_begin_).count();
}

std::string Driver::FirstError() {
  std::lock_guard<std::mutex> lock(first_error_mu_);
  return first_error_;
}

void Driver::Start(Slot& slot, Clock::time_point start) {
  slot.start = start;
  slot.context = std::make_unique<grpc::ClientContext>();
  slot.context->set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoNanoseconds(config_.deadline));
  workload_.Start(slot);
}

void Driver::Done(Slot& slot, const grpc::Status& status,
                  const Outcome& outcome) {
  const Clock::time_point now = Clock::now();
  Shard& shard = recorder_.Local();
  Bump(shard.answered);
  const Phase phase = phase_.load(std::memory_order_relaxed);
  if (!status.ok()) {
    Bump(shard.errors[std::min<int>(status.error_code(), kStatusCodes - 1)]);
    NoteError(absl::StrCat(StatusCodeName(status.error_code()), ": ",
                           status.error_message()));
  } else if (outcome.bad_response) {
    Bump(shard.bad_responses);
    NoteError("BAD_RESPONSE: an answer that does not fit the request");
  } else if (phase == Phase::kMeasure) {
    const uint64_t nanos = std::max<int64_t>(
        0,
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - slot.start)
            .count());
    shard.RecordCall(nanos, outcome.ops, outcome.arrivals, outcome.redirects);
    const int64_t started = slot.start.time_since_epoch().count();
    for (int w = 0; w < kProbeWindows; ++w) {
      if (started >= probe_begin_[w].load(std::memory_order_relaxed) &&
          started < probe_end_[w].load(std::memory_order_relaxed)) {
        shard.RecordProbe(w, nanos);
      }
    }
  }
  const bool ok = status.ok() && !outcome.bad_response;
  if (!ok) slot.StartOver();
  if (config_.rate > 0) {
    {
      std::lock_guard<std::mutex> lock(slots_mu_);
      free_slots_.push_back(&slot);
    }
    slots_cv_.notify_one();
    in_flight_.fetch_sub(1);
  } else if (ok && phase != Phase::kDrain) {
    Start(slot, now);  // stays in flight
  } else {
    // A failed call may have failed at once: the next one starts from the
    // main loop, not recursively from here.
    if (phase != Phase::kDrain) {
      std::lock_guard<std::mutex> lock(slots_mu_);
      parked_.push_back(&slot);
    }
    in_flight_.fetch_sub(1);
  }
}

void Driver::SetProbe(int window, Clock::time_point begin,
                      Clock::time_point end) {
  // Begin first: meanwhile the window is empty (windows are set later in
  // time than they were), never wider than asked.
  probe_begin_[window].store(begin.time_since_epoch().count());
  probe_end_[window].store(end.time_since_epoch().count());
}

void Driver::NoteError(std::string message) {
  if (have_error_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(first_error_mu_);
  first_error_ = std::move(message);
}

void Driver::RestartParked() {
  std::vector<Slot*> parked;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    parked.swap(parked_);
  }
  for (Slot* slot : parked) {
    in_flight_.fetch_add(1);
    Start(*slot, Clock::now());
  }
}

void Driver::Schedule(Clock::time_point begin, Clock::time_point end) {
  const double interval_ns = 1e9 / config_.rate;
  for (uint64_t i = 0;; ++i) {
    const Clock::time_point due =
        begin + std::chrono::nanoseconds(
                    static_cast<int64_t>(std::llround(i * interval_ns)));
    if (due >= end) return;
    if (due > Clock::now()) std::this_thread::sleep_until(due);
    Slot* slot = nullptr;
    {
      std::unique_lock<std::mutex> lock(slots_mu_);
      if (free_slots_.empty()) late_starts_.fetch_add(1);
      slots_cv_.wait(
          lock, [this] { return stop_scheduler_ || !free_slots_.empty(); });
      if (stop_scheduler_) return;
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    in_flight_.fetch_add(1);
    Start(*slot, due);
  }
}

void Driver::PrintProgress(const Totals& totals, Clock::duration elapsed,
                           uint64_t answered_before, Clock::duration since) {
  if (!config_.progress) return;
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const double rate =
      (totals.answered - answered_before) /
      std::max(1e-9, std::chrono::duration<double>(since).count());
  std::string line =
      phase_.load() == Phase::kWarmup
          ? absl::StrFormat("jam-bench: warm-up %4.1fs", seconds)
          : absl::StrFormat(
                "jam-bench: %4.1fs/%.1fs", seconds,
                absl::ToDoubleSeconds(config_.warmup + config_.duration));
  absl::StrAppendFormat(&line, "  %8.0f calls/s  in flight %4d  errors %d",
                        rate, in_flight_.load(), totals.ErrorCount());
  if (phase_.load() == Phase::kMeasure && totals.calls > 0) {
    absl::StrAppendFormat(&line, "  p50 %.0fµs  p99 %.0fµs",
                          totals.PercentileMicros(0.5),
                          totals.PercentileMicros(0.99));
  }
  std::cerr << line << "\n";
}

}  // namespace bench
}  // namespace jambalancer
