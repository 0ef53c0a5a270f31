#include "bench/load/soak.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/histogram.h"
#include "bench/load/recorder.h"
#include "bench/load/report.h"
#include "client/balancer_client.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

// The first errors kept with their messages.
constexpr size_t kFirstErrors = 10;
// How long an expired front end's removal may take after its lease ran out
// before its session or users still being there counts as an error.
constexpr absl::Duration kRemovalGrace = absl::Seconds(5);
// How long a paused front end stays silent beyond its lease.
constexpr absl::Duration kPauseMargin = absl::Seconds(1);
// How long a resumed front end may take to find out its lease ran out.
constexpr std::chrono::seconds kResumeLimit{10};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Bytes in MiB with one decimal; "?" for unknown.
std::string Mib(int64_t bytes) {
  return bytes < 0 ? std::string("?")
                   : absl::StrFormat("%.1f", bytes / 1048576.0);
}

// What /proc says of the server process; -1: unknown.
struct ProcessSample {
  int64_t rss_bytes = -1;
  int fds = -1;
  double cpu_seconds = -1;
};

// The machine's 1-minute load average; -1 if unknown.
double LoadAverage() {
  std::ifstream file("/proc/loadavg");
  double load = -1;
  if (!(file >> load)) return -1;
  return load;
}

ProcessSample SampleProcess(int pid) {
  ProcessSample sample;
  if (pid <= 0) return sample;
  const std::string dir = absl::StrCat("/proc/", pid);
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);) {
    if (!absl::StartsWith(line, "VmRSS:")) continue;
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int64_t kib = 0;
    if (words.size() >= 2 && absl::SimpleAtoi(words[1], &kib)) {
      sample.rss_bytes = kib * 1024;
    }
  }
  std::ifstream stat_file(dir + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(stat_file)),
                         std::istreambuf_iterator<char>());
  const size_t end_of_name = stat.rfind(')');
  if (end_of_name != std::string::npos) {
    // Field N of proc(5) is fields[N - 3]: utime is 14, stime 15.
    const std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(end_of_name + 1),
                       absl::ByAnyChar(" \n"), absl::SkipEmpty());
    uint64_t user = 0;
    uint64_t system = 0;
    if (fields.size() > 12 && absl::SimpleAtoi(fields[11], &user) &&
        absl::SimpleAtoi(fields[12], &system)) {
      sample.cpu_seconds = static_cast<double>(user + system) /
                           static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  if (DIR* fds = opendir((dir + "/fd").c_str())) {
    sample.fds = 0;
    while (const dirent* entry = readdir(fds)) {
      if (entry->d_name[0] != '.') ++sample.fds;
    }
    closedir(fds);
  }
  return sample;
}

// A front end's state; the soak's threads move it along:
//   kActive -> kSilent (expire: for good) | kEnding -> kGone (end)
//   kActive -> kPaused -> kResuming -> kResyncing -> kActive (pause)
enum class State {
  kActive,     // calls and keepalives
  kPaused,     // silent until its lease ran out
  kResuming,   // calls again; they must fail FAILED_PRECONDITION
  kResyncing,  // one did: no calls until its Sync
  kSilent,     // silent for good: its lease runs out
  kEnding,     // no calls: its EndSession goes out
  kGone
};

enum class Step { kArrive, kReload, kJoin, kLeave, kRefresh, kPeek };

const char* StepName(Step step) {
  switch (step) {
    case Step::kArrive:
      return "CurrentJam";
    case Step::kReload:
      return "CurrentJam (reload)";
    case Step::kJoin:
      return "AddUser";
    case Step::kLeave:
      return "RemoveUser";
    case Step::kRefresh:
      return "Refresh";
    case Step::kPeek:
      return "CurrentJam (no user)";
  }
  return "?";
}

struct Seat {
  std::string jam;
  std::string user;
};

struct HeldSeat {
  Seat seat;
  // A reload sent before this must be answered the held jam (half the
  // hold: the rest is margin for the call's way to the server).
  Clock::time_point reload_by;
};

// One jam as a front end sees it.
struct JamState {
  std::vector<std::string> users;  // its members there
  int busy = 0;                    // its joins and departures in flight
  bool refreshing = false;         // its Refresh in flight
};

// One simulated front end. `mu` guards the members after it; the rest is
// set before it is shared.
struct FrontEnd {
  std::string id;
  v1::JamBalancerService::Stub* stub = nullptr;
  std::unique_ptr<BalancerClient> control;  // Sync, KeepAlive, EndSession

  std::mutex mu;
  State state = State::kActive;
  // Started, or last resynced: the front end that leaves is the one with
  // the earliest.
  Clock::time_point since;
  int in_flight = 0;  // its calls and keepalives
  uint64_t users_made = 0;
  std::deque<Seat> members;  // oldest first
  std::unordered_map<std::string, JamState> jams;
  std::deque<Seat> arrivals;  // answered by CurrentJam, not joined yet
  std::deque<HeldSeat> held;  // left with their seat held

  // Forgets `jam` if nothing of it is left.
  void Tidy(const std::string& jam) {
    auto it = jams.find(jam);
    if (it != jams.end() && it->second.users.empty() && it->second.busy == 0 &&
        !it->second.refreshing) {
      jams.erase(it);
    }
  }
};

// One call in flight, with its messages.
struct Call {
  Step step = Step::kPeek;
  std::shared_ptr<FrontEnd> frontend;
  State sent_in = State::kActive;
  Clock::time_point due;
  grpc::ClientContext context;
  Seat seat;           // the user and jam (kRefresh: the jam)
  size_t listed = 0;   // kRefresh: users listed
  bool hold = false;   // kLeave: with hold_seat
  bool check = false;  // kReload: must be answered seat.jam
  v1::CurrentJamRequest current_jam_request;
  v1::CurrentJamResponse current_jam_response;
  v1::AddUserRequest add_user_request;
  v1::AddUserResponse add_user_response;
  v1::RemoveUserRequest remove_user_request;
  v1::RemoveUserResponse remove_user_response;
  v1::RefreshRequest refresh_request;
  v1::RefreshResponse refresh_response;
};

// What an interval counted.
struct Counts {
  std::vector<uint64_t> latency = std::vector<uint64_t>(Histogram::kBuckets);
  uint64_t calls = 0;
  uint64_t max_ns = 0;
  uint64_t late_starts = 0;
  uint64_t expected = 0;
  ErrorsByCode errors{};
  uint64_t bad_responses = 0;
};

class Soak {
 public:
  Soak(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
       const Config& config)
      : config_(config),
        channels_(channels),
        share_(static_cast<size_t>((config.population + config.frontends - 1) /
                                   config.frontends)),
        stats_client_(channels.front(), StatsOptions(config)) {
    for (const std::shared_ptr<grpc::Channel>& channel : channels) {
      stubs_.push_back(v1::JamBalancerService::NewStub(channel));
    }
  }
  Soak(const Soak&) = delete;
  Soak& operator=(const Soak&) = delete;

