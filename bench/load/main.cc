// jam-bench: a load generator for the jam balancer, or for anything serving
// the same service (bench/empty_server.cc, the limit), on the gRPC callback
// client API.
//
// Calls go out over --channels separate channels (separate TCP connections),
// `--concurrency` of them in flight in total, slot i on channel i % channels.
// A slot is one simulated client: it runs its workload's calls one after the
// other, so a slot never has more than one call in flight.
//
//   Closed loop (--rate=0, the default): every slot starts its next call as
//   soon as the previous one answered. Latency is the time from a call's
//   start to its answer. This finds the peak rate.
//
//   Open loop (--rate=R): a scheduler starts calls at fixed times, R per
//   second (evenly spaced), whether or not earlier calls have answered, each
//   on a free slot. Latency counts from the call's scheduled time, so a call
//   that had to wait for a free slot (all --concurrency slots busy: the
//   server is not keeping up) is charged that wait too (no coordinated
//   omission). Starts that found no free slot are reported as late_starts.
//   This measures latency at a given load, e.g. at half of the peak.
//
// Phases: the workload's set-up (--prepopulate), then --warmup, then the
// measured window of --duration, then a drain of the calls still in flight
// (bounded by --deadline). Only calls that answer inside the window count in
// the rates and the latency histogram; errors count in every phase.
//
// Workloads (one call = one RPC):
//   current_jam   CurrentJam without a user id (a read).
//   arrivals      the front-end protocol: CurrentJam with a fresh user id,
//                 then AddUser of that user to the answered jam; once a slot
//                 holds its share of --population, each arrival is followed
//                 by a RemoveUser of the slot's oldest user (a departure), so
//                 the population stays steady. Steady state: 3 calls per
//                 arrival.
//   refresh       Refresh of a random prepopulated jam with 1..max_users
//                 users.
//   has_capacity  HasCapacity of a random prepopulated jam.
//   batch         Batch calls of --batch_size operations of the arrivals
//                 life cycle: AddUser for the users answered by the slot's
//                 previous batch, RemoveUser departures, and CurrentJam for
//                 new users (about a third each in the steady state).
//                 Reports operations/s as well as calls/s.
//
// Prints the result on stdout (--format=text or json: calls, ops and
// arrivals counted in the window with their rates, latency percentiles in
// µs, `answered` = every call answered in any phase, errors by status code)
// and a progress line on stderr every second. Exit status: 0 if every call
// succeeded, 1 if any call failed or answered nonsense (the report lists the
// status codes), 2 on wrong usage.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "host:port of the server (or any gRPC target URI)");
ABSL_FLAG(std::string, workload, "current_jam",
          "current_jam, arrivals, refresh, has_capacity or batch");
ABSL_FLAG(int32_t, concurrency, 64,
          "calls in flight in total (closed loop); most calls in flight (open "
          "loop)");
ABSL_FLAG(int32_t, channels, 4, "separate channels (TCP connections)");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2),
          "time under load before the measured window");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "the measured window");
ABSL_FLAG(double, rate, 0,
          "open loop: calls started per second on a fixed schedule; 0 = closed "
          "loop");
ABSL_FLAG(int32_t, batch_size, 16, "batch: operations per Batch call");
ABSL_FLAG(int32_t, prepopulate, 0,
          "jams filled (by Batch of Refresh) before the warm-up: jam i gets "
          "1 + i % max_users members");
ABSL_FLAG(bool, prepopulate_only, false,
          "fill the --prepopulate jams, then exit without load");
ABSL_FLAG(int32_t, population, 1000,
          "arrivals, batch: users the workload keeps in jams, split over the "
          "slots; past that, every arrival comes with a departure");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(5), "deadline of each call");
ABSL_FLAG(std::string, format, "text", "report format: text or json");
ABSL_FLAG(bool, progress, true, "a progress line on stderr every second");

