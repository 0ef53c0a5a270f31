// frontend-simulator: a small front end for fault tests with real processes.
//
// It holds its own truth, as a real front end's sockets would: which of its
// users is in which jam, and since when. It Starts a FrontEndSession, then
// places --users arrivals one after another (CurrentJam with the user's id,
// then AddUser; on added=false it follows redirect_jam_id), and now and then
// one of its users leaves (RemoveUser). Every call goes through
// FrontEndSession::Call, so after a balancer restart the simulator resyncs
// its truth and retries; calls that fail UNAVAILABLE (the balancer is down)
// are retried with a short, bounded backoff.
//
// Every 50 ms it writes its truth as JSON to --report (a temporary file,
// then rename): the users present per jam, and the history of every stay
// [jam, user, joined_unix_us, left_unix_us or -1]. A stay starts when
// AddUser answered added=true and ends before RemoveUser is sent, so it lies
// within the balancer's own record of that user. After the arrivals it keeps
// its users (and its session) for --hold, then ends its session and exits;
// --seconds bounds the whole run. Exit status 0 unless a call failed for good.
// The report goes on being written (done=true) during --hold, so that its
// syncs and keep_alives show what happened meanwhile.
//
// The report also times every call the simulator makes (each attempt of
// Retry, a resync inside it included; not the keep-alive thread's): "calls"
// lists [sent_unix_us, latency_us] of each, and "latency" sums them up
// (count, p50_ms, p99_ms, max_ms, nearest rank).
//
// --initial_users=N adds N users that the front end hosts from the start,
// in jams of --max_users (ids <frontend_id>-j<k> and <frontend_id>-i<n>):
// they are part of every Sync's truth (Start's places them) and never
// leave. The report counts them ("initial_users") but lists neither them
// nor their jams, so that a large front end's report stays small.
//
// --target may name several replicas of a balancer that runs with
// --etcd_endpoints ("host:port,host:port"): the client then follows the
// leader (BalancerClient::Connect). The report shows the epochs the
// simulator saw (trailing metadata jam-balancer-epoch, read by a client
// interceptor, so as the wire carried them, before the client's own check):
// "epochs" lists [unix_us, epoch] each time an answer (of any call, on any
// thread, refusals included) carried an epoch above all earlier ones;
// "answers" lists [unix_us, epoch, highest_before] for every call Retry
// returned OK, in the order they were returned: the epoch of the answer
// accepted (0: none) and the highest epoch any answer had carried before
// it was received; "highest_epoch" is the client's highest_epoch(). With a
// balancer that runs alone, every epoch is 0. "failures" lists
// [unix_us, status] of every call that failed for good (counted in
// "errors"; "last_error" is the last of them).

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/interceptor.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"
#include "client/frontend_session.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "host:port of the balancer, or host:port,host:port,... of its "
          "replicas (the client follows the leader)");
ABSL_FLAG(std::string, frontend_id, "", "this front end's id (required)");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(3), "the session's lease");
ABSL_FLAG(int, users, 50, "how many users arrive");
ABSL_FLAG(int, max_users, 7,
          "the balancer's --max_users; the simulator counts its own jams "
          "holding more as violations");
ABSL_FLAG(int, seconds, 60, "bound of the whole run, in seconds");
ABSL_FLAG(std::string, report, "", "path of the JSON report (required)");
ABSL_FLAG(absl::Duration, pace, absl::Milliseconds(40),
          "pause between two arrivals");
ABSL_FLAG(absl::Duration, hold, absl::ZeroDuration(),
          "after the arrivals, keep the users connected this long before "
          "ending the session and exiting");
ABSL_FLAG(int, remove_every, 4,
          "on average one user in this many arrivals leaves (0: none)");
ABSL_FLAG(uint32_t, seed, 1, "seed of the random choices");
ABSL_FLAG(int, initial_users, 0,
          "users hosted from the start, in jams of --max_users, placed by "
          "Start's Sync; they never leave");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA of the balancer's certificate: talk TLS (as jamctl's)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate (mutual TLS); needs --tls_key");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(absl::Duration, deadline, absl::ZeroDuration(),
          "deadline of each call, a Sync's whole stream included (0: a "
          "quarter of --lease, at most 5s)");