  SoakResult Run();

 private:
  static BalancerClient::Options StatsOptions(const Config& config) {
    BalancerClient::Options options;
    options.deadline = config.deadline;
    return options;
  }

  // Starts a front end (an empty Sync) and adds it to live_. Null (with the
  // error noted) if the Sync failed.
  std::shared_ptr<FrontEnd> StartFrontEnd();
  // The live front end in kActive with the earliest `since`; null if none.
  std::shared_ptr<FrontEnd> Oldest();
  void Forget(const FrontEnd& frontend);

  // Starts a call every 1 / rate seconds from `begin` until `end`.
  void Schedule(Clock::time_point begin, Clock::time_point end);
  // Starts one call due at `due` for a front end that may call. False if
  // none may.
  bool StartCall(Clock::time_point due);
  // Picks `frontend`'s next step into `call`. REQUIRES: frontend.mu held.
  void PrepareStep(FrontEnd& frontend, Call& call);
  void Send(Call* call);
  void Done(Call* call, const grpc::Status& status);
  // Takes an OK answer into the front end's state; a description of what
  // does not fit, or empty. REQUIRES: frontend.mu held.
  std::string TakeAnswer(Call& call, FrontEnd& frontend, Clock::time_point now);

  void KeepAliveLoop();
  void ChurnLoop();
  void Expire();
  void Pause();
  void End();
  // Ends `frontend`'s session (it must have no call in flight) and checks
  // the count of users removed.
  void EndSession(FrontEnd& frontend);
  // Waits until `frontend` has nothing in flight (bounded by the deadline
  // of its calls). False if that did not happen.
  bool WaitIdle(FrontEnd& frontend);
  // Sleeps `d`; false if the churn was stopped meanwhile.
  bool ChurnSleep(absl::Duration d);
  // Checks that the front ends that went silent long enough ago are gone.
  void CheckGone();

  SoakInterval Measure(Clock::time_point begin, Clock::time_point previous,
                       Clock::time_point now, bool warmup,
                       ProcessSample* process, SoakResult* result);
  // After the load: ends every active front end's session and waits until
  // the balancer holds nothing.
  void Finish(SoakResult* result);
  void AddCounts(const Counts& counts, SoakResult* result);

  // Counts an error: a status code, or kStatusCodes for an answer that does
  // not fit (BAD_RESPONSE); keeps the first few messages.
  void NoteError(int code, const std::string& what);
  void Progress(const std::string& line);

  const Config config_;
  const std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::JamBalancerService::Stub>> stubs_;
  const size_t share_;  // members each front end keeps
  BalancerClient stats_client_;
  absl::InsecureBitGen random_;  // the scheduler thread's
  Clock::time_point begin_;

  std::mutex live_mu_;  // Taken before a FrontEnd's mu, never after.
  std::vector<std::shared_ptr<FrontEnd>> live_;  // guarded by live_mu_
  int next_frontend_ = 0;                        // guarded by live_mu_

  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  int in_flight_ = 0;  // guarded by flight_mu_

  std::mutex counts_mu_;
  Counts counts_;                          // guarded by counts_mu_
  std::vector<std::string> first_errors_;  // guarded by counts_mu_

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_churn_ = false;       // guarded by stop_mu_
  bool stop_keepalives_ = false;  // guarded by stop_mu_

  // A front end that went silent for good: its session and its users must
  // be gone by `by`. `jam` is one of its jams ("" if it had none).
  struct Gone {
    std::string id;
    std::string jam;
    Clock::time_point by;
  };
  std::mutex gone_mu_;
  std::vector<Gone> gone_;  // guarded by gone_mu_

  // The interval's longest start lag; written by the scheduler only.
  std::atomic<int64_t> start_lag_max_ns_{0};
  std::atomic<uint64_t> keepalives_{0};
  std::atomic<int> started_{0};
  std::atomic<int> expired_{0};
  std::atomic<int> paused_{0};
  std::atomic<int> resynced_{0};
  std::atomic<int> ended_{0};
};

void Soak::NoteError(int code, const std::string& what) {
  std::lock_guard<std::mutex> lock(counts_mu_);
  if (code >= kStatusCodes || code <= 0) {
    ++counts_.bad_responses;
  } else {
    ++counts_.errors[code];
  }
  if (first_errors_.size() < kFirstErrors) {
    first_errors_.push_back(absl::StrCat(code >= kStatusCodes || code <= 0
                                             ? "BAD_RESPONSE"
                                             : StatusCodeName(code),
                                         ": ", what));
  }
}

void Soak::Progress(const std::string& line) {
  if (!config_.progress) return;
  std::cerr << absl::StrFormat("jam-bench: %6.1fs %s\n",
                               Seconds(Clock::now() - begin_), line);
}

std::shared_ptr<FrontEnd> Soak::StartFrontEnd() {
  auto frontend = std::make_shared<FrontEnd>();
  int number = 0;
  {
    std::lock_guard<std::mutex> lock(live_mu_);
    number = next_frontend_++;
  }
  const size_t channel = static_cast<size_t>(number) % channels_.size();
  frontend->id = absl::StrCat(kSoakFrontendPrefix, number);
  frontend->stub = stubs_[channel].get();
  BalancerClient::Options options;
  options.deadline = config_.deadline;
  options.frontend_id = frontend->id;
  frontend->control =
      std::make_unique<BalancerClient>(channels_[channel], options);
  const absl::StatusOr<v1::SyncResponse> synced =
      frontend->control->Sync(config_.lease, {});
  if (!synced.ok()) {
    NoteError(static_cast<int>(synced.status().code()),
              absl::StrCat("Sync of new front end ", frontend->id, ": ",
                           synced.status().message()));
    return nullptr;
  }
  frontend->since = Clock::now();
  std::lock_guard<std::mutex> lock(live_mu_);
  live_.push_back(frontend);
  ++started_;
  return frontend;
}

std::shared_ptr<FrontEnd> Soak::Oldest() {
  std::lock_guard<std::mutex> lock(live_mu_);
  std::shared_ptr<FrontEnd> oldest;
  Clock::time_point oldest_since;
  for (const std::shared_ptr<FrontEnd>& frontend : live_) {
    std::lock_guard<std::mutex> frontend_lock(frontend->mu);
    if (frontend->state != State::kActive) continue;
    if (oldest == nullptr || frontend->since < oldest_since) {
      oldest = frontend;
      oldest_since = frontend->since;
    }
  }
  return oldest;
}

void Soak::Forget(const FrontEnd& frontend) {
  std::lock_guard<std::mutex> lock(live_mu_);
  live_.erase(std::remove_if(live_.begin(), live_.end(),
                             [&frontend](const std::shared_ptr<FrontEnd>& f) {
                               return f.get() == &frontend;
                             }),
              live_.end());
}

