// jamctl: command-line client of the jam balancer, for people and scripts.
//
// Prints each response as one line of JSON (protobuf's JSON mapping, with
// false and 0 fields shown) on stdout. Exit status: 0 on success (and when
// Ctrl-C ends `watch-stats`), 1 if a call failed (or `health` is not
// SERVING), 2 on wrong usage.

#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/balancer_client.h"
#include "grpc/health/v1/health.pb.h"
#include "jambalancer/v1/rpc_list.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "host:port of the jam balancer (or any gRPC target URI), or "
          "host:port,host:port,... of its replicas: each call goes to the one "
          "that leads");
ABSL_FLAG(absl::Duration, deadline,
          jambalancer::BalancerClient::Options().deadline,
          "deadline of each call, e.g. 500ms or 5s (with several --target "
          "replicas, of all its attempts together)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle that signed the server's certificate: talk TLS "
          "(empty with --tls_cert: the system's roots)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for a server that requires one "
          "(--tls_client_ca there); needs --tls_key; implies TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(uint32_t, page_size, 0,
          "list: largest number of jams per page (0 = the server's default)");
ABSL_FLAG(std::string, page_token, "",
          "list: next_page_token of the previous page (empty = first page)");
ABSL_FLAG(bool, all, false,
          "list: follow next_page_token to the last page, one page per line");
ABSL_FLAG(absl::Duration, ttl, absl::ZeroDuration(),
          "current-jam USER: how long the seat is reserved, e.g. 30s (0 = the "
          "server's --reservation_ttl; the server caps it at its "
          "--max_reservation_ttl)");
ABSL_FLAG(std::string, frontend, "",
          "the front end that current-jam, refresh, remove-user and add-user "
          "speak for (they then need its live session: sync first), and "
          "whose session keepalive, end-session and sync act on (required "
          "there); empty = anonymous calls");
ABSL_FLAG(absl::Duration, hold, absl::ZeroDuration(),
          "remove-user: keep the leaving user's seat reserved that long, e.g. "
          "30s, so that a page reload lands in the same jam (0 = no hold; the "
          "server caps it at its --max_reservation_ttl)");
ABSL_FLAG(absl::Duration, lease, absl::ZeroDuration(),
          "sync: the session's lease, e.g. 10s (0 = the server's --lease_ttl; "
          "the server refuses less than 500ms and caps it at its "
          "--max_lease_ttl)");
ABSL_FLAG(std::string, pool, "",
          "the pool of current-jam, refresh, remove-user, has-capacity, "
          "add-user, stats, list, batch, sessions, jam, leader and "
          "watch-stats, and of every jam that sync lists (empty = the "
          "default pool; see `pools`)");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "watch-stats: time from one call to the next, e.g. 500ms");
ABSL_FLAG(uint32_t, count, 0,
          "watch-stats: stop after this many lines (0 = until Ctrl-C)");