namespace jambalancer {
namespace {

using Clock = std::chrono::steady_clock;
using Stub = v1::JamBalancerService::Stub;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kStatusCodes = 17;  // OK .. UNAUTHENTICATED
constexpr int kPrepopulateBatch = 500;
constexpr uint32_t kDefaultMaxUsers = 7;

const char* StatusCodeName(int code) {
  static constexpr const char* kNames[kStatusCodes] = {"OK",
                                                       "CANCELLED",
                                                       "UNKNOWN",
                                                       "INVALID_ARGUMENT",
                                                       "DEADLINE_EXCEEDED",
                                                       "NOT_FOUND",
                                                       "ALREADY_EXISTS",
                                                       "PERMISSION_DENIED",
                                                       "RESOURCE_EXHAUSTED",
                                                       "FAILED_PRECONDITION",
                                                       "ABORTED",
                                                       "OUT_OF_RANGE",
                                                       "UNIMPLEMENTED",
                                                       "INTERNAL",
                                                       "UNAVAILABLE",
                                                       "DATA_LOSS",
                                                       "UNAUTHENTICATED"};
  return code >= 0 && code < kStatusCodes ? kNames[code] : "UNKNOWN";
}

// Adds to a counter that only one thread writes (no locked instruction);
// other threads may read it at any time.
void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n,
                std::memory_order_relaxed);
}

// Log-linear histogram of latencies in nanoseconds, in the manner of
// HdrHistogram: exact below 256 ns, then 128 buckets per power of two, so a
// bucket is at most 1/128 (0.8%) as wide as its values, and a percentile
// (reported as its bucket's middle) is within 0.4%. Values of 2^41 ns (37
// minutes) and more land in the last bucket.
class Histogram {
 public:
  static constexpr int kHalf = 128;
  static constexpr int kMaxShift = 33;
  static constexpr int kBuckets = (kMaxShift + 2) * kHalf;

  static int Index(uint64_t nanos) {
    nanos = std::min<uint64_t>(nanos, (uint64_t{1} << 41) - 1);
    if (nanos < 2 * kHalf) return static_cast<int>(nanos);
    const int msb = 63 - __builtin_clzll(nanos);
    const int shift = msb - 7;
    return shift * kHalf + static_cast<int>(nanos >> shift);
  }
  // The middle of bucket `index`.
  static double Middle(int index) {
    if (index < 2 * kHalf) return index;
    const int shift = index / kHalf - 1;
    const uint64_t low = static_cast<uint64_t>(index - shift * kHalf) << shift;
    return static_cast<double>(low) + (uint64_t{1} << shift) / 2.0;
  }
};

// What one thread recorded. Written only by its thread; read by any.
struct Shard {
  // Calls answered OK inside the measured window, by latency.
  std::array<std::atomic<uint64_t>, Histogram::kBuckets> latency{};
  std::atomic<uint64_t> latency_sum_ns{0};
  std::atomic<uint64_t> latency_max_ns{0};
  std::atomic<uint64_t> calls{0};      // OK, inside the window
  std::atomic<uint64_t> ops{0};        // operations of those calls
  std::atomic<uint64_t> arrivals{0};   // users added by those calls
  std::atomic<uint64_t> redirects{0};  // AddUser answered added: false
  // Every phase:
  std::atomic<uint64_t> answered{0};  // calls answered, any status
  std::array<std::atomic<uint64_t>, kStatusCodes> errors{};
  std::atomic<uint64_t> bad_responses{0};  // OK but not what was asked
};

// Sums of all shards at one moment.
struct Totals {
  std::vector<uint64_t> latency = std::vector<uint64_t>(Histogram::kBuckets);
  uint64_t latency_sum_ns = 0;
  uint64_t latency_max_ns = 0;
  uint64_t calls = 0;
  uint64_t ops = 0;
  uint64_t arrivals = 0;
  uint64_t redirects = 0;
  uint64_t answered = 0;
  std::array<uint64_t, kStatusCodes> errors{};
  uint64_t bad_responses = 0;

  uint64_t ErrorCount() const {
    uint64_t sum = bad_responses;
    for (uint64_t n : errors) sum += n;
    return sum;
  }
  // The latency (µs) below which a fraction `q` of the calls answered.
  double PercentileMicros(double q) const {
    if (calls == 0) return 0;
    const uint64_t rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * calls)));
    uint64_t seen = 0;
    for (int i = 0; i < Histogram::kBuckets; ++i) {
      seen += latency[i];
      if (seen >= rank) {
        return std::min(Histogram::Middle(i),
                        static_cast<double>(latency_max_ns)) /
               1e3;
      }
    }
    return latency_max_ns / 1e3;
  }
  double MeanMicros() const {
    return calls == 0 ? 0 : latency_sum_ns / 1e3 / calls;
  }
};