void Soak::Schedule(Clock::time_point begin, Clock::time_point end) {
  const double interval_ns = 1e9 / config_.rate;
  for (uint64_t i = 0;; ++i) {
    const Clock::time_point due =
        begin + std::chrono::nanoseconds(
                    static_cast<int64_t>(std::llround(i * interval_ns)));
    if (due >= end) return;
    if (due > Clock::now()) std::this_thread::sleep_until(due);
    bool late = false;
    {
      std::unique_lock<std::mutex> lock(flight_mu_);
      late = in_flight_ >= config_.concurrency;
      // Calls end by their deadline, so a slot frees up, or the run ends.
      if (!flight_cv_.wait_until(
              lock, end, [this] { return in_flight_ < config_.concurrency; })) {
        return;
      }
      ++in_flight_;
    }
    const int64_t lag =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - due)
            .count();
    if (lag > start_lag_max_ns_.load(std::memory_order_relaxed)) {
      start_lag_max_ns_.store(lag, std::memory_order_relaxed);
    }
    if (late) {
      std::lock_guard<std::mutex> lock(counts_mu_);
      ++counts_.late_starts;
    }
    if (!StartCall(due)) {
      std::lock_guard<std::mutex> lock(flight_mu_);
      --in_flight_;
    }
  }
}

bool Soak::StartCall(Clock::time_point due) {
  auto call = std::make_unique<Call>();
  call->due = due;
  {
    std::lock_guard<std::mutex> lock(live_mu_);
    const size_t n = live_.size();
    const size_t first = n == 0 ? 0 : absl::Uniform<size_t>(random_, 0, n);
    for (size_t k = 0; k < n && call->frontend == nullptr; ++k) {
      const std::shared_ptr<FrontEnd>& frontend = live_[(first + k) % n];
      std::lock_guard<std::mutex> frontend_lock(frontend->mu);
      if (frontend->state != State::kActive &&
          frontend->state != State::kResuming) {
        continue;
      }
      call->frontend = frontend;
      PrepareStep(*frontend, *call);
      ++frontend->in_flight;
    }
  }
  if (call->frontend == nullptr) return false;
  call->context.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoNanoseconds(config_.deadline));
  Send(call.release());
  return true;
}

void Soak::PrepareStep(FrontEnd& frontend, Call& call) {
  call.sent_in = frontend.state;
  call.step = Step::kPeek;  // unless a step of the life cycle may go
  if (!frontend.members.empty() &&
      absl::Uniform(random_, 0, kSoakRefreshOneIn) == 0) {
    const Seat& some = frontend.members[absl::Uniform<size_t>(
        random_, 0, frontend.members.size())];
    JamState& jam = frontend.jams[some.jam];
    if (jam.busy == 0 && !jam.refreshing) {
      jam.refreshing = true;
      call.step = Step::kRefresh;
      call.seat.jam = some.jam;
      call.listed = jam.users.size();
      call.refresh_request.set_jam_id(some.jam);
      for (const std::string& user : jam.users) {
        call.refresh_request.add_user_ids(user);
      }
    }
  } else if (!frontend.arrivals.empty()) {
    JamState& jam = frontend.jams[frontend.arrivals.front().jam];
    if (!jam.refreshing) {
      ++jam.busy;
      call.step = Step::kJoin;
      call.seat = std::move(frontend.arrivals.front());
      frontend.arrivals.pop_front();
    }
  } else if (frontend.members.size() >= share_) {
    JamState& jam = frontend.jams[frontend.members.front().jam];
    if (!jam.refreshing) {
      ++jam.busy;
      call.step = Step::kLeave;
      call.seat = std::move(frontend.members.front());
      frontend.members.pop_front();
      auto user = std::find(jam.users.begin(), jam.users.end(), call.seat.user);
      if (user != jam.users.end()) jam.users.erase(user);
      call.hold = absl::Uniform(random_, 0, kSoakHoldSeatOneIn) == 0;
    }
  } else {
    const Clock::time_point now = Clock::now();
    while (!frontend.held.empty() && frontend.held.front().reload_by <= now) {
      frontend.held.pop_front();  // its seat lapses on the server
    }
    if (!frontend.held.empty() && absl::Bernoulli(random_, 0.5)) {
      call.step = Step::kReload;
      call.seat = std::move(frontend.held.front().seat);
      call.check = true;
      frontend.held.pop_front();
    } else {
      call.step = Step::kArrive;
      call.seat.user = absl::StrCat(frontend.id, "-", frontend.users_made++);
    }
  }
  const std::string& id = frontend.id;
  switch (call.step) {
    case Step::kArrive:
    case Step::kReload:
      call.current_jam_request.set_user_id(call.seat.user);
      call.current_jam_request.set_frontend_id(id);
      break;
    case Step::kPeek:
      call.current_jam_request.set_frontend_id(id);
      break;
    case Step::kJoin:
      call.add_user_request.set_jam_id(call.seat.jam);
      call.add_user_request.set_user_id(call.seat.user);
      call.add_user_request.set_frontend_id(id);
      break;
    case Step::kLeave:
      call.remove_user_request.set_jam_id(call.seat.jam);
      call.remove_user_request.set_user_id(call.seat.user);
      call.remove_user_request.set_frontend_id(id);
      if (call.hold) call.remove_user_request.set_hold_seat_ms(kSoakHoldSeatMs);
      break;
    case Step::kRefresh:
      call.refresh_request.set_frontend_id(id);
      break;
  }
}

void Soak::Send(Call* call) {
  auto done = [this, call](grpc::Status status) { Done(call, status); };
  v1::JamBalancerService::Stub::async_interface* async =
      call->frontend->stub->async();
  switch (call->step) {
    case Step::kArrive:
    case Step::kReload:
    case Step::kPeek:
      async->CurrentJam(&call->context, &call->current_jam_request,
                        &call->current_jam_response, done);
      break;
    case Step::kJoin:
      async->AddUser(&call->context, &call->add_user_request,
                     &call->add_user_response, done);
      break;
    case Step::kLeave:
      async->RemoveUser(&call->context, &call->remove_user_request,
                        &call->remove_user_response, done);
      break;
    case Step::kRefresh:
      async->Refresh(&call->context, &call->refresh_request,
                     &call->refresh_response, done);
      break;
  }
}