namespace jambalancer {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "Command-line client of the jam balancer.\n"
    "Usage: jamctl [--target=HOST:PORT[,HOST:PORT...]] [--deadline=5s]\n"
    "              [--tls_ca=PEM [--tls_cert=PEM --tls_key=PEM]]\n"
    "              [--frontend=ID] [--pool=NAME] COMMAND [ARGS]\n"
    "Commands:\n"
    "  current-jam [USER] [--ttl=DURATION]\n"
    "                           the jam a newly arriving user should join;\n"
    "                           with USER, also reserves a seat there for\n"
    "                           USER, for --ttl (default: the server's)\n"
    "  refresh JAM [USER...]    replace the users of JAM (none: delete it)\n"
    "  remove-user JAM USER [--hold=DURATION]\n"
    "                           remove USER from JAM, or release the seat\n"
    "                           USER reserved there; with --hold, USER's\n"
    "                           seat stays reserved that long\n"
    "  has-capacity JAM [USER]  whether one more user (USER, if given) may\n"
    "                           enter JAM\n"
    "  add-user JAM USER        add USER to JAM if it has room (or a seat\n"
    "                           there is reserved for USER)\n"
    "  stats                    totals over all jams of the pool\n"
    "  list [--page_size=N] [--page_token=T] [--all]\n"
    "                           jams in id order, one page per line\n"
    "  batch JSON               run the operations of JSON, a BatchRequest in\n"
    "                           protobuf's JSON mapping, in one atomic step\n"
    "  health [SERVICE]         health of the server (the first --target),\n"
    "                           or of SERVICE; exits 0 only if SERVING\n"
    "  watch-stats [--interval=1s] [--count=N]\n"
    "                           stats every --interval until Ctrl-C (exits 0)\n"
    "                           or until N lines were printed (0: no limit)\n"
    "  sync [--lease=DURATION] [JAM=USER,USER...]...\n"
    "                           start or renew the session of --frontend\n"
    "                           (lease: --lease, default the server's) and\n"
    "                           make the listed jams all it hosts (JAM= for\n"
    "                           a jam without its users; none: no jams)\n"
    "  keepalive                renew the lease of --frontend's session\n"
    "  end-session              end --frontend's session, removing its users\n"
    "  sessions                 the front ends' sessions in the pool\n"
    "  jam JAM                  one jam's members and their front ends\n"
    "  leader                   the replica that leads the pool (it answered)\n"
    "                           and the epoch of its answer, 0 for a lone\n"
    "                           balancer:\n"
    "                           {\"leader\":\"HOST:PORT\",\"epoch\":\"N\"}\n"
    "  pools                    the pools the balancer is configured for:\n"
    "                           settings, counts, whether the replica that\n"
    "                           answered serves each, leader and epoch\n"
    "  routing                  where each pool is served: its leader's\n"
    "                           address and epoch (empty and 0: unknown, or\n"
    "                           a lone balancer); any replica answers\n"
    "--pool=NAME: the pool of the commands that act on one (all but health,\n"
    "keepalive, end-session, pools and routing); sync puts every jam it\n"
    "lists in it. Empty: the default pool.\n"
    "--target=A,B,...: replicas of one balancer (--etcd_endpoints), each\n"
    "pool led by one of them. Each call goes to the one that leads its pool,\n"
    "to the leader a standby names, or to the next replica, until one\n"
    "answers or --deadline passes; sync, keepalive and end-session go to\n"
    "every pool's leader. With one target, one call, whatever it answers.\n"
    "--frontend=ID: current-jam, refresh, remove-user and add-user speak for\n"
    "front end ID (they then need its live session: sync first); sync,\n"
    "keepalive and end-session need it.\n"
    "--tls_ca=FILE: TLS, verifying the server with that CA (the target's host\n"
    "must be in the server's certificate); --tls_cert/--tls_key: this\n"
    "client's certificate, for a server with --tls_client_ca (mutual TLS).\n"
    "Prints each response as one JSON object per line. Exit status: 0 OK,\n"
    "1 the call failed, 2 wrong usage. Arguments after -- are never flags.";

using Args = std::vector<std::string>;

// Whether a command sends --frontend.
enum class FrontEnd {
  kNo,        // It must not be given.
  kOptional,  // Anonymous without it.
  kRequired,
};

struct Command {
  absl::string_view name;
  size_t min_args;
  size_t max_args;  // SIZE_MAX: any number.
  FrontEnd frontend;
  // Whether it takes --pool.
  bool pooled;
  // Runs the command; returns the exit status.
  int (*run)(BalancerClient& client, const Args& args);
};

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // Show false and 0 too.
  std::string json;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    // Cannot happen for messages the client parsed; say so if it does.
    std::cerr << "jamctl: cannot print " << message.GetTypeName()
              << " as JSON: " << status.ToString() << "\n";
    std::exit(kExitFailed);
  }
  std::cout << json << "\n";
}

int Failed(absl::string_view command, const absl::Status& status) {
  std::cerr << "jamctl: " << command
            << " failed: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  return kExitFailed;
}