// Hands each thread its own shard, so recording takes no lock.
class Recorder {
 public:
  Shard& Local() {
    thread_local Shard* shard = nullptr;
    if (shard == nullptr) {
      std::lock_guard<std::mutex> lock(mu_);
      shards_.push_back(std::make_unique<Shard>());
      shard = shards_.back().get();
    }
    return *shard;
  }

  Totals Collect() {
    Totals totals;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& shard : shards_) {
      for (int i = 0; i < Histogram::kBuckets; ++i) {
        totals.latency[i] += shard->latency[i].load(std::memory_order_relaxed);
      }
      totals.latency_sum_ns += shard->latency_sum_ns.load();
      totals.latency_max_ns =
          std::max(totals.latency_max_ns, shard->latency_max_ns.load());
      totals.calls += shard->calls.load();
      totals.ops += shard->ops.load();
      totals.arrivals += shard->arrivals.load();
      totals.redirects += shard->redirects.load();
      totals.answered += shard->answered.load();
      for (int i = 0; i < kStatusCodes; ++i) {
        totals.errors[i] += shard->errors[i].load();
      }
      totals.bad_responses += shard->bad_responses.load();
    }
    return totals;
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

enum class Workload { kCurrentJam, kArrivals, kRefresh, kHasCapacity, kBatch };

bool ParseWorkload(const std::string& name, Workload* workload) {
  static const std::pair<const char*, Workload> kNames[] = {
      {"current_jam", Workload::kCurrentJam},
      {"arrivals", Workload::kArrivals},
      {"refresh", Workload::kRefresh},
      {"has_capacity", Workload::kHasCapacity},
      {"batch", Workload::kBatch}};
  for (const auto& [candidate, value] : kNames) {
    if (name == candidate) {
      *workload = value;
      return true;
    }
  }
  return false;
}

enum class Phase { kWarmup, kMeasure, kDrain };

struct Config {
  std::string target;
  Workload workload = Workload::kCurrentJam;
  std::string workload_name;
  int concurrency = 64;
  int channels = 4;
  absl::Duration warmup;
  absl::Duration duration;
  double rate = 0;
  int batch_size = 16;
  int prepopulate = 0;
  int population = 1000;
  absl::Duration deadline;
  bool json = false;
  bool progress = true;
};

// One simulated client: at most one call in flight. Only the thread that
// runs its current call (or, between calls, the one that starts the next)
// touches it.
struct Slot {
  int index = 0;
  Stub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  // When the current call started (closed loop) or was due (open loop).
  Clock::time_point start;
  absl::InsecureBitGen random;
  uint64_t users_made = 0;
  // arrivals: 0 = next is CurrentJam, 1 = AddUser, 2 = RemoveUser.
  int step = 0;
  std::string user_id;
  std::string jam_id;
  // Members this slot added, oldest first: (jam, user).
  std::deque<std::pair<std::string, std::string>> members;
  // batch: users answered by CurrentJam in the previous batch: (jam, user).
  std::vector<std::pair<std::string, std::string>> answered;
  // Messages of the current call.
  v1::CurrentJamRequest current_jam_request;
  v1::CurrentJamResponse current_jam_response;
  v1::AddUserRequest add_user_request;
  v1::AddUserResponse add_user_response;
  v1::RemoveUserRequest remove_user_request;
  v1::RemoveUserResponse remove_user_response;
  v1::RefreshRequest refresh_request;
  v1::RefreshResponse refresh_response;
  v1::HasCapacityRequest has_capacity_request;
  v1::HasCapacityResponse has_capacity_response;
  v1::BatchRequest batch_request;
  v1::BatchResponse batch_response;