void Soak::Done(Call* call, const grpc::Status& status) {
  const Clock::time_point now = Clock::now();
  FrontEnd& frontend = *call->frontend;
  bool expected = false;
  int code = status.error_code();
  std::string error;
  {
    std::lock_guard<std::mutex> lock(frontend.mu);
    --frontend.in_flight;
    if (call->step == Step::kJoin || call->step == Step::kLeave) {
      --frontend.jams[call->seat.jam].busy;
    } else if (call->step == Step::kRefresh) {
      frontend.jams[call->seat.jam].refreshing = false;
    }
    if (!status.ok()) {
      if (code == grpc::StatusCode::FAILED_PRECONDITION &&
          call->sent_in == State::kResuming) {
        // Its lease ran out while it was paused: it resyncs (ChurnLoop).
        expected = true;
        if (frontend.state == State::kResuming) {
          frontend.state = State::kResyncing;
        }
      } else {
        error = status.error_message();
      }
    } else if (call->sent_in == State::kResuming) {
      code = kStatusCodes;
      error = "answered OK, but the front end's lease had run out";
    } else {
      error = TakeAnswer(*call, frontend, now);
      if (!error.empty()) code = kStatusCodes;
    }
    if (!call->seat.jam.empty()) frontend.Tidy(call->seat.jam);
  }
  if (!error.empty()) {
    NoteError(code, absl::StrCat(StepName(call->step), " of ", frontend.id,
                                 " (user ", call->seat.user, ", jam ",
                                 call->seat.jam, "): ", error));
  } else {
    std::lock_guard<std::mutex> lock(counts_mu_);
    if (expected) {
      ++counts_.expected;
    } else {
      const uint64_t nanos = static_cast<uint64_t>(std::max<int64_t>(
          0,
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - call->due)
              .count()));
      ++counts_.latency[Histogram::Index(nanos)];
      ++counts_.calls;
      counts_.max_ns = std::max(counts_.max_ns, nanos);
    }
  }
  delete call;
  // Notified under the lock: once it is released, Run may tear the soak
  // down.
  std::lock_guard<std::mutex> lock(flight_mu_);
  --in_flight_;
  flight_cv_.notify_all();
}

std::string Soak::TakeAnswer(Call& call, FrontEnd& frontend,
                             Clock::time_point now) {
  // Only an active front end keeps what it was answered; the others'
  // reservations are removed with their session.
  const bool active = frontend.state == State::kActive;
  switch (call.step) {
    case Step::kArrive:
    case Step::kReload: {
      const v1::CurrentJamResponse& response = call.current_jam_response;
      if (response.jam_id().empty()) return "answered no jam";
      if (response.reservation_expires_unix_ms() == 0) {
        return absl::StrCat("answered ", response.jam_id(),
                            " without a reservation");
      }
      if (call.check && response.jam_id() != call.seat.jam) {
        return absl::StrCat("answered ", response.jam_id(),
                            ", not the jam where its seat is held");
      }
      if (active)
        frontend.arrivals.push_back({response.jam_id(), call.seat.user});
      return "";
    }
    case Step::kPeek:
      return call.current_jam_response.jam_id().empty() ? "answered no jam"
                                                        : "";
    case Step::kJoin: {
      const v1::AddUserResponse& response = call.add_user_response;
      if (!response.added()) {
        return absl::StrCat("answered added: false (redirect ",
                            response.redirect_jam_id(),
                            ") for a user with a reservation there");
      }
      // A member on the server whatever the state: EndSession counts it.
      frontend.members.push_back(call.seat);
      frontend.jams[call.seat.jam].users.push_back(call.seat.user);
      return "";
    }
    case Step::kLeave:
      if (!call.remove_user_response.removed()) {
        return "answered removed: false for a member";
      }
      if (call.hold && active) {
        frontend.held.push_back(
            {call.seat, now + std::chrono::milliseconds(kSoakHoldSeatMs / 2)});
      }
      return "";
    case Step::kRefresh:
      if (call.refresh_response.user_count() < call.listed) {
        return absl::StrFormat("answered %d members after listing %d",
                               call.refresh_response.user_count(), call.listed);
      }
      return "";
  }
  return "";
}

void Soak::KeepAliveLoop() {
  const absl::Duration every = config_.lease / 3;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      if (stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(every),
                            [this] { return stop_keepalives_; })) {
        return;
      }
    }
    std::vector<std::shared_ptr<FrontEnd>> live;
    {
      std::lock_guard<std::mutex> lock(live_mu_);
      live = live_;
    }
    for (const std::shared_ptr<FrontEnd>& frontend : live) {
      {
        std::lock_guard<std::mutex> lock(frontend->mu);
        if (frontend->state != State::kActive) continue;
        ++frontend->in_flight;  // so that a pause waits for it
      }
      const absl::Status status = frontend->control->KeepAlive().status();
      ++keepalives_;
      {
        std::lock_guard<std::mutex> lock(frontend->mu);
        --frontend->in_flight;
      }
      if (!status.ok()) {
        NoteError(static_cast<int>(status.code()),
                  absl::StrCat("KeepAlive of ", frontend->id, ": ",
                               status.message()));
      }
    }
  }
}

bool Soak::ChurnSleep(absl::Duration d) {
  std::unique_lock<std::mutex> lock(stop_mu_);
  return !stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(d),
                            [this] { return stop_churn_; });
}

bool Soak::WaitIdle(FrontEnd& frontend) {
  const Clock::time_point limit = Clock::now() +
                                  absl::ToChronoNanoseconds(config_.deadline) +
                                  std::chrono::seconds(1);
  while (Clock::now() < limit) {
    {
      std::lock_guard<std::mutex> lock(frontend.mu);
      if (frontend.in_flight == 0) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  NoteError(kStatusCodes, absl::StrCat("calls of ", frontend.id,
                                       " still in flight past their deadline"));
  return false;
}

void Soak::ChurnLoop() {
  for (int turn = 0; ChurnSleep(config_.churn_every); ++turn) {
    switch (turn % 3) {
      case 0:
        Expire();
        break;
      case 1:
        Pause();
        break;
      default:
        End();
        break;
    }
  }
}

void Soak::Expire() {
  const std::shared_ptr<FrontEnd> next = StartFrontEnd();
  const std::shared_ptr<FrontEnd> old = Oldest();
  if (old == nullptr || old == next) return;
  std::string jam;
  {
    std::lock_guard<std::mutex> lock(old->mu);
    old->state = State::kSilent;
    if (!old->members.empty()) jam = old->members.back().jam;
  }
  WaitIdle(*old);
  Forget(*old);
  {
    std::lock_guard<std::mutex> lock(gone_mu_);
    gone_.push_back({old->id, jam,
                     Clock::now() + absl::ToChronoNanoseconds(config_.lease +
                                                              kRemovalGrace)});
  }
  ++expired_;
  Progress(absl::StrCat(old->id, " goes silent (its lease runs out); ",
                        next != nullptr ? next->id : "no new front end",
                        " started"));
}

void Soak::Pause() {
  const std::shared_ptr<FrontEnd> frontend = Oldest();
  if (frontend == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(frontend->mu);
    frontend->state = State::kPaused;
    // Their reservations go with the session.
    frontend->arrivals.clear();
    frontend->held.clear();
  }
  if (!WaitIdle(*frontend)) return;
  Progress(absl::StrCat(frontend->id, " pauses past its lease"));
  if (!ChurnSleep(config_.lease + kPauseMargin)) return;
  {
    std::lock_guard<std::mutex> lock(frontend->mu);
    frontend->state = State::kResuming;
  }
  ++paused_;
  // Its next call must fail FAILED_PRECONDITION (Done: kResyncing).
  const Clock::time_point limit = Clock::now() + kResumeLimit;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(frontend->mu);
      if (frontend->state == State::kResyncing) break;
      if (Clock::now() >= limit) {
        frontend->state = State::kResyncing;
        NoteError(kStatusCodes,
                  absl::StrCat("no call of ", frontend->id,
                               " failed after its lease ran out"));
        break;
      }
    }
    if (!ChurnSleep(absl::Milliseconds(5))) return;
  }
  if (!WaitIdle(*frontend)) return;
  std::vector<BalancerClient::JamUsers> truth;
  uint64_t users = 0;
  {
    std::lock_guard<std::mutex> lock(frontend->mu);
    for (const auto& [jam, state] : frontend->jams) {
      if (state.users.empty()) continue;
      truth.push_back({jam, state.users});
      users += state.users.size();
    }
  }
  const absl::StatusOr<v1::SyncResponse> synced =
      frontend->control->Sync(config_.lease, truth);
  if (!synced.ok()) {
    NoteError(
        static_cast<int>(synced.status().code()),
        absl::StrCat("Sync of ", frontend->id,
                     " after its lease ran out: ", synced.status().message()));
    std::lock_guard<std::mutex> lock(frontend->mu);
    frontend->state = State::kSilent;  // left to expire
    return;
  }
  if (synced->user_count() != users || synced->jam_count() != truth.size()) {
    NoteError(kStatusCodes,
              absl::StrFormat("Sync of %s answered %d users in %d jams; it "
                              "sent %d in %d",
                              frontend->id, synced->user_count(),
                              synced->jam_count(), users, truth.size()));
  }
  {
    std::lock_guard<std::mutex> lock(frontend->mu);
    frontend->state = State::kActive;
    frontend->since = Clock::now();
  }
  ++resynced_;
  Progress(absl::StrFormat("%s resynced %d users in %d jams", frontend->id,
                           users, truth.size()));
}

