"""Replicated balancers on real etcd members: two jam-balancer processes with
--etcd_endpoints elect one leader through a three-member etcd cluster on
loopback (tests/system/etcd_cluster.py). Only the leader answers; the
standby refuses with UNAVAILABLE naming the leader, and its health reports
NOT_SERVING for the balancer service. kill -9 of the leader: the standby
takes over; SIGTERM: the leader hands over first; SIGSTOP past the lease:
the old leader, resumed, answers nothing. Times are measured and printed;
only generous bounds are asserted.
"""

import re
import signal
import time
import unittest
import urllib.request

import harness
from etcd_cluster import EtcdCluster

SERVICE = "jambalancer.v1.JamBalancerService"
# The replicas' etcd lease, and the margins the bounds allow on a busy
# machine.
TTL_S = 1
POLL_S = 0.05
TAKEOVER_BOUND_S = 10


def answers(server):
    """Whether `server` answers a balancer call (GetStats)."""
    return harness.jamctl(server.target, "stats", deadline="1s").returncode == 0


def metric(server, name):
    """The value of the default pool's sample `name` on `server`'s
    /metrics."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    match = re.search(rf'^{name}{{pool="default"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


class ReplicatedBalancerTest(unittest.TestCase):

    def setUp(self):
        self.etcd = EtcdCluster(self)

    def start_replica(self, *flags):
        return harness.start_server(
            self, f"--etcd_endpoints={self.etcd.endpoints}",
            f"--election_ttl={TTL_S}s", "--resync_grace=0s", *flags)

    def wait_for_one_leader(self, servers, timeout=TAKEOVER_BOUND_S):
        """Polls until exactly one of `servers` answers; returns it and how
        long that took."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            leaders = [s for s in servers if answers(s)]
            if len(leaders) == 1:
                return leaders[0], time.monotonic() - began
            self.assertLessEqual(len(leaders), 1, "two replicas answered")
            time.sleep(POLL_S)
        self.fail(f"no single leader within {timeout} s: " + "\n".join(
            s.stderr() for s in servers))

    def test_only_the_leader_answers_and_the_standby_names_it(self):
        servers = [self.start_replica(), self.start_replica()]
        leader, took = self.wait_for_one_leader(servers)
        print(f"\nfirst leader elected {took:.2f} s after the start")
        standby = servers[1 - servers.index(leader)]
        refused = harness.jamctl(standby.target, "stats")
        self.assertEqual(refused.returncode, 1, harness.describe(refused))
        self.assertIn("UNAVAILABLE", refused.stderr)
        self.assertIn(f"leader at 127.0.0.1:{leader.port}", refused.stderr)
        # Readiness: only the leader is SERVING for the balancer service;
        # both processes are alive.
        self.assertEqual(
            harness.jamctl(leader.target, "health", SERVICE).returncode, 0)
        self.assertNotEqual(
            harness.jamctl(standby.target, "health", SERVICE).returncode, 0)
        self.assertEqual(harness.jamctl(standby.target, "health").returncode,
                         0)
        epoch = harness.epoch_of(leader.target)
        self.assertIsNotNone(epoch)
        # The election on /metrics: who leads, at which epoch, its lease's
        # keepalives to etcd.
        self.assertEqual(metric(leader, "jam_balancer_leader"), 1)
        self.assertEqual(metric(standby, "jam_balancer_leader"), 0)
        self.assertEqual(metric(leader, "jam_balancer_leader_epoch"), epoch)
        self.assertEqual(metric(standby, "jam_balancer_leader_epoch"), epoch)
        self.assertEqual(metric(leader, "jam_balancer_elections_won_total"), 1)
        self.assertEqual(metric(standby, "jam_balancer_elections_won_total"),
                         0)
        self.assertGreater(
            metric(leader, "jam_balancer_leader_seconds_total"), 0)
        deadline = time.monotonic() + 5
        while (metric(leader, "jam_balancer_etcd_keepalive_seconds_count") or
               0) == 0:
            self.assertLess(time.monotonic(), deadline, "no keepalive counted")
            time.sleep(0.1)

    def test_kill_9_of_the_leader_hands_over_to_the_standby(self):
        servers = [self.start_replica(), self.start_replica()]
        leader, _ = self.wait_for_one_leader(servers)
        standby = servers[1 - servers.index(leader)]
        old_epoch = harness.epoch_of(leader.target)
        added = harness.jamctl(leader.target, "add-user", "j1", "ann")
        self.assertEqual(added.returncode, 0, harness.describe(added))
        killed = time.monotonic()
        leader.kill()
        new_leader, _ = self.wait_for_one_leader([standby])
        took = time.monotonic() - killed
        print(f"\nkill -9 of the leader: the standby answered {took:.2f} s "
              f"after (lease {TTL_S} s)")
        self.assertLess(took, TAKEOVER_BOUND_S)
        new_epoch = harness.epoch_of(new_leader.target)
        self.assertGreater(new_epoch, old_epoch)
        # The new leader starts empty: the front ends resupply it.
        stats = harness.json_lines(self, harness.jamctl(new_leader.target,
                                                        "stats"))[0]
        self.assertEqual(stats.get("userCount", "0"), "0", stats)

    def test_sigterm_of_the_leader_hands_over_at_once(self):
        servers = [self.start_replica(), self.start_replica()]
        leader, _ = self.wait_for_one_leader(servers)
        standby = servers[1 - servers.index(leader)]
        stopped = time.monotonic()
        leader.process.send_signal(signal.SIGTERM)
        self.wait_for_one_leader([standby])
        took = time.monotonic() - stopped
        print(f"\nSIGTERM of the leader: the standby answered {took:.2f} s "
              f"after (lease {TTL_S} s; polled every {POLL_S} s)")
        self.assertLess(took, TAKEOVER_BOUND_S)
        self.assertEqual(leader.wait_for_exit(), 0)

    def test_a_leader_paused_past_its_lease_answers_nothing_after(self):
        servers = [self.start_replica(), self.start_replica()]
        leader, _ = self.wait_for_one_leader(servers)
        standby = servers[1 - servers.index(leader)]
        leader.process.send_signal(signal.SIGSTOP)
        try:
            self.wait_for_one_leader([standby])
        finally:
            leader.process.send_signal(signal.SIGCONT)
        # At once after resuming: its fence has passed, whatever etcd says.
        refused = harness.jamctl(leader.target, "stats")
        self.assertEqual(refused.returncode, 1, harness.describe(refused))
        self.assertIn("UNAVAILABLE", refused.stderr)
        # It stays a standby behind the new leader.
        time.sleep(3 * TTL_S)
        self.assertFalse(answers(leader))
        self.assertTrue(answers(standby))


if __name__ == "__main__":
    harness.main()