// Prints the response, or reports the failure; returns the exit status.
template <typename Response>
int Print(absl::string_view command, const absl::StatusOr<Response>& result) {
  if (!result.ok()) return Failed(command, result.status());
  PrintJson(*result);
  return kExitOk;
}

// The pool of --pool ("" : the default pool).
std::string Pool() { return absl::GetFlag(FLAGS_pool); }

int List(BalancerClient& client) {
  const uint32_t page_size = absl::GetFlag(FLAGS_page_size);
  std::string page_token = absl::GetFlag(FLAGS_page_token);
  if (!absl::GetFlag(FLAGS_all)) {
    return Print("list", client.ListJams(page_size, page_token, Pool()));
  }
  // Each token names the last jam of its page, so the next page starts after
  // it; a token that does not move would loop forever, so it is an error.
  for (;;) {
    absl::StatusOr<v1::ListJamsResponse> page =
        client.ListJams(page_size, page_token, Pool());
    if (!page.ok()) return Failed("list", page.status());
    PrintJson(*page);
    if (page->next_page_token().empty()) return kExitOk;
    if (page->next_page_token() == page_token) {
      return Failed("list", absl::InternalError(
                                "the server returned the same page token"));
    }
    page_token = page->next_page_token();
  }
}

// Without USER, asks only; with USER, reserves a seat for --ttl.
int CurrentJam(BalancerClient& client, const Args& args) {
  if (args.empty()) {
    // No user: reserves nothing.
    return Print("current-jam",
                 client.CurrentJam("", absl::ZeroDuration(), Pool()));
  }
  // The request carries whole milliseconds in a uint32; anything longer than
  // that is far beyond what a server accepts (it caps the TTL anyway).
  constexpr absl::Duration kLongest = absl::Milliseconds(UINT32_MAX);
  const absl::Duration ttl = std::min(absl::GetFlag(FLAGS_ttl), kLongest);
  return Print("current-jam", client.CurrentJam(args[0], ttl, Pool()));
}

int HasCapacity(BalancerClient& client, const Args& args) {
  return Print(
      "has-capacity",
      client.HasCapacity(args[0], args.size() > 1 ? args[1] : "", Pool()));
}

int Health(BalancerClient& client, const Args& args) {
  const std::string service = args.empty() ? "" : args[0];
  absl::StatusOr<bool> serving = client.IsServing(service);
  if (!serving.ok()) return Failed("health", serving.status());
  grpc::health::v1::HealthCheckResponse response;
  response.set_status(*serving
                          ? grpc::health::v1::HealthCheckResponse::SERVING
                          : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  PrintJson(response);
  return *serving ? kExitOk : kExitFailed;
}

// The replica that answered a GetStats (following the leader), and the
// epoch of its answer, as {"leader":"HOST:PORT","epoch":"N"} (an int64 as a
// string, as protobuf's JSON mapping writes them).
int Leader(BalancerClient& client, const Args&) {
  absl::StatusOr<BalancerClient::Leader> leader = client.FindLeader(Pool());
  if (!leader.ok()) return Failed("leader", leader.status());
  google::protobuf::Value target;  // Quoted and escaped as JSON.
  target.set_string_value(leader->target);
  std::string quoted;
  if (!google::protobuf::util::MessageToJsonString(target, &quoted).ok()) {
    std::cerr << "jamctl: cannot print the target as JSON\n";
    return kExitFailed;
  }
  std::cout << "{\"leader\":" << quoted << ",\"epoch\":\"" << leader->epoch
            << "\"}\n";
  return kExitOk;
}

// The signal that ends watch-stats: Ctrl-C. Main blocks it in every thread
// before the client starts gRPC's, so it stays pending until WatchStats takes
// it with sigtimedwait instead of killing the process.
sigset_t InterruptSignal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  return signals;
}