void Soak::End() {
  const std::shared_ptr<FrontEnd> next = StartFrontEnd();
  const std::shared_ptr<FrontEnd> old = Oldest();
  if (old == nullptr || old == next) return;
  {
    std::lock_guard<std::mutex> lock(old->mu);
    old->state = State::kEnding;
  }
  if (WaitIdle(*old)) EndSession(*old);
  Forget(*old);
  ++ended_;
  Progress(absl::StrCat(old->id, " ends its session; ",
                        next != nullptr ? next->id : "no new front end",
                        " started"));
}

void Soak::EndSession(FrontEnd& frontend) {
  const absl::StatusOr<v1::EndSessionResponse> ended =
      frontend.control->EndSession();
  std::lock_guard<std::mutex> lock(frontend.mu);
  frontend.state = State::kGone;
  if (!ended.ok()) {
    NoteError(static_cast<int>(ended.status().code()),
              absl::StrCat("EndSession of ", frontend.id, ": ",
                           ended.status().message()));
  } else if (ended->removed_user_count() != frontend.members.size()) {
    NoteError(kStatusCodes,
              absl::StrFormat("EndSession of %s removed %d users; it had %d",
                              frontend.id, ended->removed_user_count(),
                              frontend.members.size()));
  }
}

void Soak::CheckGone() {
  std::vector<Gone> due;
  {
    std::lock_guard<std::mutex> lock(gone_mu_);
    const Clock::time_point now = Clock::now();
    auto past = std::partition(gone_.begin(), gone_.end(),
                               [now](const Gone& g) { return g.by > now; });
    due.assign(past, gone_.end());
    gone_.erase(past, gone_.end());
  }
  if (due.empty()) return;
  const absl::StatusOr<v1::ListSessionsResponse> sessions =
      stats_client_.ListSessions();
  if (!sessions.ok()) {
    NoteError(static_cast<int>(sessions.status().code()),
              absl::StrCat("ListSessions: ", sessions.status().message()));
    return;
  }
  for (const Gone& gone : due) {
    for (const v1::Session& session : sessions->sessions()) {
      if (session.frontend_id() == gone.id) {
        NoteError(kStatusCodes, absl::StrCat(gone.id,
                                             " is still listed by ListSessions "
                                             "well after its lease ran out"));
      }
    }
    if (gone.jam.empty()) continue;
    const absl::StatusOr<v1::GetJamResponse> jam =
        stats_client_.GetJam(gone.jam);
    if (!jam.ok()) {
      NoteError(
          static_cast<int>(jam.status().code()),
          absl::StrCat("GetJam ", gone.jam, ": ", jam.status().message()));
      continue;
    }
    for (const v1::JamMember& member : jam->members()) {
      if (member.frontend_id() == gone.id) {
        NoteError(kStatusCodes, absl::StrCat(member.user_id(), " of ", gone.id,
                                             " is still in ", gone.jam,
                                             " well after its lease ran out"));
      }
    }
  }
}

void Soak::AddCounts(const Counts& counts, SoakResult* result) {
  result->calls += counts.calls;
  result->late_starts += counts.late_starts;
  result->expected += counts.expected;
  for (int code = 0; code < kStatusCodes; ++code) {
    result->errors[code] += counts.errors[code];
  }
  result->bad_responses += counts.bad_responses;
}

SoakInterval Soak::Measure(Clock::time_point begin, Clock::time_point previous,
                           Clock::time_point now, bool warmup,
                           ProcessSample* process, SoakResult* result) {
  CheckGone();
  SoakInterval interval;
  interval.end_s = Seconds(now - begin);
  interval.length_s = Seconds(now - previous);
  interval.warmup = warmup;
  const absl::StatusOr<v1::GetStatsResponse> stats = stats_client_.GetStats();
  if (stats.ok()) {
    interval.jams = static_cast<int64_t>(stats->jam_count());
    interval.users = static_cast<int64_t>(stats->user_count());
    interval.reservations = static_cast<int64_t>(stats->reservation_count());
    interval.sessions = static_cast<int64_t>(stats->session_count());
  } else {
    NoteError(static_cast<int>(stats.status().code()),
              absl::StrCat("GetStats: ", stats.status().message()));
  }
  interval.start_lag_max_us = start_lag_max_ns_.exchange(0) / 1e3;
  const ProcessSample sample = SampleProcess(config_.server_pid);
  interval.rss_bytes = sample.rss_bytes;
  interval.fds = sample.fds;
  if (sample.cpu_seconds >= 0 && process->cpu_seconds >= 0 &&
      interval.length_s > 0) {
    interval.cpu_fraction =
        (sample.cpu_seconds - process->cpu_seconds) / interval.length_s;
  }
  *process = sample;
  interval.load1 = LoadAverage();
  interval.expired = expired_.exchange(0);
  interval.paused = paused_.exchange(0);
  interval.ended = ended_.exchange(0);
  result->expired += interval.expired;
  result->paused += interval.paused;
  result->ended += interval.ended;

  Counts counts;
  {
    std::lock_guard<std::mutex> lock(counts_mu_);
    std::swap(counts, counts_);
  }
  AddCounts(counts, result);
  interval.calls = counts.calls;
  interval.late_starts = counts.late_starts;
  interval.errors = CountErrors(counts.errors, counts.bad_responses);
  interval.expected = counts.expected;
  interval.p50_us = Histogram::PercentileNanos(counts.latency, counts.calls,
                                               0.5, counts.max_ns) /
                    1e3;
  interval.p99_us = Histogram::PercentileNanos(counts.latency, counts.calls,
                                               0.99, counts.max_ns) /
                    1e3;
  interval.max_us = counts.max_ns / 1e3;

  std::string churn;
  if (interval.expired + interval.paused + interval.ended > 0) {
    churn = absl::StrFormat("  left: %d expired, %d paused, %d ended",
                            interval.expired, interval.paused, interval.ended);
  }
  Progress(absl::StrFormat(
      "%s %7.0f calls/s  late %d  lag %.0fµs  errors %d  expected %d  p50 "
      "%.0fµs  p99 "
      "%.0fµs  max %.0fµs  rss %s MiB  fds %d  cpu %.2f  load %.1f  jams "
      "%d  users %d  "
      "reservations %d  sessions %d%s",
      warmup ? "warm-up" : "soak   ",
      interval.length_s > 0 ? interval.calls / interval.length_s : 0,
      interval.late_starts, interval.start_lag_max_us, interval.errors,
      interval.expected, interval.p50_us, interval.p99_us, interval.max_us,
      Mib(interval.rss_bytes), interval.fds, interval.cpu_fraction,
      interval.load1, interval.jams, interval.users, interval.reservations,
      interval.sessions, churn));
  return interval;
}