namespace jambalancer {
namespace {

// One user's stay in a jam, in the simulator's truth.
struct Stay {
  std::string jam;
  std::string user;
  int64_t joined_us;
  int64_t left_us = -1;  // -1: still there.
};

std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) {  // E.g. in an error message.
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
      continue;
    }
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

// The nearest-rank `percent` percentile of `sorted_us`, in ms.
double PercentileMs(const std::vector<int64_t>& sorted_us, int percent) {
  if (sorted_us.empty()) return 0;
  const size_t rank = (sorted_us.size() * percent + 99) / 100;
  return static_cast<double>(sorted_us[std::max<size_t>(rank, 1) - 1]) / 1e3;
}

// The epochs the process's calls saw, as the wire carried them: a global
// client interceptor reads every answer's jam-balancer-epoch trailer (for a
// blocking call, on the thread that made it, before the client looks at
// it).
class EpochLog {
 public:
  // One answer: its epoch (0: none) and the highest an earlier answer bore.
  struct Answer {
    int64_t epoch = 0;
    int64_t highest_before = 0;
  };

  static EpochLog& Get() {
    static EpochLog* const log = new EpochLog();
    return *log;
  }

  void Received(int64_t epoch) {
    Answer answer;
    {
      absl::MutexLock lock(&mu_);
      answer = {epoch, highest_};
      if (epoch > highest_) {
        highest_ = epoch;
        rises_.emplace_back(NowUs(), epoch);
      }
    }
    last_on_this_thread_ = answer;
  }

  // The last answer this thread received (epoch -1: none since Forget).
  static Answer LastOnThisThread() { return last_on_this_thread_; }
  static void Forget() { last_on_this_thread_ = {-1, -1}; }

  // [unix_us, epoch] each time the highest epoch seen rose.
  std::vector<std::pair<int64_t, int64_t>> Rises() {
    absl::MutexLock lock(&mu_);
    return rises_;
  }

 private:
  absl::Mutex mu_;
  int64_t highest_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<int64_t, int64_t>> rises_ ABSL_GUARDED_BY(mu_);
  static thread_local Answer last_on_this_thread_;
};

thread_local EpochLog::Answer EpochLog::last_on_this_thread_{-1, -1};

class EpochInterceptor : public grpc::experimental::Interceptor {
 public:
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS)) {
      int64_t epoch = 0;
      if (const auto* trailers = methods->GetRecvTrailingMetadata()) {
        for (const auto& [key, value] : *trailers) {
          if (absl::string_view(key.data(), key.size()) ==
              BalancerClient::kEpochMetadataKey) {
            absl::SimpleAtoi(absl::string_view(value.data(), value.size()),
                             &epoch);
          }
        }
      }
      EpochLog::Get().Received(epoch);
    }
    methods->Proceed();
  }
};

class EpochInterceptorFactory
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new EpochInterceptor();
  }
};

class Simulator {
 public:
  Simulator(BalancerClient& client, std::string frontend_id,
            absl::Duration lease, absl::Time end, int max_users,
            int initial_users)
      : client_(client),
        frontend_id_(std::move(frontend_id)),
        end_(end),
        max_users_(max_users),
        initial_users_(initial_users),
        session_(client, lease, [this] { return Truth(); }) {
    for (int i = 0; i < initial_users; ++i) {
      if (i % std::max(max_users, 1) == 0) {
        initial_jams_.push_back(
            {absl::StrCat(frontend_id_, "-j", initial_jams_.size()), {}});
      }
      initial_jams_.back().user_ids.push_back(
          absl::StrCat(frontend_id_, "-i", i));
    }
  }

  absl::Status Start() {
    absl::Status status;
    do {
      status = session_.Start();
      if (status.ok()) return status;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < end_);
    return status;
  }