// Waits until `deadline` or until a signal of `signals` (blocked) arrives,
// whichever is first. Returns true if a signal arrived, also one that was
// already pending.
bool WaitForSignal(const sigset_t& signals, absl::Time deadline) {
  for (;;) {
    const absl::Duration left =
        std::max(deadline - absl::Now(), absl::ZeroDuration());
    const timespec timeout = absl::ToTimespec(left);
    if (sigtimedwait(&signals, nullptr, &timeout) > 0) return true;
    if (errno == EAGAIN) return false;  // The deadline passed.
    // EINTR: some other signal interrupted the wait; wait again.
  }
}

// GetStats every --interval, counted from the start of one call to the next
// (a call slower than that is followed at once, not by a burst). Ctrl-C
// during a call takes effect when the call ends, at the latest after
// --deadline.
int WatchStats(BalancerClient& client, const Args&) {
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  const uint32_t count = absl::GetFlag(FLAGS_count);
  const sigset_t interrupt = InterruptSignal();
  absl::Time next_call = absl::Now();
  for (uint32_t printed = 0;;) {
    absl::StatusOr<v1::GetStatsResponse> stats = client.GetStats(Pool());
    if (!stats.ok()) return Failed("watch-stats", stats.status());
    PrintJson(*stats);
    // Each line as it comes, for a pipe too; stop if nobody reads them.
    if (!std::cout.flush()) {
      std::cerr << "jamctl: watch-stats: cannot write to stdout\n";
      return kExitFailed;
    }
    if (++printed == count) return kExitOk;
    next_call = std::max(next_call + interval, absl::Now());
    if (WaitForSignal(interrupt, next_call)) return kExitOk;
  }
}

int UsageError(absl::string_view message) {
  std::cerr << "jamctl: " << message << "\n\n" << kUsage << "\n";
  return kExitUsage;
}

// Runs a BatchRequest given as JSON, e.g.
// {"operations":[{"getStats":{}},{"addUser":{"jamId":"j","userId":"u"}}]}.
int Batch(BalancerClient& client, const Args& args) {
  v1::BatchRequest request;
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(args[0], &request);
  if (!parsed.ok()) {
    return UsageError(
        absl::StrCat("batch: JSON is not a jambalancer.v1.BatchRequest: ",
                     parsed.ToString()));
  }
  // --pool names the batch's pool, unless the JSON names another.
  if (!Pool().empty()) {
    if (!request.pool().empty() && request.pool() != Pool()) {
      return UsageError(absl::StrCat("batch: the JSON's pool \"",
                                     request.pool(),
                                     "\" is not --pool=", Pool()));
    }
    request.set_pool(Pool());
  }
  return Print("batch", client.Batch(request));
}

// The jams of `sync`'s arguments, each JAM=USER,USER... ("JAM=": no
// users), or a message saying which argument is not one.
absl::StatusOr<std::vector<BalancerClient::JamUsers>> ParseJams(
    const Args& args) {
  std::vector<BalancerClient::JamUsers> jams;
  jams.reserve(args.size());
  for (const std::string& arg : args) {
    const size_t equals = arg.find('=');
    if (equals == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sync: '", arg, "' is not JAM=USER,USER... (JAM= for no users)"));
    }
    BalancerClient::JamUsers& jam = jams.emplace_back();
    jam.jam_id = arg.substr(0, equals);
    jam.pool = Pool();
    const absl::string_view users = absl::string_view(arg).substr(equals + 1);
    // Empty ids between commas stay, for the server to name.
    if (!users.empty()) jam.user_ids = absl::StrSplit(users, ',');
  }
  return jams;
}

int Sync(BalancerClient& client, const Args& args) {
  absl::StatusOr<std::vector<BalancerClient::JamUsers>> jams = ParseJams(args);
  if (!jams.ok()) return UsageError(jams.status().message());
  return Print("sync", client.Sync(absl::GetFlag(FLAGS_lease), *jams));
}

// The command of each RPC, named k<Method>Command: kCommands below is
// generated from the RPC list (jambalancer/v1/rpc_list.h), so an RPC added
// there without its command here does not compile.
constexpr Command kCurrentJamCommand = {"current-jam",       0,    1,
                                        FrontEnd::kOptional, true, CurrentJam};