void Soak::Finish(SoakResult* result) {
  std::vector<std::shared_ptr<FrontEnd>> live;
  {
    std::lock_guard<std::mutex> lock(live_mu_);
    live = live_;
  }
  for (const std::shared_ptr<FrontEnd>& frontend : live) {
    {
      std::lock_guard<std::mutex> lock(frontend->mu);
      if (frontend->state != State::kActive) continue;  // it expires
      frontend->state = State::kEnding;
    }
    if (WaitIdle(*frontend)) EndSession(*frontend);
  }
  // The others' leases run out; their removal takes a moment.
  const Clock::time_point limit =
      Clock::now() +
      absl::ToChronoNanoseconds(config_.lease + kPauseMargin + kRemovalGrace);
  absl::StatusOr<v1::GetStatsResponse> stats = stats_client_.GetStats();
  while (stats.ok() && Clock::now() < limit &&
         (stats->session_count() > 0 || stats->user_count() > 0 ||
          stats->reservation_count() > 0 ||
          (config_.prepopulate == 0 && stats->jam_count() > 0))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stats = stats_client_.GetStats();
  }
  if (!stats.ok()) {
    NoteError(static_cast<int>(stats.status().code()),
              absl::StrCat("GetStats: ", stats.status().message()));
  } else {
    result->final_jams = static_cast<int64_t>(stats->jam_count());
    result->final_users = static_cast<int64_t>(stats->user_count());
    result->final_reservations =
        static_cast<int64_t>(stats->reservation_count());
    result->final_sessions = static_cast<int64_t>(stats->session_count());
    if (config_.prepopulate == 0 &&
        (stats->jam_count() > 0 || stats->user_count() > 0 ||
         stats->reservation_count() > 0 || stats->session_count() > 0)) {
      NoteError(
          kStatusCodes,
          absl::StrFormat("after every front end left, the balancer "
                          "still holds %d jams, %d users, %d "
                          "reservations and %d sessions",
                          stats->jam_count(), stats->user_count(),
                          stats->reservation_count(), stats->session_count()));
    }
  }
  result->final_rss_bytes = SampleProcess(config_.server_pid).rss_bytes;
}

SoakResult Soak::Run() {
  SoakResult result;
  begin_ = Clock::now();
  for (int f = 0; f < config_.frontends; ++f) StartFrontEnd();
  const Clock::time_point begin = Clock::now();
  const Clock::time_point warmup_end =
      begin + absl::ToChronoNanoseconds(config_.warmup);
  const Clock::time_point end =
      warmup_end + absl::ToChronoNanoseconds(config_.duration);
  std::thread scheduler([this, begin, end] { Schedule(begin, end); });
  std::thread keepalives([this] { KeepAliveLoop(); });
  std::thread churn([this] { ChurnLoop(); });

  ProcessSample process = SampleProcess(config_.server_pid);
  const auto every = absl::ToChronoNanoseconds(config_.interval);
  Clock::time_point previous = begin;
  while (previous < end) {
    const Clock::time_point next = std::min(previous + every, end);
    std::this_thread::sleep_until(next);
    result.intervals.push_back(
        Measure(begin, previous, next, next <= warmup_end, &process, &result));
    previous = next;
  }
  scheduler.join();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_churn_ = true;
  }
  stop_cv_.notify_all();
  churn.join();
  {
    std::unique_lock<std::mutex> lock(flight_mu_);
    result.drained = flight_cv_.wait_for(
        lock,
        absl::ToChronoNanoseconds(config_.deadline) + std::chrono::seconds(5),
        [this] { return in_flight_ == 0; });
  }
  if (result.drained) Finish(&result);
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_keepalives_ = true;
  }
  stop_cv_.notify_all();
  keepalives.join();
  Counts rest;
  {
    std::lock_guard<std::mutex> lock(counts_mu_);
    std::swap(rest, counts_);
    result.first_errors = first_errors_;
  }
  AddCounts(rest, &result);  // the drain's calls and Finish's errors
  result.keepalives = keepalives_.load();
  result.frontends_started = started_.load();
  result.resynced = resynced_.load();
  result.expired += expired_.exchange(0);
  result.paused += paused_.exchange(0);
  result.ended += ended_.exchange(0);
  return result;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string CriterionValue(const SoakCriterion& criterion) {
  if (!criterion.known) return "unknown";
  if (criterion.name == "rss_spread") {
    return absl::StrFormat("%.2f%%", criterion.value * 100);
  }
  if (criterion.name == "p99_drift") {
    return absl::StrFormat("%.2fx", criterion.value);
  }
  return absl::StrFormat("%.0f", criterion.value);
}

std::string Verdict(const SoakCriterion& criterion) {
  if (!criterion.checked) return "printed only";
  return criterion.met ? "PASS" : "FAIL";
}

// A JSON number, or -1 for unknown, as the report's other fields.
std::string JsonNumber(double value) { return absl::StrFormat("%.6g", value); }

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<int>(c));
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

}  // namespace

