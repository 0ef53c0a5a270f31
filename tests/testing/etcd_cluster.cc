#include "tests/testing/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/etcd/etcd_client.h"

namespace jambalancer::test {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(20);

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The etcd binary: the first on PATH, else Debian's.
absl::StatusOr<std::string> FindEtcd() {
  const char* path = std::getenv("PATH");
  std::vector<std::string> candidates;
  for (absl::string_view dir :
       absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty())) {
    candidates.push_back(absl::StrCat(dir, "/etcd"));
  }
  candidates.push_back("/usr/bin/etcd");
  for (const std::string& candidate : candidates) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::FailedPreconditionError(
      "etcd not found (on PATH, or /usr/bin/etcd): these tests run a real "
      "etcd cluster; install the Debian packages etcd-server and etcd-client "
      "(bash tools/install-deps.sh does)");
}

// `count` distinct loopback ports the OS picked. They are free once this
// returns, and are taken by the members right after; the OS hands out
// ephemeral ports in turn, so a clash is unlikely.
absl::StatusOr<std::vector<int>> PickPorts(int count) {
  std::vector<int> sockets;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      status = ErrnoError("socket");
      break;
    }
    sockets.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      status = ErrnoError("bind");
      break;
    }
    ports.push_back(ntohs(address.sin_port));
  }
  for (int fd : sockets) close(fd);
  if (!status.ok()) return status;
  return ports;
}