  std::string NewUserId() {
    return absl::StrCat("bench-", index, "-", users_made++);
  }
};

// What a completed call did, beyond its status.
struct Outcome {
  uint64_t ops = 1;
  uint64_t arrivals = 0;
  uint64_t redirects = 0;
  bool bad_response = false;
};

std::string PrepopulatedJamId(int i) { return absl::StrFormat("pre-%07d", i); }

// The load generator. Create, Run once, Report.
class Bench {
 public:
  explicit Bench(Config config) : config_(std::move(config)) {}
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  // Connects every channel. False (with a message) if one cannot connect.
  bool Connect() {
    for (int i = 0; i < config_.channels; ++i) {
      grpc::ChannelArguments args;
      // Each channel its own subchannel, hence its own TCP connection.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("jam_bench.channel", i);
      auto channel = grpc::CreateCustomChannel(
          config_.target, grpc::InsecureChannelCredentials(), args);
      if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                     std::chrono::seconds(5))) {
        std::cerr << "jam-bench: cannot connect to " << config_.target
                  << " within 5s\n";
        return false;
      }
      stubs_.push_back(v1::JamBalancerService::NewStub(channel));
      channels_.push_back(std::move(channel));
    }
    return true;
  }

  // Reads max_users, and fills the --prepopulate jams. False (with a message)
  // on failure.
  bool SetUp() {
    BalancerClient client(channels_[0],
                          BalancerClient::Options{absl::Seconds(30)});
    auto stats = client.GetStats();
    if (!stats.ok()) {
      std::cerr << "jam-bench: GetStats failed: " << stats.status() << "\n";
      return false;
    }
    // A server that does not say (the empty server) gets the default.
    max_users_ = stats->max_users() > 0 ? stats->max_users() : kDefaultMaxUsers;
    const absl::Time started = absl::Now();
    for (int first = 0; first < config_.prepopulate;
         first += kPrepopulateBatch) {
      v1::BatchRequest request;
      const int last = std::min(config_.prepopulate, first + kPrepopulateBatch);
      for (int i = first; i < last; ++i) {
        v1::RefreshRequest* refresh =
            request.add_operations()->mutable_refresh();
        refresh->set_jam_id(PrepopulatedJamId(i));
        for (uint32_t u = 0; u <= i % max_users_; ++u) {
          refresh->add_user_ids(absl::StrCat(refresh->jam_id(), "-u", u));
        }
      }
      auto response = client.Batch(request);
      if (!response.ok()) {
        std::cerr << "jam-bench: prepopulate: Batch failed: "
                  << response.status() << "\n";
        return false;
      }
    }
    if (config_.prepopulate > 0 && config_.progress) {
      std::cerr << absl::StrFormat(
          "jam-bench: prepopulated %d jams in %s\n", config_.prepopulate,
          absl::FormatDuration(
              absl::Trunc(absl::Now() - started, absl::Milliseconds(1))));
    }
    return true;
  }

  // Warm-up, measured window, drain. False if calls were still in flight
  // long after their deadline (the process should then end at once).
  bool Run() {
    slots_.resize(config_.concurrency);
    for (int i = 0; i < config_.concurrency; ++i) {
      slots_[i].index = i;
      slots_[i].stub = stubs_[i % stubs_.size()].get();
    }
    share_ =
        (config_.population + config_.concurrency - 1) / config_.concurrency;
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

  // Prints the report; returns the exit status.
  int Report() {
    const Totals totals = recorder_.Collect();
    const double seconds =
        std::chrono::duration<double>(measure_end_ - measure_begin_).count();
    const double per_second = seconds > 0 ? 1 / seconds : 0;
    std::vector<std::pair<std::string, uint64_t>> errors;
    for (int code = 0; code < kStatusCodes; ++code) {
      if (totals.errors[code] > 0) {
        errors.emplace_back(StatusCodeName(code), totals.errors[code]);
      }
    }
    if (totals.bad_responses > 0) {
      errors.emplace_back("BAD_RESPONSE", totals.bad_responses);
    }
    const bool open_loop = config_.rate > 0;
    if (config_.json) {
      std::string out = absl::StrFormat(
          "{\"workload\":\"%s\",\"target\":\"%s\",\"loop\":\"%s\","
          "\"rate\":%.1f,\"concurrency\":%d,\"channels\":%d,"
          "\"batch_size\":%d,\"prepopulate\":%d,\"population\":%d,"
          "\"warmup_s\":%.3f,\"duration_s\":%.3f,"
          "\"calls\":%d,\"calls_per_s\":%.1f,\"ops\":%d,\"ops_per_s\":%.1f,"
          "\"arrivals\":%d,\"arrivals_per_s\":%.1f,\"redirects\":%d,"
          "\"late_starts\":%d,\"answered\":%d,"
          "\"latency_us\":{\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
          "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
          "\"errors_total\":%d,\"errors\":{",
          config_.workload_name, config_.target, open_loop ? "open" : "closed",
          config_.rate, config_.concurrency, config_.channels,
          config_.batch_size, config_.prepopulate, config_.population,
          absl::ToDoubleSeconds(config_.warmup), seconds, totals.calls,
          totals.calls * per_second, totals.ops, totals.ops * per_second,
          totals.arrivals, totals.arrivals * per_second, totals.redirects,
          late_starts_.load(), totals.answered, totals.MeanMicros(),
          totals.PercentileMicros(0.5), totals.PercentileMicros(0.9),
          totals.PercentileMicros(0.99), totals.PercentileMicros(0.999),
          totals.latency_max_ns / 1e3, totals.ErrorCount());
      out += absl::StrJoin(errors, ",", [](std::string* s, const auto& e) {
        absl::StrAppend(s, "\"", e.first, "\":", e.second);
      });
      out += "}}\n";
      std::cout << out;
    } else {
      std::cout << absl::StrFormat(
          "workload     %s on %s: %s loop%s, %d in flight at most, %d "
          "channels\n"
          "window       %.2f s after %s of warm-up\n"
          "calls        %d = %.0f calls/s\n",
          config_.workload_name, config_.target, open_loop ? "open" : "closed",
          open_loop ? absl::StrFormat(" at %.0f calls/s", config_.rate) : "",
          config_.concurrency, config_.channels, seconds,
          absl::FormatDuration(config_.warmup), totals.calls,
          totals.calls * per_second);
      if (config_.workload == Workload::kBatch) {
        std::cout << absl::StrFormat(
            "operations   %d = %.0f ops/s (%d per call)\n", totals.ops,
            totals.ops * per_second, config_.batch_size);
      }
      if (totals.arrivals > 0 || totals.redirects > 0) {
        std::cout << absl::StrFormat(
            "arrivals     %d = %.0f users added/s; %d redirects\n",
            totals.arrivals, totals.arrivals * per_second, totals.redirects);
      }
      if (open_loop) {
        std::cout << absl::StrFormat(
            "late starts  %d (no free slot when due)\n", late_starts_.load());
      }
      std::cout << absl::StrFormat(
          "latency µs   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
          "mean %.1f\n",
          totals.PercentileMicros(0.5), totals.PercentileMicros(0.9),
          totals.PercentileMicros(0.99), totals.PercentileMicros(0.999),
          totals.latency_max_ns / 1e3, totals.MeanMicros());
      std::cout << "errors       "
                << (errors.empty() ? std::string("none")
                                   : absl::StrJoin(errors, ", ",
                                                   absl::PairFormatter(": ")))
                << "\n";
    }
    std::cout.flush();
    {
      std::lock_guard<std::mutex> lock(first_error_mu_);
      if (!first_error_.empty()) {
        std::cerr << "jam-bench: first error: " << first_error_ << "\n";
      }
    }
    return totals.ErrorCount() == 0 ? kExitOk : kExitFailed;
  }

 private:
  // Starts `slot`'s next call, due at `start`. The caller has counted it in
  // in_flight_.
  void Start(Slot& slot, Clock::time_point start) {
    slot.start = start;
    slot.context = std::make_unique<grpc::ClientContext>();
    slot.context->set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoNanoseconds(config_.deadline));
    switch (config_.workload) {
      case Workload::kCurrentJam:
        StartCurrentJam(slot);
        break;
      case Workload::kArrivals:
        StartArrivalStep(slot);
        break;
      case Workload::kRefresh:
        StartRefresh(slot);
        break;
      case Workload::kHasCapacity:
        StartHasCapacity(slot);
        break;
      case Workload::kBatch:
        StartBatch(slot);
        break;
    }
  }

  void StartCurrentJam(Slot& slot) {
    slot.current_jam_request.Clear();
    slot.current_jam_response.Clear();
    slot.stub->async()->CurrentJam(
        slot.context.get(), &slot.current_jam_request,
        &slot.current_jam_response, [this, &slot](grpc::Status status) {
          Outcome outcome;
          outcome.bad_response =
              status.ok() && slot.current_jam_response.jam_id().empty();
          Done(slot, status, outcome);
        });
  }

  void StartArrivalStep(Slot& slot) {
    switch (slot.step) {
      case 0:
        slot.user_id = slot.NewUserId();
        slot.current_jam_request.Clear();
        slot.current_jam_request.set_user_id(slot.user_id);
        slot.current_jam_response.Clear();
        slot.stub->async()->CurrentJam(
            slot.context.get(), &slot.current_jam_request,
            &slot.current_jam_response, [this, &slot](grpc::Status status) {
              Outcome outcome;
              if (status.ok()) {
                slot.jam_id = slot.current_jam_response.jam_id();
                outcome.bad_response = slot.jam_id.empty();
                slot.step = outcome.bad_response ? 0 : 1;
              }
              Done(slot, status, outcome);
            });
        break;
      case 1:
        slot.add_user_request.set_jam_id(slot.jam_id);
        slot.add_user_request.set_user_id(slot.user_id);
        slot.add_user_response.Clear();
        slot.stub->async()->AddUser(
            slot.context.get(), &slot.add_user_request, &slot.add_user_response,
            [this, &slot](grpc::Status status) {
              Outcome outcome;
              slot.step = 0;
              if (status.ok()) {
                if (slot.add_user_response.added()) {
                  outcome.arrivals = 1;
                  slot.members.emplace_back(slot.jam_id, slot.user_id);
                  if (static_cast<int>(slot.members.size()) > share_) {
                    slot.step = 2;
                  }
                } else {
                  outcome.redirects = 1;
                }
              }
              Done(slot, status, outcome);
            });
        break;
      default:
        slot.remove_user_request.set_jam_id(slot.members.front().first);
        slot.remove_user_request.set_user_id(slot.members.front().second);
        slot.members.pop_front();
        slot.remove_user_response.Clear();
        slot.stub->async()->RemoveUser(
            slot.context.get(), &slot.remove_user_request,
            &slot.remove_user_response, [this, &slot](grpc::Status status) {
              slot.step = 0;
              Done(slot, status, Outcome());
            });
        break;
    }
  }

  // A jam id of the prepopulated set (or, with none, one of 1000 unknown
  // ones).
  std::string RandomJamId(Slot& slot) {
    const int jams = config_.prepopulate > 0 ? config_.prepopulate : 1000;
    return PrepopulatedJamId(absl::Uniform(slot.random, 0, jams));
  }

  void StartRefresh(Slot& slot) {
    slot.refresh_request.Clear();
    slot.refresh_request.set_jam_id(RandomJamId(slot));
    const uint32_t users = absl::Uniform(absl::IntervalClosed, slot.random,
                                         uint32_t{1}, max_users_);
    for (uint32_t u = 0; u < users; ++u) {
      slot.refresh_request.add_user_ids(
          absl::StrCat(slot.refresh_request.jam_id(), "-u", u));
    }
    slot.refresh_response.Clear();
    slot.stub->async()->Refresh(
        slot.context.get(), &slot.refresh_request, &slot.refresh_response,
        [this, &slot](grpc::Status status) { Done(slot, status, Outcome()); });
  }

  void StartHasCapacity(Slot& slot) {
    slot.has_capacity_request.Clear();
    slot.has_capacity_request.set_jam_id(RandomJamId(slot));
    slot.has_capacity_response.Clear();
    slot.stub->async()->HasCapacity(
        slot.context.get(), &slot.has_capacity_request,
        &slot.has_capacity_response,
        [this, &slot](grpc::Status status) { Done(slot, status, Outcome()); });
  }

  // AddUser for the users the previous batch answered, RemoveUser for the
  // members beyond the slot's share, CurrentJam for new users in the rest.
  void StartBatch(Slot& slot) {
    v1::BatchRequest& request = slot.batch_request;
    request.Clear();
    const int size = config_.batch_size;
    int joins = 0;
    for (const auto& [jam_id, user_id] : slot.answered) {
      if (joins == size) break;
      v1::AddUserRequest* add = request.add_operations()->mutable_add_user();
      add->set_jam_id(jam_id);
      add->set_user_id(user_id);
      ++joins;
    }
    slot.answered.erase(slot.answered.begin(), slot.answered.begin() + joins);
    // Those joins will (almost always) add members: depart to make room.
    int departures = 0;
    while (request.operations_size() < size &&
           static_cast<int>(slot.members.size()) + joins - departures >
               share_ &&
           departures < static_cast<int>(slot.members.size())) {
      const auto& [jam_id, user_id] = slot.members[departures];
      v1::RemoveUserRequest* remove =
          request.add_operations()->mutable_remove_user();
      remove->set_jam_id(jam_id);
      remove->set_user_id(user_id);
      ++departures;
    }
    slot.members.erase(slot.members.begin(), slot.members.begin() + departures);
    while (request.operations_size() < size) {
      request.add_operations()->mutable_current_jam()->set_user_id(
          slot.NewUserId());
    }
    slot.batch_response.Clear();
    slot.stub->async()->Batch(
        slot.context.get(), &slot.batch_request, &slot.batch_response,
        [this, &slot](grpc::Status status) {
          Outcome outcome;
          outcome.ops = slot.batch_request.operations_size();
          if (status.ok()) CollectBatch(slot, &outcome);
          Done(slot, status, outcome);
        });
  }

  // Reads a batch's results into the slot's state.
  void CollectBatch(Slot& slot, Outcome* outcome) {
    const v1::BatchRequest& request = slot.batch_request;
    const v1::BatchResponse& response = slot.batch_response;
    if (response.results_size() != request.operations_size()) {
      outcome->bad_response = true;
      return;
    }
    for (int i = 0; i < request.operations_size(); ++i) {
      const v1::BatchOperation& operation = request.operations(i);
      const v1::BatchResult& result = response.results(i);
      if (static_cast<int>(result.result_case()) !=
          static_cast<int>(operation.operation_case())) {
        outcome->bad_response = true;
        return;
      }
      switch (operation.operation_case()) {
        case v1::BatchOperation::kCurrentJam:
          if (result.current_jam().jam_id().empty()) {
            outcome->bad_response = true;
          } else {
            slot.answered.emplace_back(result.current_jam().jam_id(),
                                       operation.current_jam().user_id());
          }
          break;
        case v1::BatchOperation::kAddUser:
          if (result.add_user().added()) {
            ++outcome->arrivals;
            slot.members.emplace_back(operation.add_user().jam_id(),
                                      operation.add_user().user_id());
          } else {
            ++outcome->redirects;
          }
          break;
        default:
          break;
      }
    }
  }

  // Records a call that completed and starts the slot's next one, or parks
  // or frees the slot. On a gRPC thread.
  void Done(Slot& slot, const grpc::Status& status, const Outcome& outcome) {
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
      Bump(shard.latency[Histogram::Index(nanos)]);
      Bump(shard.latency_sum_ns, nanos);
      if (nanos > shard.latency_max_ns.load(std::memory_order_relaxed)) {
        shard.latency_max_ns.store(nanos, std::memory_order_relaxed);
      }
      Bump(shard.calls);
      Bump(shard.ops, outcome.ops);
      Bump(shard.arrivals, outcome.arrivals);
      Bump(shard.redirects, outcome.redirects);
    }
    const bool ok = status.ok() && !outcome.bad_response;
    if (!ok) {
      // Start the slot's life cycle over with a new user.
      slot.step = 0;
      slot.answered.clear();
    }
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

  void NoteError(std::string message) {
    if (have_error_.exchange(true)) return;
    std::lock_guard<std::mutex> lock(first_error_mu_);
    first_error_ = std::move(message);
  }

  // Closed loop: restarts the slots whose last call failed.
  void RestartParked() {
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

  // Open loop: starts a call every 1/rate seconds from `begin` until `end`,
  // each on a free slot (waiting for one if all are busy).
  void Schedule(Clock::time_point begin, Clock::time_point end) {
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

  void PrintProgress(const Totals& totals, Clock::duration elapsed,
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

  const Config config_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<Stub>> stubs_;
  uint32_t max_users_ = kDefaultMaxUsers;
  int share_ = 1;  // members each slot keeps (arrivals, batch)
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

  std::atomic<bool> have_error_{false};
  std::mutex first_error_mu_;
  std::string first_error_;
};

// Checks the flags into a Config. False (with a message) if one is out of
// range.
bool ReadFlags(Config* config) {
  config->target = absl::GetFlag(FLAGS_target);
  config->workload_name = absl::GetFlag(FLAGS_workload);
  config->concurrency = absl::GetFlag(FLAGS_concurrency);
  config->channels = absl::GetFlag(FLAGS_channels);
  config->warmup = absl::GetFlag(FLAGS_warmup);
  config->duration = absl::GetFlag(FLAGS_duration);
  config->rate = absl::GetFlag(FLAGS_rate);
  config->batch_size = absl::GetFlag(FLAGS_batch_size);
  config->prepopulate = absl::GetFlag(FLAGS_prepopulate);
  config->population = absl::GetFlag(FLAGS_population);
  config->deadline = absl::GetFlag(FLAGS_deadline);
  config->progress = absl::GetFlag(FLAGS_progress);
  const std::string format = absl::GetFlag(FLAGS_format);
  std::string error;
  if (!ParseWorkload(config->workload_name, &config->workload)) {
    error =
        "--workload must be current_jam, arrivals, refresh, has_capacity "
        "or batch";
  } else if (config->concurrency < 1 || config->concurrency > 100000) {
    error = "--concurrency must be 1 to 100000";
  } else if (config->channels < 1 || config->channels > 1000) {
    error = "--channels must be 1 to 1000";
  } else if (config->warmup < absl::ZeroDuration() ||
             config->warmup > absl::Hours(1)) {
    error = "--warmup must be 0 to 1h";
  } else if (config->duration < absl::ZeroDuration() ||
             config->duration > absl::Hours(24)) {
    error = "--duration must be 0 to 24h";
  } else if (!(config->rate >= 0 && config->rate <= 1e7)) {
    error = "--rate must be 0 (closed loop) to 1e7 calls/s";
  } else if (config->batch_size < 1 || config->batch_size > 1000) {
    error = "--batch_size must be 1 to 1000";
  } else if (config->prepopulate < 0 || config->prepopulate > 10000000) {
    error = "--prepopulate must be 0 to 1e7";
  } else if (config->population < 0 || config->population > 100000000) {
    error = "--population must be 0 to 1e8";
  } else if (config->deadline <= absl::ZeroDuration() ||
             config->deadline > absl::Hours(1)) {
    error = "--deadline must be more than 0 and at most 1h";
  } else if (format != "text" && format != "json") {
    error = "--format must be text or json";
  }
  if (!error.empty()) {
    std::cerr << "jam-bench: " << error << "\n";
    return false;
  }
  config->json = format == "json";
  config->channels = std::min(config->channels, config->concurrency);
  return true;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load generator for the jam balancer (gRPC callback API).\n"
      "Usage: jam-bench [--target=HOST:PORT] "
      "[--workload=current_jam|arrivals|refresh|has_capacity|batch] "
      "[--concurrency=N] [--channels=N] [--warmup=2s] [--duration=10s] "
      "[--rate=CALLS_PER_S] [--batch_size=N] [--prepopulate=JAMS] "
      "[--format=text|json]\n"
      "Exit status: 0 all calls succeeded, 1 a call failed, 2 wrong usage.");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::cerr << "jam-bench: unexpected argument " << rest[1] << "\n";
    return kExitUsage;
  }
  Config config;
  if (!ReadFlags(&config)) return kExitUsage;
  Bench bench(config);
  if (!bench.Connect() || !bench.SetUp()) return kExitFailed;
  if (absl::GetFlag(FLAGS_prepopulate_only)) return kExitOk;
  const bool drained = bench.Run();
  const int exit_status = bench.Report();
  if (!drained) {
    // Calls in flight still point into the bench: do not tear it down.
    std::cerr.flush();
    std::_Exit(kExitFailed);
  }
  return exit_status;
}

}  // namespace
}  // namespace jambalancer

int main(int argc, char** argv) { return jambalancer::Main(argc, argv); }