  // Places users; returns false if the run was cut by --seconds.
  bool Run(int users, absl::Duration pace, int remove_every, uint32_t seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < users; ++i) {
      if (absl::Now() >= end_) return false;
      Arrive(absl::StrCat(frontend_id_, "-u", i));
      if (remove_every > 0 && rng() % remove_every == 0) LeaveOne(rng);
      absl::SleepFor(pace);
    }
    return true;
  }

  absl::Status End() { return session_.End().status(); }

  // Writes the report atomically.
  bool WriteReport(const std::string& path, bool done, bool timed_out) {
    std::string json;
    {
      absl::MutexLock lock(&mu_);
      std::map<std::string, std::vector<std::string>> jams;
      std::vector<std::string> history;
      for (const Stay& stay : stays_) {
        if (stay.left_us < 0) jams[stay.jam].push_back(Quote(stay.user));
        history.push_back(absl::StrCat("[", Quote(stay.jam), ",",
                                       Quote(stay.user), ",", stay.joined_us,
                                       ",", stay.left_us, "]"));
      }
      std::vector<std::string> jam_entries;
      for (auto& [jam, users] : jams) {
        std::sort(users.begin(), users.end());
        jam_entries.push_back(
            absl::StrCat(Quote(jam), ":[", absl::StrJoin(users, ","), "]"));
      }
      std::vector<int64_t> latencies_us;
      std::vector<std::string> calls;
      for (const auto& [sent_us, latency_us] : calls_) {
        latencies_us.push_back(latency_us);
        calls.push_back(absl::StrCat("[", sent_us, ",", latency_us, "]"));
      }
      std::sort(latencies_us.begin(), latencies_us.end());
      std::vector<std::string> failures;
      for (const auto& [failed_us, status] : failures_) {
        failures.push_back(
            absl::StrCat("[", failed_us, ",", Quote(status), "]"));
      }
      std::vector<std::string> answers;
      for (const auto& [received_us, answer] : answers_) {
        answers.push_back(absl::StrCat("[", received_us, ",", answer.epoch, ",",
                                       answer.highest_before, "]"));
      }
      absl::StrAppend(
          &json, "{\"frontend_id\":", Quote(frontend_id_),
          ",\"written_unix_us\":", NowUs(),
          ",\"done\":", done ? "true" : "false",
          ",\"timed_out\":", timed_out ? "true" : "false",
          ",\"arrivals\":", arrivals_, ",\"added\":", added_,
          ",\"redirects\":", redirects_, ",\"removed\":", removed_,
          ",\"retries\":", retries_.load(), ",\"errors\":", errors_,
          ",\"gave_up\":", gave_up_, ",\"violations\":", violations_,
          ",\"syncs\":", session_.sync_count(),
          ",\"keep_alives\":", session_.keep_alive_count(),
          ",\"initial_users\":", initial_users_,
          ",\"highest_epoch\":", client_.highest_epoch(), ",\"epochs\":[",
          absl::StrJoin(EpochLog::Get().Rises(), ",", PairFormatter()),
          "],\"answers\":[", absl::StrJoin(answers, ","), "]",
          ",\"failures\":[", absl::StrJoin(failures, ","), "]",
          ",\"latency\":{\"count\":", latencies_us.size(),
          ",\"p50_ms\":", PercentileMs(latencies_us, 50),
          ",\"p99_ms\":", PercentileMs(latencies_us, 99),
          ",\"max_ms\":", PercentileMs(latencies_us, 100), "}",
          ",\"last_error\":", Quote(last_error_), ",\"truth_calls_unix_ms\":[",
          absl::StrJoin(truth_calls_ms_, ","), "],\"jams\":{",
          absl::StrJoin(jam_entries, ","), "},\"history\":[",
          absl::StrJoin(history, ","), "],\"calls\":[",
          absl::StrJoin(calls, ","), "]}\n");
    }
    const std::string temp = path + ".tmp";
    std::FILE* file = std::fopen(temp.c_str(), "w");
    if (file == nullptr) return false;
    const bool written =
        std::fwrite(json.data(), 1, json.size(), file) == json.size();
    if (std::fclose(file) != 0 || !written) return false;
    return std::rename(temp.c_str(), path.c_str()) == 0;
  }

  int errors() {
    absl::MutexLock lock(&mu_);
    return errors_ + gave_up_ + violations_;
  }

 private:
  static const absl::Status& StatusOf(const absl::Status& status) {
    return status;
  }
  template <typename T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
    return result.status();
  }

  // Formats [first,second].
  struct PairFormatter {
    void operator()(std::string* out,
                    const std::pair<int64_t, int64_t>& pair) const {
      absl::StrAppend(out, "[", pair.first, ",", pair.second, "]");
    }
  };

  // session_.Call(fn), retried with a short backoff while the balancer is
  // unreachable or the resync failed, for at most 20 s (and not past end_).
  template <typename Fn>
  std::invoke_result_t<Fn&, BalancerClient&> Retry(Fn fn) {
    const absl::Time give_up = std::min(end_, absl::Now() + absl::Seconds(20));
    absl::Duration backoff = absl::Milliseconds(20);
    while (true) {
      const absl::Time sent = absl::Now();
      EpochLog::Forget();
      auto result = session_.Call(fn);
      RecordCall(sent, absl::Now() - sent);
      // The answer returned is the last this thread received.
      if (StatusOf(result).ok()) RecordAnswer(EpochLog::LastOnThisThread());
      const absl::StatusCode code = StatusOf(result).code();
      const bool transient = code == absl::StatusCode::kUnavailable ||
                             code == absl::StatusCode::kDeadlineExceeded ||
                             code == absl::StatusCode::kFailedPrecondition;
      if (!transient || absl::Now() + backoff >= give_up) {
        if (!StatusOf(result).ok()) Failed(StatusOf(result));
        return result;
      }
      ++retries_;
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Milliseconds(200));
    }
  }

  void RecordCall(absl::Time sent, absl::Duration latency) {
    absl::MutexLock lock(&mu_);
    calls_.emplace_back(absl::ToUnixMicros(sent),
                        absl::ToInt64Microseconds(latency));
  }

  void RecordAnswer(const EpochLog::Answer& answer) {
    absl::MutexLock lock(&mu_);
    answers_.emplace_back(NowUs(), answer);
  }

  void Failed(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    ++errors_;
    last_error_ = status.ToString();
    failures_.emplace_back(NowUs(), last_error_);
  }

  // What the front end hosts, for a Sync: its present users, and each
  // joining user in the jam it was sent to (so the Sync keeps its seat).
  std::vector<BalancerClient::JamUsers> Truth() {
    absl::MutexLock lock(&mu_);
    truth_calls_ms_.push_back(absl::ToUnixMillis(absl::Now()));
    std::map<std::string, std::vector<std::string>> jams;
    for (const Stay& stay : stays_) {
      if (stay.left_us < 0) jams[stay.jam].push_back(stay.user);
    }
    for (const auto& [user, jam] : joining_) jams[jam].push_back(user);
    std::vector<BalancerClient::JamUsers> truth = initial_jams_;
    for (auto& [jam, users] : jams) truth.push_back({jam, std::move(users)});
    return truth;
  }

  void SetJoining(const std::string& user, const std::string& jam) {
    absl::MutexLock lock(&mu_);
    if (jam.empty()) {
      joining_.erase(user);
    } else {
      joining_[user] = jam;
    }
  }

  void Arrive(const std::string& user) {
    {
      absl::MutexLock lock(&mu_);
      ++arrivals_;
    }
    auto current = Retry([&](BalancerClient& c) {
      return c.CurrentJam(user, absl::Minutes(1));
    });
    if (!current.ok()) return;
    std::string jam = current->jam_id();
    for (int attempt = 0; attempt < 10; ++attempt) {
      // Counted as present before AddUser, so a resync keeps the seat.
      SetJoining(user, jam);
      auto added =
          Retry([&](BalancerClient& c) { return c.AddUser(jam, user); });
      if (!added.ok()) break;
      if (added->added()) {
        absl::MutexLock lock(&mu_);
        joining_.erase(user);
        stays_.push_back({jam, user, NowUs()});
        ++added_;
        int here = 0;
        for (const Stay& stay : stays_) {
          if (stay.left_us < 0 && stay.jam == jam) ++here;
        }
        if (here > max_users_) ++violations_;
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        ++redirects_;
      }
      jam = added->redirect_jam_id();
      if (jam.empty()) break;
    }
    SetJoining(user, "");
    absl::MutexLock lock(&mu_);
    ++gave_up_;
  }

  // One present user leaves: gone from the truth first, then RemoveUser.
  void LeaveOne(std::mt19937& rng) {
    std::string jam, user;
    {
      absl::MutexLock lock(&mu_);
      std::vector<Stay*> present;
      for (Stay& stay : stays_) {
        if (stay.left_us < 0) present.push_back(&stay);
      }
      if (present.empty()) return;
      Stay* leaving = present[rng() % present.size()];
      leaving->left_us = NowUs();
      jam = leaving->jam;
      user = leaving->user;
      ++removed_;
    }
    // removed=false is fine: a resync may already have dropped the user.
    Retry([&](BalancerClient& c) {
      return c.RemoveUser(jam, user);
    }).IgnoreError();
  }

  BalancerClient& client_;
  const std::string frontend_id_;
  const absl::Time end_;
  const int max_users_;
  const int initial_users_;
  // The --initial_users, set before the session can call Truth().
  std::vector<BalancerClient::JamUsers> initial_jams_;

  absl::Mutex mu_;
  std::vector<Stay> stays_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> joining_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> truth_calls_ms_ ABSL_GUARDED_BY(mu_);
  // [sent_unix_us, latency_us] of every call Retry made.
  std::vector<std::pair<int64_t, int64_t>> calls_ ABSL_GUARDED_BY(mu_);
  // [unix_us, answer] of every call Retry returned OK.
  std::vector<std::pair<int64_t, EpochLog::Answer>> answers_
      ABSL_GUARDED_BY(mu_);
  int arrivals_ ABSL_GUARDED_BY(mu_) = 0;
  int added_ ABSL_GUARDED_BY(mu_) = 0;
  int redirects_ ABSL_GUARDED_BY(mu_) = 0;
  int removed_ ABSL_GUARDED_BY(mu_) = 0;
  int errors_ ABSL_GUARDED_BY(mu_) = 0;
  int gave_up_ ABSL_GUARDED_BY(mu_) = 0;
  int violations_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  // [unix_us, status] of every call that failed for good.
  std::vector<std::pair<int64_t, std::string>> failures_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> retries_{0};

  // Last: its keep-alive thread calls Truth() until it is destroyed.
  FrontEndSession session_;
};

