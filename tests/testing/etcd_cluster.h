#ifndef JAM_BALANCER_TESTS_TESTING_ETCD_CLUSTER_H_
#define JAM_BALANCER_TESTS_TESTING_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace jambalancer::test {

// A real etcd cluster of a few members on loopback, for tests: ports the OS
// picked, data directories under a temporary directory, fast raft timings
// (--heartbeat-interval 50 --election-timeout 500, so a 1 s lease works and
// a new raft leader is elected within about a second).
//
// Every member is a child process this object started; it is signalled only
// by the PID it started, never by name. The destructor kills (SIGKILL) and
// reaps all of them and removes the temporary directory; members also get
// SIGKILL if the thread that started them dies first (PR_SET_PDEATHSIG), so
// a crashed or timed-out test leaves no etcd behind. etcd's output goes to
// member<i>.log in the temporary directory, quoted in errors.
//
// Not thread-safe: one thread (the test's) drives it.
class EtcdCluster {
 public:
  // Starts `members` members and waits (at most 20 s) until each answers a
  // linearizable read. FAILED_PRECONDITION with a message saying what to
  // install if there is no etcd binary (on PATH, or /usr/bin/etcd).
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(int members = 3);

  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;
  ~EtcdCluster();

  // "127.0.0.1:port" of each member's client URL, in member order.
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  int size() const { return static_cast<int>(members_.size()); }
  // The PID of a running member (0 once killed).
  pid_t pid(int member) const { return members_[member].pid; }

  // SIGKILL, then reap.
  absl::Status Kill(int member);
  // SIGSTOP / SIGCONT: a member that stops answering without closing its
  // connections, then resumes.
  absl::Status Pause(int member);
  absl::Status Resume(int member);
  absl::Status PauseAll();
  absl::Status ResumeAll();
  // Starts a killed member again on its data directory and ports, and waits
  // (at most 20 s) until it answers.
  absl::Status Restart(int member);

  // Waits until every running, unpaused member answers a linearizable read.
  absl::Status WaitHealthy(absl::Duration timeout);

  // The member that is raft leader now, as the running, unpaused members'
  // /metrics say (etcd_server_is_leader); NOT_FOUND if none is.
  absl::StatusOr<int> RaftLeader() const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = 0;
    bool paused = false;
  };

  EtcdCluster(std::string etcd, std::string dir, std::vector<Member> members);

  absl::Status Spawn(int member);
  absl::Status Signal(int member, int signal);
  absl::Status WaitMemberHealthy(int member, absl::Time deadline);
  // The end of a member's log, for error messages.
  std::string LogTail(int member) const;

  const std::string etcd_;
  const std::string dir_;
  std::vector<Member> members_;
  std::vector<std::string> endpoints_;
  std::string initial_cluster_;
};

// Polls `done` every 5 ms until it holds (true) or `timeout` passes
// (false): how the tests on a cluster wait for its clients to see a change.
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout);

}  // namespace jambalancer::test

#endif  // JAM_BALANCER_TESTS_TESTING_ETCD_CLUSTER_H_