SoakSummary SummarizeSoak(const SoakResult& result, const Config& config) {
  SoakSummary summary;
  std::vector<const SoakInterval*> measured;
  for (const SoakInterval& interval : result.intervals) {
    if (!interval.warmup) measured.push_back(&interval);
  }
  summary.measured_intervals = static_cast<int>(measured.size());
  double calls = 0;
  double seconds = 0;
  std::vector<double> p99s;
  // RSS samples in MiB against their time in hours, for the slope.
  std::vector<std::pair<double, double>> rss;
  for (const SoakInterval* interval : measured) {
    calls += static_cast<double>(interval->calls);
    if (interval->late_starts * 100 > interval->calls ||
        interval->start_lag_max_us > kSoakStartLagLimitUs ||
        static_cast<double>(interval->calls) <
            0.98 * config.rate * interval->length_s) {
      ++summary.overloaded_intervals;
    }
    summary.load1_max = std::max(summary.load1_max, interval->load1);
    seconds += interval->length_s;
    p99s.push_back(interval->p99_us);
    if (interval->rss_bytes < 0) continue;
    rss.emplace_back(interval->end_s / 3600, interval->rss_bytes / 1048576.0);
    if (summary.rss_min_bytes < 0 ||
        interval->rss_bytes < summary.rss_min_bytes) {
      summary.rss_min_bytes = interval->rss_bytes;
    }
    summary.rss_max_bytes =
        std::max(summary.rss_max_bytes, interval->rss_bytes);
    if (summary.rss_first_bytes < 0)
      summary.rss_first_bytes = interval->rss_bytes;
    summary.rss_last_bytes = interval->rss_bytes;
  }
  summary.calls_per_s = seconds > 0 ? calls / seconds : 0;
  if (summary.rss_min_bytes > 0) {
    summary.rss_spread =
        static_cast<double>(summary.rss_max_bytes - summary.rss_min_bytes) /
        static_cast<double>(summary.rss_min_bytes);
  }
  if (rss.size() >= 2) {
    double mean_t = 0;
    double mean_m = 0;
    for (const auto& [t, m] : rss) {
      mean_t += t / rss.size();
      mean_m += m / rss.size();
    }
    double covariance = 0;
    double variance = 0;
    for (const auto& [t, m] : rss) {
      covariance += (t - mean_t) * (m - mean_m);
      variance += (t - mean_t) * (t - mean_t);
    }
    if (variance > 0) summary.rss_slope_mib_per_h = covariance / variance;
  }
  if (!p99s.empty()) {
    summary.p99_min_us = *std::min_element(p99s.begin(), p99s.end());
    summary.p99_max_us = *std::max_element(p99s.begin(), p99s.end());
    const size_t third = std::max<size_t>(1, p99s.size() / 3);
    summary.p99_first_third_us =
        Median(std::vector<double>(p99s.begin(), p99s.begin() + third));
    summary.p99_last_third_us =
        Median(std::vector<double>(p99s.end() - third, p99s.end()));
    if (summary.p99_first_third_us > 0) {
      summary.p99_drift =
          summary.p99_last_third_us / summary.p99_first_third_us;
    }
  }

  SoakCriterion errors;
  errors.name = "errors";
  errors.text =
      "errors (failed calls other than the expected ones, answers "
      "that do not fit, failed checks) = 0";
  errors.value = static_cast<double>(result.ErrorCount());
  errors.met = result.ErrorCount() == 0 && result.drained;
  summary.criteria.push_back(errors);

  SoakCriterion spread;
  spread.name = "rss_spread";
  spread.text = absl::StrFormat(
      "server RSS after the warm-up: (max - min) / min <= %.3g%%",
      config.max_rss_spread * 100);
  spread.value = summary.rss_spread;
  spread.limit = config.max_rss_spread;
  spread.known = summary.rss_min_bytes > 0;
  spread.checked = config.max_rss_spread > 0;
  spread.met =
      !spread.checked || (spread.known && spread.value <= spread.limit);
  summary.criteria.push_back(spread);

  SoakCriterion drift;
  drift.name = "p99_drift";
  drift.text = absl::StrFormat(
      "p99 drift after the warm-up: median p99 of the last third of the "
      "intervals / of the first third <= %.3g",
      config.max_p99_drift);
  drift.value = summary.p99_drift;
  drift.limit = config.max_p99_drift;
  drift.known = summary.p99_first_third_us > 0;
  drift.checked = config.max_p99_drift > 0;
  drift.met = !drift.checked || (drift.known && drift.value <= drift.limit);
  summary.criteria.push_back(drift);

  summary.passed = true;
  for (const SoakCriterion& criterion : summary.criteria) {
    if (!criterion.met) summary.passed = false;
  }
  return summary;
}

SoakResult RunSoak(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const Config& config) {
  // Calls in flight when the soak is torn down would point into it: a soak
  // that did not drain is left alone (main ends the process).
  auto* soak = new Soak(channels, config);
  SoakResult result = soak->Run();
  if (result.drained) delete soak;
  return result;
}