constexpr Command kRefreshCommand = {
    "refresh",
    1,
    SIZE_MAX,
    FrontEnd::kOptional,
    true,
    [](BalancerClient& client, const Args& args) {
      return Print("refresh",
                   client.Refresh(args[0], absl::MakeConstSpan(args).subspan(1),
                                  Pool()));
    }};
constexpr Command kRemoveUserCommand = {
    "remove-user",
    2,
    2,
    FrontEnd::kOptional,
    true,
    [](BalancerClient& client, const Args& args) {
      return Print("remove-user",
                   client.RemoveUser(args[0], args[1],
                                     absl::GetFlag(FLAGS_hold), Pool()));
    }};
constexpr Command kHasCapacityCommand = {"has-capacity", 1,    2,
                                         FrontEnd::kNo,  true, HasCapacity};
constexpr Command kAddUserCommand = {
    "add-user",
    2,
    2,
    FrontEnd::kOptional,
    true,
    [](BalancerClient& client, const Args& args) {
      return Print("add-user", client.AddUser(args[0], args[1], Pool()));
    }};
constexpr Command kGetStatsCommand = {"stats",
                                      0,
                                      0,
                                      FrontEnd::kNo,
                                      true,
                                      [](BalancerClient& client, const Args&) {
                                        return Print("stats",
                                                     client.GetStats(Pool()));
                                      }};
constexpr Command kListJamsCommand = {
    "list", 0,
    0,      FrontEnd::kNo,
    true,   [](BalancerClient& client, const Args&) { return List(client); }};
constexpr Command kBatchCommand = {"batch", 1, 1, FrontEnd::kNo, true, Batch};
constexpr Command kKeepAliveCommand = {"keepalive",
                                       0,
                                       0,
                                       FrontEnd::kRequired,
                                       false,
                                       [](BalancerClient& client, const Args&) {
                                         return Print("keepalive",
                                                      client.KeepAlive());
                                       }};
constexpr Command kEndSessionCommand = {
    "end-session",
    0,
    0,
    FrontEnd::kRequired,
    false,
    [](BalancerClient& client, const Args&) {
      return Print("end-session", client.EndSession());
    }};
constexpr Command kListSessionsCommand = {
    "sessions",
    0,
    0,
    FrontEnd::kNo,
    true,
    [](BalancerClient& client, const Args&) {
      return Print("sessions", client.ListSessions(Pool()));
    }};
constexpr Command kGetJamCommand = {
    "jam",
    1,
    1,
    FrontEnd::kNo,
    true,
    [](BalancerClient& client, const Args& args) {
      return Print("jam", client.GetJam(args[0], Pool()));
    }};
constexpr Command kListPoolsCommand = {"pools",
                                       0,
                                       0,
                                       FrontEnd::kNo,
                                       false,
                                       [](BalancerClient& client, const Args&) {
                                         return Print("pools",
                                                      client.ListPools());
                                       }};
constexpr Command kGetRoutingCommand = {
    "routing",
    0,
    0,
    FrontEnd::kNo,
    false,
    [](BalancerClient& client, const Args&) {
      return Print("routing", client.GetRouting());
    }};
constexpr Command kSyncCommand = {"sync", 0,   SIZE_MAX, FrontEnd::kRequired,
                                  true,   Sync};

constexpr Command kCommands[] = {
#define JAMCTL_RPC_COMMAND(Method, field) k##Method##Command,
    JAM_BALANCER_RPCS(JAMCTL_RPC_COMMAND)
        JAM_BALANCER_CLIENT_STREAMING_RPCS(JAMCTL_RPC_COMMAND)
#undef JAMCTL_RPC_COMMAND
    // Commands of their own.
    {"health", 0, 1, FrontEnd::kNo, false, Health},
    {"leader", 0, 0, FrontEnd::kNo, true, Leader},
    {"watch-stats", 0, 0, FrontEnd::kNo, true, WatchStats},
};