// The body of GET `path` from 127.0.0.1:`port` (HTTP/1.0, so the server
// closes the connection after it), waiting at most a second per read.
absl::StatusOr<std::string> HttpGet(int port, absl::string_view path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return ErrnoError("socket");
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  std::string response;
  absl::Status status;
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\n\r\n");
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
          0 ||
      write(fd, request.data(), request.size()) !=
          static_cast<ssize_t>(request.size())) {
    status = ErrnoError(absl::StrCat("GET 127.0.0.1:", port, path));
  } else {
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0)
      response.append(buffer, n);
    if (n < 0) status = ErrnoError(absl::StrCat("read 127.0.0.1:", port, path));
  }
  close(fd);
  if (!status.ok()) return status;
  return response;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(int members) {
  absl::StatusOr<std::string> etcd = FindEtcd();
  if (!etcd.ok()) return etcd.status();
  const char* tmp = std::getenv("TMPDIR");
  std::string dir =
      absl::StrCat(tmp == nullptr ? "/tmp" : tmp, "/jam-etcd-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) return ErrnoError("mkdtemp");
  absl::StatusOr<std::vector<int>> ports = PickPorts(2 * members);
  if (!ports.ok()) return ports.status();
  std::vector<Member> list(members);
  for (int i = 0; i < members; ++i) {
    list[i].name = absl::StrCat("member", i);
    list[i].client_port = (*ports)[2 * i];
    list[i].peer_port = (*ports)[2 * i + 1];
  }
  std::unique_ptr<EtcdCluster> cluster(
      new EtcdCluster(*std::move(etcd), std::move(dir), std::move(list)));
  for (int i = 0; i < members; ++i) {
    absl::Status spawned = cluster->Spawn(i);
    if (!spawned.ok()) return spawned;
  }
  absl::Status healthy = cluster->WaitHealthy(kStartTimeout);
  if (!healthy.ok()) return healthy;
  return cluster;
}

EtcdCluster::EtcdCluster(std::string etcd, std::string dir,
                         std::vector<Member> members)
    : etcd_(std::move(etcd)),
      dir_(std::move(dir)),
      members_(std::move(members)) {
  std::vector<std::string> peers;
  for (const Member& member : members_) {
    endpoints_.push_back(absl::StrCat("127.0.0.1:", member.client_port));
    peers.push_back(
        absl::StrCat(member.name, "=http://127.0.0.1:", member.peer_port));
  }
  initial_cluster_ = absl::StrJoin(peers, ",");
}

EtcdCluster::~EtcdCluster() {
  for (Member& member : members_) {
    if (member.pid == 0) continue;
    kill(member.pid, SIGKILL);
    waitpid(member.pid, nullptr, 0);
    member.pid = 0;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::Status EtcdCluster::Spawn(int index) {
  Member& member = members_[index];
  const std::string client_url =
      absl::StrCat("http://127.0.0.1:", member.client_port);
  const std::string peer_url =
      absl::StrCat("http://127.0.0.1:", member.peer_port);
  // The cluster token is unique per cluster (its directory), so members of
  // clusters of tests running side by side never join each other.
  const std::vector<std::string> args = {etcd_,
                                         "--name",
                                         member.name,
                                         "--data-dir",
                                         absl::StrCat(dir_, "/", member.name),
                                         "--listen-client-urls",
                                         client_url,
                                         "--advertise-client-urls",
                                         client_url,
                                         "--listen-peer-urls",
                                         peer_url,
                                         "--initial-advertise-peer-urls",
                                         peer_url,
                                         "--initial-cluster",
                                         initial_cluster_,
                                         "--initial-cluster-state",
                                         "new",
                                         "--initial-cluster-token",
                                         dir_,
                                         "--heartbeat-interval",
                                         "50",
                                         "--election-timeout",
                                         "500",
                                         "--logger",
                                         "zap",
                                         "--log-outputs",
                                         "stderr",
                                         "--log-level",
                                         "warn"};
  std::vector<char*> argv;
  for (const std::string& arg : args)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const std::string log = absl::StrCat(dir_, "/", member.name, ".log");
  const int log_fd =
      open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ErrnoError(absl::StrCat("open ", log));

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    // The child of a threaded process: async-signal-safe calls only.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  member.pid = pid;
  member.paused = false;
  return absl::OkStatus();
}

absl::Status EtcdCluster::Signal(int index, int signal) {
  Member& member = members_[index];
  if (member.pid == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(member.name, " is not running"));
  }
  if (kill(member.pid, signal) != 0) {
    return ErrnoError(absl::StrCat("kill ", member.pid));
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::Kill(int index) {
  absl::Status status = Signal(index, SIGKILL);
  if (!status.ok()) return status;
  Member& member = members_[index];
  waitpid(member.pid, nullptr, 0);
  member.pid = 0;
  member.paused = false;
  return absl::OkStatus();
}

absl::Status EtcdCluster::Pause(int index) {
  absl::Status status = Signal(index, SIGSTOP);
  if (status.ok()) members_[index].paused = true;
  return status;
}

absl::Status EtcdCluster::Resume(int index) {
  absl::Status status = Signal(index, SIGCONT);
  if (status.ok()) members_[index].paused = false;
  return status;
}

absl::Status EtcdCluster::PauseAll() {
  for (int i = 0; i < size(); ++i) {
    absl::Status status = Pause(i);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::ResumeAll() {
  for (int i = 0; i < size(); ++i) {
    absl::Status status = Resume(i);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::Restart(int index) {
  if (members_[index].pid != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(members_[index].name, " is still running"));
  }
  absl::Status spawned = Spawn(index);
  if (!spawned.ok()) return spawned;
  return WaitMemberHealthy(index, absl::Now() + kStartTimeout);
}

absl::Status EtcdCluster::WaitHealthy(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < size(); ++i) {
    if (members_[i].pid == 0 || members_[i].paused) continue;
    absl::Status status = WaitMemberHealthy(i, deadline);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::WaitMemberHealthy(int index, absl::Time deadline) {
  Member& member = members_[index];
  EtcdClient::Options options;
  options.call_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Connect({endpoints_[index]}, options);
  if (!client.ok()) return client.status();
  absl::Status last;
  while (true) {
    // A linearizable read needs a raft leader and a quorum behind it.
    last = (*client)->Range("jam-etcd-cluster-health").status();
    if (last.ok()) return absl::OkStatus();
    int wait_status = 0;
    if (waitpid(member.pid, &wait_status, WNOHANG) == member.pid) {
      member.pid = 0;
      return absl::InternalError(absl::StrCat(member.name, " exited (status ",
                                              wait_status, "); its log:\n",
                                              LogTail(index)));
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      member.name, " (", endpoints_[index],
      ") is not healthy: ", last.ToString(), "; its log:\n", LogTail(index)));
}

absl::StatusOr<int> EtcdCluster::RaftLeader() const {
  for (int i = 0; i < size(); ++i) {
    if (members_[i].pid == 0 || members_[i].paused) continue;
    absl::StatusOr<std::string> metrics =
        HttpGet(members_[i].client_port, "/metrics");
    if (!metrics.ok()) return metrics.status();
    if (absl::StrContains(*metrics, "\netcd_server_is_leader 1\n")) return i;
  }
  return absl::NotFoundError("no etcd member is raft leader");
}

std::string EtcdCluster::LogTail(int index) const {
  std::ifstream log(absl::StrCat(dir_, "/", members_[index].name, ".log"));
  std::stringstream text;
  text << log.rdbuf();
  const std::string all = text.str();
  constexpr size_t kTail = 4000;
  return all.size() <= kTail ? all : all.substr(all.size() - kTail);
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace jambalancer::test