void PrintSoakReport(const Config& config, const SoakResult& result,
                     const SoakSummary& summary, std::ostream& out) {
  const NamedErrors errors = NameErrors(result.errors, result.bad_responses);
  if (config.json) {
    std::string json = absl::StrFormat(
        "{\"workload\":\"soak\",\"target\":%s,\"rate\":%.1f,"
        "\"concurrency\":%d,\"channels\":%d,\"frontends\":%d,"
        "\"population\":%d,\"lease_s\":%.3f,\"churn_every_s\":%.3f,"
        "\"interval_s\":%.3f,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
        "\"server_pid\":%d,\"intervals\":[",
        JsonString(config.target), config.rate, config.concurrency,
        config.channels, config.frontends, config.population,
        absl::ToDoubleSeconds(config.lease),
        absl::ToDoubleSeconds(config.churn_every),
        absl::ToDoubleSeconds(config.interval),
        absl::ToDoubleSeconds(config.warmup),
        absl::ToDoubleSeconds(config.duration), config.server_pid);
    json += absl::StrJoin(
        result.intervals, ",", [](std::string* s, const SoakInterval& i) {
          absl::StrAppendFormat(
              s,
              "{\"end_s\":%.3f,\"length_s\":%.3f,\"warmup\":%s,\"calls\":%d,"
              "\"calls_per_s\":%.1f,\"late_starts\":%d,"
              "\"start_lag_max_us\":%.1f,\"errors\":%d,"
              "\"expected\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,"
              "\"max_us\":%.1f,\"rss_bytes\":%d,\"fds\":%d,\"cpu\":%s,"
              "\"load1\":%s,\"jams\":%d,\"users\":%d,\"reservations\":%d,"
              "\"sessions\":%d,\"expired\":%d,\"paused\":%d,\"ended\":%d}",
              i.end_s, i.length_s, i.warmup ? "true" : "false", i.calls,
              i.length_s > 0 ? i.calls / i.length_s : 0, i.late_starts,
              i.start_lag_max_us, i.errors, i.expected, i.p50_us, i.p99_us,
              i.max_us, i.rss_bytes, i.fds, JsonNumber(i.cpu_fraction),
              JsonNumber(i.load1), i.jams, i.users, i.reservations, i.sessions,
              i.expired, i.paused, i.ended);
        });
    absl::StrAppendFormat(
        &json,
        "],\"calls\":%d,\"late_starts\":%d,\"expected_failures\":%d,"
        "\"keepalives\":%d,\"churn\":{\"started\":%d,\"expired\":%d,"
        "\"paused\":%d,\"resynced\":%d,\"ended\":%d},\"final\":{\"jams\":%d,"
        "\"users\":%d,\"reservations\":%d,\"sessions\":%d,\"rss_bytes\":%d},"
        "\"summary\":{\"measured_intervals\":%d,"
        "\"overloaded_intervals\":%d,\"load1_max\":%s,\"calls_per_s\":%.1f,"
        "\"rss_min_bytes\":%d,\"rss_max_bytes\":%d,\"rss_first_bytes\":%d,"
        "\"rss_last_bytes\":%d,\"rss_spread\":%s,\"rss_slope_mib_per_h\":%s,"
        "\"p99_min_us\":%.1f,\"p99_max_us\":%.1f,\"p99_first_third_us\":%.1f,"
        "\"p99_last_third_us\":%.1f,\"p99_drift\":%s},\"criteria\":[",
        result.calls, result.late_starts, result.expected, result.keepalives,
        result.frontends_started, result.expired, result.paused,
        result.resynced, result.ended, result.final_jams, result.final_users,
        result.final_reservations, result.final_sessions,
        result.final_rss_bytes, summary.measured_intervals,
        summary.overloaded_intervals, JsonNumber(summary.load1_max),
        summary.calls_per_s, summary.rss_min_bytes, summary.rss_max_bytes,
        summary.rss_first_bytes, summary.rss_last_bytes,
        JsonNumber(summary.rss_spread), JsonNumber(summary.rss_slope_mib_per_h),
        summary.p99_min_us, summary.p99_max_us, summary.p99_first_third_us,
        summary.p99_last_third_us, JsonNumber(summary.p99_drift));
    json += absl::StrJoin(
        summary.criteria, ",", [](std::string* s, const SoakCriterion& c) {
          absl::StrAppendFormat(
              s,
              "{\"name\":\"%s\",\"text\":%s,\"value\":%s,\"limit\":%s,"
              "\"known\":%s,\"checked\":%s,\"met\":%s}",
              c.name, JsonString(c.text), JsonNumber(c.value),
              JsonNumber(c.limit), c.known ? "true" : "false",
              c.checked ? "true" : "false", c.met ? "true" : "false");
        });
    absl::StrAppendFormat(&json, "],\"passed\":%s,\"errors_total\":%d,",
                          summary.passed ? "true" : "false",
                          result.ErrorCount());
    json += "\"errors\":{" + ErrorsJsonMembers(errors) + "},\"first_errors\":[";
    json += absl::StrJoin(
        result.first_errors, ",",
        [](std::string* s, const std::string& e) { s->append(JsonString(e)); });
    json += "]}\n";
    out << json;
    return;
  }
  out << absl::StrFormat(
      "workload     soak on %s: open loop at %.0f calls/s, %d in flight at "
      "most, %d channels\n"
      "front ends   %d at a time, lease %s, keepalive every %s, one leaves "
      "every %s (expire, pause, end in turn); %d users in all\n"
      "warm-up      %s (its intervals are left out of the RSS and p99 "
      "criteria; errors count throughout), then %s\n",
      config.target, config.rate, config.concurrency, config.channels,
      config.frontends, absl::FormatDuration(config.lease),
      absl::FormatDuration(config.lease / 3),
      absl::FormatDuration(config.churn_every), config.population,
      absl::FormatDuration(config.warmup),
      absl::FormatDuration(config.duration));
  out << "      end_s  calls/s   late  errors  expected   p50_us    p99_us "
         "    max_us  rss_MiB  fds   cpu  load    jams   users  resv  sess  "
         "left\n";
  for (const SoakInterval& i : result.intervals) {
    out << absl::StrFormat(
        "  %s %6.0f %8.0f %6d %7d %9d %8.0f %9.0f %10.0f %8s %4d %5s %5.1f "
        "%7d %7d %5d %5d  %s\n",
        i.warmup ? "w" : " ", i.end_s,
        i.length_s > 0 ? i.calls / i.length_s : 0, i.late_starts, i.errors,
        i.expected, i.p50_us, i.p99_us, i.max_us, Mib(i.rss_bytes), i.fds,
        i.cpu_fraction < 0 ? std::string("?")
                           : absl::StrFormat("%.2f", i.cpu_fraction),
        i.load1, i.jams, i.users, i.reservations, i.sessions,
        absl::StrCat(i.expired, "x/", i.paused, "p/", i.ended, "e"));
  }
  out << absl::StrFormat(
      "calls        %d answered OK, %.0f calls/s after the warm-up; %d late "
      "starts; %d keepalives\n"
      "churn        %d front ends started; %d expired, %d paused (%d "
      "resynced after FAILED_PRECONDITION: %d such failures, expected), %d "
      "ended\n"
      "after        %d jams, %d users, %d reservations, %d sessions; server "
      "RSS %s MiB\n",
      result.calls, summary.calls_per_s, result.late_starts, result.keepalives,
      result.frontends_started, result.expired, result.paused, result.resynced,
      result.expected, result.ended, result.final_jams, result.final_users,
      result.final_reservations, result.final_sessions,
      Mib(result.final_rss_bytes));
  out << absl::StrFormat(
      "RSS          after the warm-up (%d intervals): min %s MiB, max %s "
      "MiB, spread %.2f%%; first %s, last %s MiB; slope %+.2f MiB/h\n"
      "p99          after the warm-up, per interval: min %.0f µs, max %.0f "
      "µs; median of the first third %.0f µs, of the last third %.0f µs "
      "(%.2fx)\n",
      summary.measured_intervals, Mib(summary.rss_min_bytes),
      Mib(summary.rss_max_bytes), summary.rss_spread * 100,
      Mib(summary.rss_first_bytes), Mib(summary.rss_last_bytes),
      summary.rss_slope_mib_per_h, summary.p99_min_us, summary.p99_max_us,
      summary.p99_first_third_us, summary.p99_last_third_us, summary.p99_drift);
  out << absl::StrFormat(
      "overload     %d of the %d intervals after the warm-up did not keep up "
      "(late starts above 1%%, a call started over %.0f ms late, or under "
      "98%% of the rate); machine load average (1 min) up to %.1f\n",
      summary.overloaded_intervals, summary.measured_intervals,
      kSoakStartLagLimitUs / 1e3, summary.load1_max);
  for (const SoakCriterion& criterion : summary.criteria) {
    out << absl::StrFormat("criterion    %s: %s  %s\n", criterion.text,
                           CriterionValue(criterion), Verdict(criterion));
  }
  PrintErrorsLine(errors, out);
  for (const std::string& error : result.first_errors) {
    out << "  " << error << "\n";
  }
  out << "result       " << (summary.passed ? "PASS" : "FAIL") << "\n";
}

}  // namespace bench
}  // namespace jambalancer