// Abseil's --help and friends, which it handles without registering them.
bool IsUsageFlag(absl::string_view name) {
  for (absl::string_view usage_flag :
       {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch",
        "version", "only_check_args"}) {
    if (name == usage_flag) return true;
  }
  return false;
}

// Abseil exits with status 1 on an unknown flag or a bad flag value, but
// here 1 means that a call failed. Checking the flags first lets such usage
// errors exit 2 like the others. Returns "" if every flag is known and every
// value of a jamctl flag parses; Abseil's own flags (--help, --flagfile, ...)
// are left to Abseil.
std::string FlagError(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;                         // The rest is positional.
    if (arg.size() < 2 || arg[0] != '-') continue;  // A positional argument.
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    const absl::string_view name = arg.substr(0, arg.find('='));
    const bool inline_value = name.size() < arg.size();
    if (IsUsageFlag(name)) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      // --noall is --all=false.
      absl::string_view negated = name;
      if (!inline_value && absl::ConsumePrefix(&negated, "no")) {
        flag = absl::FindCommandLineFlag(negated);
        if (flag != nullptr && flag->IsOfType<bool>()) continue;
      }
      return absl::StrCat("unknown flag --", name);
    }
    if (!absl::EndsWith(flag->Filename(), "jamctl.cc")) continue;
    if (!inline_value && flag->IsOfType<bool>()) continue;  // --all
    std::string value;
    if (inline_value) {
      value = std::string(arg.substr(name.size() + 1));
    } else if (i + 1 < argc) {
      value = argv[++i];  // --page_size 10
    } else {
      return absl::StrCat("flag --", name, " needs a value");
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::StrCat("bad value '", value, "' for --", name, ": ", error);
    }
  }
  return "";
}