int Main() {
  const std::string frontend_id = absl::GetFlag(FLAGS_frontend_id);
  const std::string report = absl::GetFlag(FLAGS_report);
  if (frontend_id.empty() || report.empty()) {
    std::fprintf(stderr, "--frontend_id and --report are required\n");
    return 2;
  }
  const absl::Time end =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  const absl::Duration lease = absl::GetFlag(FLAGS_lease);
  // Before any channel or call: it sees every call's trailers.
  static EpochInterceptorFactory epoch_interceptors;
  grpc::experimental::RegisterGlobalClientInterceptorFactory(
      &epoch_interceptors);

  // Reconnect quickly after the balancer comes back (gRPC's default backoff
  // starts at 1 s and grows), as a front end that cares about restarts would.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 300);
  BalancerClient::Options options;
  options.frontend_id = frontend_id;
  // Below a third of the lease, as FrontEndSession asks.
  options.deadline = std::min(absl::Seconds(5), lease / 4);
  if (absl::GetFlag(FLAGS_deadline) > absl::ZeroDuration()) {
    options.deadline = absl::GetFlag(FLAGS_deadline);
  }
  if (!absl::GetFlag(FLAGS_tls_ca).empty() ||
      !absl::GetFlag(FLAGS_tls_cert).empty()) {
    absl::StatusOr<BalancerClient::Tls> tls = BalancerClient::Tls::FromFiles(
        absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
        absl::GetFlag(FLAGS_tls_key));
    if (!tls.ok()) {
      std::fprintf(stderr, "%s: %s\n", frontend_id.c_str(),
                   tls.status().ToString().c_str());
      return 2;
    }
    options.tls = *std::move(tls);
  }
  // Several replicas: the client follows the leader, on channels of its own
  // (they reconnect within a second). One balancer: the channel above.
  const std::string target = absl::GetFlag(FLAGS_target);
  std::unique_ptr<BalancerClient> client =
      BalancerClient::SplitTargets(target).size() > 1
          ? BalancerClient::Connect(target, options)
          : std::make_unique<BalancerClient>(
                grpc::CreateCustomChannel(
                    target, BalancerClient::Credentials(options.tls), args),
                options);

  Simulator simulator(*client, frontend_id, lease, end,
                      absl::GetFlag(FLAGS_max_users),
                      absl::GetFlag(FLAGS_initial_users));
  if (absl::Status started = simulator.Start(); !started.ok()) {
    std::fprintf(stderr, "%s: Start: %s\n", frontend_id.c_str(),
                 started.ToString().c_str());
    simulator.WriteReport(report, /*done=*/true, /*timed_out=*/true);
    return 1;
  }

  // Writes the report every 50 ms until `stop`; one writer at a time, as
  // they share the temporary file.
  auto reporter_until = [&](std::atomic<bool>& stop, bool done,
                            bool timed_out) {
    return std::thread([&simulator, &report, &stop, done, timed_out] {
      while (!stop.load()) {
        simulator.WriteReport(report, done, timed_out);
        absl::SleepFor(absl::Milliseconds(50));
      }
    });
  };
  std::atomic<bool> stop_reporting{false};
  std::thread reporter =
      reporter_until(stop_reporting, /*done=*/false, /*timed_out=*/false);
  const bool finished = simulator.Run(
      absl::GetFlag(FLAGS_users), absl::GetFlag(FLAGS_pace),
      absl::GetFlag(FLAGS_remove_every), absl::GetFlag(FLAGS_seed));
  stop_reporting.store(true);
  reporter.join();
  if (!simulator.WriteReport(report, /*done=*/true, !finished)) {
    std::fprintf(stderr, "%s: cannot write %s\n", frontend_id.c_str(),
                 report.c_str());
    return 1;
  }

  std::atomic<bool> stop_holding{false};
  std::thread hold_reporter =
      reporter_until(stop_holding, /*done=*/true, !finished);
  absl::SleepFor(std::min(absl::GetFlag(FLAGS_hold), end - absl::Now()));
  stop_holding.store(true);
  hold_reporter.join();
  simulator.End().IgnoreError();  // Its lease would end it anyway.
  return finished && simulator.errors() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace jambalancer

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return jambalancer::Main();
}
