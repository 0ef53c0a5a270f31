"""jamctl, on the C++ client library, given several replicas: two
jam-balancer processes with --etcd_endpoints elect one leader through a
three-member etcd cluster on loopback (tests/system/etcd_cluster.py), and
`jamctl --target=A,B` reaches whichever of them leads, `jamctl leader` names
it, and a call started right after kill -9 of the leader is answered by the
new leader within its deadline. Times are measured and printed; only
generous bounds are asserted.
"""

import time
import unittest

import harness
from etcd_cluster import EtcdCluster

# The replicas' etcd lease, and how long a leader may take to be elected.
TTL_S = 1
POLL_S = 0.05
ELECTION_BOUND_S = 10
# The deadline of the call made right after the kill.
DEADLINE = "5s"


def answers(server):
    """Whether `server` alone answers a balancer call (GetStats)."""
    return harness.jamctl(server.target, "stats", deadline="1s").returncode == 0


def both(servers):
    """--target for all of `servers`."""
    return ",".join(s.target for s in servers)


class ClientOfReplicasTest(unittest.TestCase):

    def setUp(self):
        self.etcd = EtcdCluster(self)
        self.servers = [self.start_replica(), self.start_replica()]

    def start_replica(self):
        return harness.start_server(
            self, f"--etcd_endpoints={self.etcd.endpoints}",
            f"--election_ttl={TTL_S}s", "--resync_grace=0s")

    def wait_for_leader(self, servers):
        """Polls each of `servers` alone until one answers; returns it."""
        began = time.monotonic()
        while time.monotonic() - began < ELECTION_BOUND_S:
            for server in servers:
                if answers(server):
                    return server
            time.sleep(POLL_S)
        self.fail(f"no leader within {ELECTION_BOUND_S} s: " + "\n".join(
            s.stderr() for s in servers))

    def leader_line(self, target, **kwargs):
        """`jamctl leader` against `target`, its one JSON line parsed."""
        lines = harness.json_lines(self,
                                   harness.jamctl(target, "leader", **kwargs))
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(set(lines[0]), {"leader", "epoch"}, lines[0])
        return lines[0]

    def test_every_call_reaches_whichever_replica_leads(self):
        leader = self.wait_for_leader(self.servers)
        standby = self.servers[1 - self.servers.index(leader)]
        # The standby alone refuses, naming the leader (one target: one
        # call, as before).
        refused = harness.jamctl(standby.target, "stats")
        self.assertEqual(refused.returncode, 1, harness.describe(refused))
        self.assertIn(f"leader at {leader.target}", refused.stderr)
        # Given both, in either order, jamctl reaches the leader.
        for order in ([leader, standby], [standby, leader]):
            with self.subTest(first=order[0].target):
                added = harness.jamctl(both(order), "add-user", "j",
                                       f"u{order[0].port}")
                self.assertEqual(added.returncode, 0,
                                 harness.describe(added))
                stats = harness.json_lines(
                    self, harness.jamctl(both(order), "stats"))[0]
                self.assertEqual(stats["jamCount"], "1", stats)
        # Both calls reached the leader's one pool.
        stats = harness.json_lines(self, harness.jamctl(leader.target,
                                                        "stats"))[0]
        self.assertEqual(stats["userCount"], "2", stats)

    def test_leader_names_the_leader_and_its_epoch(self):
        leader = self.wait_for_leader(self.servers)
        standby = self.servers[1 - self.servers.index(leader)]
        for order in ([leader, standby], [standby, leader]):
            with self.subTest(first=order[0].target):
                line = self.leader_line(both(order))
                self.assertEqual(line["leader"], leader.target)
                self.assertGreater(int(line["epoch"]), 0, line)
        # The leader alone names itself; the standby alone does not answer.
        self.assertEqual(self.leader_line(leader.target)["leader"],
                         leader.target)
        refused = harness.jamctl(standby.target, "leader")
        self.assertEqual(refused.returncode, 1, harness.describe(refused))
        self.assertIn("jamctl: leader failed: UNAVAILABLE:", refused.stderr)

    def test_a_call_right_after_kill_9_of_the_leader_reaches_the_new_one(self):
        leader = self.wait_for_leader(self.servers)
        standby = self.servers[1 - self.servers.index(leader)]
        targets = both([leader, standby])  # The dead one first.
        old_epoch = int(self.leader_line(targets)["epoch"])
        added = harness.jamctl(targets, "add-user", "j", "ann")
        self.assertEqual(added.returncode, 0, harness.describe(added))

        leader.kill()
        began = time.monotonic()
        added = harness.jamctl(targets, "add-user", "j", "bob",
                               deadline=DEADLINE)
        took = time.monotonic() - began
        print(f"\nkill -9 of the leader: jamctl --target=A,B "
              f"--deadline={DEADLINE} add-user answered by the new leader "
              f"{took:.2f} s after (lease {TTL_S} s)")
        self.assertEqual(added.returncode, 0, harness.describe(added))
        # The new leader started empty (front ends resupply it): bob alone.
        self.assertEqual(harness.json_lines(self, added)[0]["userCount"], 1)

        line = self.leader_line(targets)
        self.assertEqual(line["leader"], standby.target)
        self.assertGreater(int(line["epoch"]), old_epoch, line)


if __name__ == "__main__":
    harness.main()