// Checks --`flag`, a duration only `command` takes, where 0 means `zero`:
// "" if it is fine for the command `name`, else the usage error.
std::string DurationError(absl::string_view flag, absl::string_view command,
                          absl::string_view name, absl::string_view zero,
                          absl::Duration value) {
  if (value == absl::ZeroDuration()) return "";
  if (name != command) {
    return absl::StrCat("--", flag, " applies only to ", command, ", not to ",
                        name);
  }
  // The request carries whole milliseconds.
  if (value < absl::Milliseconds(1)) {
    return absl::StrCat("--", flag, " must be 0 (", zero,
                        ") or at least 1ms, not ", absl::FormatDuration(value));
  }
  return "";
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (std::string error = FlagError(argc, argv); !error.empty()) {
    return UsageError(error);
  }
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) return UsageError("missing COMMAND");
  const absl::string_view name = positional[1];
  const Args args(positional.begin() + 2, positional.end());

  const Command* command = nullptr;
  for (const Command& candidate : kCommands) {
    if (candidate.name == name) command = &candidate;
  }
  if (command == nullptr) {
    return UsageError(absl::StrCat("unknown command '", name, "'"));
  }
  if (args.size() < command->min_args || args.size() > command->max_args) {
    return UsageError(absl::StrCat("wrong number of arguments for ", name));
  }
  const bool list_flags_set = absl::GetFlag(FLAGS_page_size) != 0 ||
                              !absl::GetFlag(FLAGS_page_token).empty() ||
                              absl::GetFlag(FLAGS_all);
  if (list_flags_set && name != "list") {
    return UsageError(absl::StrCat(
        "--page_size, --page_token and --all apply only to list, not to ",
        name));
  }
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  const bool watch_flags_set =
      interval != absl::Seconds(1) || absl::GetFlag(FLAGS_count) != 0;
  if (watch_flags_set && name != "watch-stats") {
    return UsageError(absl::StrCat(
        "--interval and --count apply only to watch-stats, not to ", name));
  }
  if (interval <= absl::ZeroDuration()) {
    return UsageError(absl::StrCat("--interval must be positive, not ",
                                   absl::FormatDuration(interval)));
  }
  const absl::Duration ttl = absl::GetFlag(FLAGS_ttl);
  const bool reserving = name == "current-jam" && !args.empty();
  if (ttl != absl::ZeroDuration() && !reserving) {
    return UsageError(
        name == "current-jam"
            ? "--ttl needs USER: current-jam without USER reserves nothing"
            : absl::StrCat("--ttl applies only to current-jam USER, not to ",
                           name));
  }
  if (ttl < absl::ZeroDuration() ||
      (ttl > absl::ZeroDuration() && ttl < absl::Milliseconds(1))) {
    return UsageError(absl::StrCat(
        "--ttl must be 0 (the server's default) or at least 1ms, not ",
        absl::FormatDuration(ttl)));
  }
  // The server takes an empty user id as none and reserves nothing; an empty
  // USER is more likely an unset shell variable than a wish.
  if ((reserving || (name == "has-capacity" && args.size() == 2)) &&
      args.back().empty()) {
    return UsageError(absl::StrCat(
        "USER must not be empty (leave it out to ask without a user): ", name));
  }

  const std::string frontend = absl::GetFlag(FLAGS_frontend);
  if (command->frontend == FrontEnd::kRequired && frontend.empty()) {
    return UsageError(absl::StrCat(name, " needs --frontend=ID"));
  }
  if (command->frontend == FrontEnd::kNo && !frontend.empty()) {
    std::vector<absl::string_view> senders;
    for (const Command& sender : kCommands) {
      if (sender.frontend != FrontEnd::kNo) senders.push_back(sender.name);
    }
    return UsageError(absl::StrCat("--frontend applies only to ",
                                   absl::StrJoin(senders, ", "), ", not to ",
                                   name));
  }
  if (!command->pooled && !absl::GetFlag(FLAGS_pool).empty()) {
    std::vector<absl::string_view> pooled;
    for (const Command& candidate : kCommands) {
      if (candidate.pooled) pooled.push_back(candidate.name);
    }
    return UsageError(absl::StrCat("--pool applies only to ",
                                   absl::StrJoin(pooled, ", "), ", not to ",
                                   name));
  }
  if (std::string error = DurationError("hold", "remove-user", name, "no hold",
                                        absl::GetFlag(FLAGS_hold));
      !error.empty()) {
    return UsageError(error);
  }
  if (std::string error =
          DurationError("lease", "sync", name, "the server's default",
                        absl::GetFlag(FLAGS_lease));
      !error.empty()) {
    return UsageError(error);
  }

  // Before Connect starts gRPC's threads, which inherit the signal mask.
  if (name == "watch-stats") {
    const sigset_t interrupt = InterruptSignal();
    pthread_sigmask(SIG_BLOCK, &interrupt, nullptr);
  }
  BalancerClient::Options options;
  options.deadline = absl::GetFlag(FLAGS_deadline);
  options.frontend_id = frontend;
  if (options.deadline <= absl::ZeroDuration()) {
    return UsageError("--deadline must be positive");
  }
  const std::string tls_ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string tls_key = absl::GetFlag(FLAGS_tls_key);
  if (tls_cert.empty() != tls_key.empty()) {
    return UsageError("--tls_cert and --tls_key go together");
  }
  if (!tls_ca.empty() || !tls_cert.empty()) {
    absl::StatusOr<BalancerClient::Tls> tls =
        BalancerClient::Tls::FromFiles(tls_ca, tls_cert, tls_key);
    if (!tls.ok()) {
      std::cerr << "jamctl: " << tls.status().message() << "\n";
      return kExitUsage;
    }
    options.tls = *std::move(tls);
  }
  std::unique_ptr<BalancerClient> client =
      BalancerClient::Connect(absl::GetFlag(FLAGS_target), options);
  return command->run(*client, args);
}

}  // namespace
}  // namespace jambalancer

int main(int argc, char** argv) { return jambalancer::Main(argc, argv); }
