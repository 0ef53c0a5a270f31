"""A real network partition (issue 13, proof 6): the balancer's leader cut
off from etcd and from everyone else by a link going down, not by a signal.

A network namespace joined to this one by a veth pair on a private /30
(10.213.X.Y, picked at random among those no address or route of this
machine touches) holds replica A; replica B and three etcd members
(etcd_cluster.py) listen on the host's end of the pair, so both namespaces
reach them. A leads first; then the host's end of the veth goes down
(`ip link set ... down`): A can reach neither etcd nor any client outside.

- A fences itself: a jamctl run INSIDE the namespace (the only place A can
  still be reached from) sees it refuse with UNAVAILABLE within its TTL of
  the cut, and refuse every call after; no answer of A starts after B's
  first answer ended.
- B takes over at a higher epoch (the trailer jam-balancer-epoch, as buf
  curl shows it).
- The link comes back up: A rejoins as a standby: from the host, its calls
  are refused with UNAVAILABLE naming B's address, for several seconds,
  while B keeps serving at the same epoch.

Times are measured and printed; only generous bounds are asserted. Cleanup
(the test's, also when it fails): every process killed by its PID (A is
started by `ip netns exec`, which execs jam-balancer: its PID is the
server's, checked), then the veth and the namespace deleted. Needs root (or
CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
"""

import ipaddress
import os
import random
import re
import threading
import time
import unittest

import harness
from etcd_cluster import EtcdCluster

IP = "/usr/sbin/ip"
SERVICE = "jambalancer.v1.JamBalancerService"
# The replicas' etcd lease (--election_ttl), with etcd at
# --heartbeat-interval 50 --election-timeout 500 (etcd_cluster.py).
TTL_S = 1
POLL_S = 0.05
# Bounds of the waits, and of what the test measures (generous: a fenced
# leader stops by TTL - 0.2 s after the last keepalive etcd acknowledged).
ELECTION_BOUND_S = 10
FENCE_BOUND_S = 5
TAKEOVER_BOUND_S = 10
# How long the partition lasts at least (from the cut), and how long the
# test watches A stand by once it rejoined.
PARTITION_S = 4
REJOIN_BOUND_S = 20
STANDBY_WATCH_S = 3
TEST_BOUND_S = 60

_counter = 0


def _ip(*args):
    """Runs `ip args`; raises AssertionError if it fails."""
    result = harness.run([IP, *args], timeout=10)
    if result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {harness.describe(result)}")
    return result.stdout


def _networks_in_use():
    """Every IPv4 network an address or a route of this namespace names."""
    nets = []
    for line in _ip("-4", "-o", "addr", "show").splitlines():
        match = re.search(r"\binet (\d+\.\d+\.\d+\.\d+/\d+)", line)
        if match:
            nets.append(ipaddress.ip_interface(match.group(1)).network)
    for line in _ip("-4", "route", "show", "table", "all").splitlines():
        if line.startswith("default"):
            continue
        match = re.search(r"\b(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", line)
        if match:
            nets.append(ipaddress.ip_network(match.group(1), strict=False))
    return nets


def _pick_subnet():
    """A /30 in 10.213.0.0/16 that no address or route here overlaps."""
    used = _networks_in_use()
    for _ in range(50):
        net = ipaddress.ip_network(
            f"10.213.{random.randrange(256)}.{4 * random.randrange(64)}/30")
        if not any(net.overlaps(u) for u in used):
            return net
    raise AssertionError(f"no free /30 in 10.213.0.0/16 among {used}")


class Namespace:
    """A network namespace `name` joined by a veth pair: `host_link` here
    with `host_address`, its peer inside with `inner_address`, on a /30;
    links (and the namespace's lo) up. Deleted by the test's cleanup."""

    def __init__(self, test):
        global _counter
        _counter += 1
        tag = f"{os.getpid()}x{_counter}"
        self.name = f"jb-{os.getpid()}-{_counter}"
        self.host_link = f"jbh{tag}"   # At most 15 characters.
        self.inner_link = f"jbn{tag}"
        net = _pick_subnet()
        host, inner = list(net.hosts())
        self.host_address, self.inner_address = str(host), str(inner)
        _ip("netns", "add", self.name)
        test.addCleanup(self.delete)
        _ip("link", "add", self.host_link, "type", "veth", "peer", "name",
            self.inner_link, "netns", self.name)
        _ip("addr", "add", f"{host}/30", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        _ip("-n", self.name, "addr", "add", f"{inner}/30", "dev",
            self.inner_link)
        _ip("-n", self.name, "link", "set", self.inner_link, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    @property
    def exec_prefix(self):
        return [IP, "netns", "exec", self.name]

    def set_link(self, state):
        """`ip link set` the host's end "up" or "down"."""
        _ip("link", "set", self.host_link, state)

    def delete(self):
        """Deletes the host's end of the veth (its peer goes with it) and
        the namespace (which would take the peer too); each may be gone."""
        harness.run([IP, "link", "del", self.host_link], timeout=10)
        harness.run([IP, "netns", "del", self.name], timeout=10)


class Replica(harness.Server):
    """jam-balancer listening on `host`, run as `prefix + [server, ...]`
    (`ip netns exec NAME`, which execs the server: the PID is the
    server's)."""

    def __init__(self, host, prefix, flags):
        super().__init__(flags, prefix=prefix, host=host)

    def leadership_events(self):
        return [f"  {self.target} {line.rstrip()}" for line in self.lines()
                if " leadership: " in line]


class Probe:
    """One `jamctl stats` run: its result and when it started and ended
    (monotonic)."""

    def __init__(self, target, prefix=()):
        self.started = time.monotonic()
        self.result = harness.run(
            [*prefix, harness.JAMCTL, f"--target={target}", "--deadline=1s",
             "stats"], timeout=10)
        self.ended = time.monotonic()

    @property
    def ok(self):
        return self.result.returncode == 0

    @property
    def unavailable(self):
        return self.result.returncode == 1 and \
            "UNAVAILABLE" in self.result.stderr

    def message(self):
        return self.result.stderr.strip()


class PartitionTest(unittest.TestCase):

    def setUp(self):
        self.began = time.monotonic()
        if os.geteuid() != 0:
            self.skipTest("needs root for ip netns")
        self.ns = Namespace(self)
        self.etcd = EtcdCluster(self, host=self.ns.host_address)

    def tearDown(self):
        print(f"({self.id().rsplit('.', 1)[-1]}: "
              f"{time.monotonic() - self.began:.1f} s)")

    def start_replica(self, host, prefix=()):
        server = Replica(host, prefix, [
            f"--listen={host}:0", "--metrics_listen=127.0.0.1:0",
            f"--etcd_endpoints={self.etcd.endpoints}",
            f"--election_ttl={TTL_S}s"])
        self.addCleanup(server.kill)
        server.wait_for_port()
        # Killing the PID kills the server: `ip netns exec` exec'd it.
        self.assertEqual(os.path.realpath(f"/proc/{server.process.pid}/exe"),
                         os.path.realpath(harness.SERVER))
        return server

    def wait_for(self, what, check, timeout):
        """Polls check() (returning a value, falsy for not yet) until it
        holds; returns its value and the seconds it took."""
        began = time.monotonic()
        while True:
            value = check()
            if value:
                return value, time.monotonic() - began
            self.assertLess(time.monotonic() - began, timeout,
                            f"{what}: not within {timeout} s")
            time.sleep(POLL_S)

    def events(self, *replicas):
        return "\n".join(line for r in replicas
                         for line in r.leadership_events())

    def test_partitioned_leader_fences_itself_and_rejoins_as_standby(self):
        ns = self.ns
        inside = ns.exec_prefix
        a = self.start_replica(ns.inner_address, inside)
        # A leads (reached from the host, through the veth), then B starts.
        self.wait_for("A leads", lambda: Probe(a.target).ok, ELECTION_BOUND_S)
        b = self.start_replica(ns.host_address)
        named_a = f"leader at {a.target}"
        self.wait_for("B stands by naming A",
                      lambda: named_a in Probe(b.target).message(),
                      ELECTION_BOUND_S)
        self.assertTrue(Probe(a.target, inside).ok, "A from inside")
        a_epoch = harness.epoch_of(a.target)
        self.assertIsNotNone(a_epoch)

        # The partition, watched from both sides at once.
        a_seen = {"last_ok_started": None, "refused": None, "message": None,
                  "ok_after_refusal": [], "other": []}
        b_seen = {"first_ok": None}
        b_answered = threading.Event()
        errors = []

        def watch_a():
            # Inside the namespace: A answers until its fence, then refuses;
            # watched until B answered and the partition's end.
            deadline = cut + TAKEOVER_BOUND_S + PARTITION_S
            while time.monotonic() < deadline:
                probe = Probe(a.target, inside)
                if probe.ok:
                    a_seen["last_ok_started"] = probe.started - cut
                    if a_seen["refused"] is not None:
                        a_seen["ok_after_refusal"].append(probe.started - cut)
                elif probe.unavailable:
                    if a_seen["refused"] is None:
                        a_seen["refused"] = probe.ended - cut
                        a_seen["message"] = probe.message()
                else:
                    a_seen["other"].append((probe.ended - cut,
                                            probe.message()))
                if (a_seen["refused"] is not None and b_answered.is_set() and
                        time.monotonic() - cut >= PARTITION_S):
                    return
                time.sleep(POLL_S)

        def watch_b():
            deadline = cut + TAKEOVER_BOUND_S
            while time.monotonic() < deadline:
                probe = Probe(b.target)
                if probe.ok:
                    b_seen["first_ok"] = (probe.started - cut,
                                          probe.ended - cut)
                    b_answered.set()
                    return
                time.sleep(POLL_S)

        def guarded(work):
            def run():
                try:
                    work()
                except Exception as error:  # pylint: disable=broad-except
                    errors.append(repr(error))
            return threading.Thread(target=run, daemon=True)

        watchers = [guarded(watch_a), guarded(watch_b)]
        cut_unix = time.time()
        cut = time.monotonic()
        ns.set_link("down")
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join(timeout=TAKEOVER_BOUND_S + PARTITION_S + 15)
            self.assertFalse(watcher.is_alive(), "a watcher hung")
        partition_s = time.monotonic() - cut
        self.assertEqual(errors, [])
        # From the host, A is out of reach (not refused: unreachable).
        unreachable = Probe(a.target)
        b_epoch = harness.epoch_of(b.target)
        a_still_refuses = Probe(a.target, inside)
        ns.set_link("up")
        restored = time.monotonic()

        events = self.events(a, b)
        self.assertIsNotNone(a_seen["refused"],
                             f"A never refused inside the namespace\n{events}")
        self.assertIsNotNone(b_seen["first_ok"],
                             f"B never answered\n{events}")
        b_first_ok_started, b_first_ok_ended = b_seen["first_ok"]
        print(f"\npartition (lease {TTL_S} s, link {ns.host_link} down "
              f"{partition_s:.2f} s): A refused inside the namespace "
              f"{a_seen['refused']:.2f} s after the cut (its last answer "
              f"started at {a_seen['last_ok_started']:.2f} s): "
              f"{a_seen['message']!r}; B answered {b_first_ok_ended:.2f} s "
              f"after the cut (call started at {b_first_ok_started:.2f} s); "
              f"epochs A {a_epoch} -> B {b_epoch}; from the host A was "
              f"{unreachable.message()!r}")
        self.assertEqual(a_seen["other"], [],
                         "jamctl inside the namespace failed otherwise")
        self.assertLess(a_seen["refused"], FENCE_BOUND_S)
        self.assertIn("this replica is not the leader", a_seen["message"])
        self.assertEqual(a_seen["ok_after_refusal"], [],
                         "A answered again (s after the cut)")
        self.assertTrue(a_still_refuses.unavailable,
                        a_still_refuses.message())
        # Never both: no answer of A started after B's first one ended.
        self.assertIsNotNone(a_seen["last_ok_started"])
        self.assertLess(a_seen["last_ok_started"], b_first_ok_ended, events)
        self.assertLess(b_first_ok_ended, TAKEOVER_BOUND_S)
        self.assertIsNotNone(b_epoch)
        self.assertGreater(b_epoch, a_epoch)
        self.assertFalse(unreachable.ok)

        # The link is back: A learns of B and names it.
        named_b = f"leader at {b.target}"
        states = []  # (s after the restore, what A said), when it changed.

        def a_names_b():
            probe = Probe(a.target)
            said = "OK" if probe.ok else probe.message()
            said = re.sub(r"\s+", " ", said)
            if not states or states[-1][1] != said:
                states.append((probe.ended - restored, said))
            self.assertFalse(probe.ok, f"A answered after the restore:\n"
                             f"{self.events(a, b)}")
            return named_b in said

        self.wait_for("A names B after the restore", a_names_b,
                                REJOIN_BOUND_S)
        rejoined_s = time.monotonic() - restored
        print(f"link up: A refused naming B {rejoined_s:.2f} s after the "
              f"restore; what A said (s after the restore): " +
              "; ".join(f"{s:.2f} {said[:160]!r}" for s, said in states))

        # A stays a standby; B keeps serving at the same epoch.
        watch_end = time.monotonic() + STANDBY_WATCH_S
        rounds = 0
        while time.monotonic() < watch_end:
            refused = Probe(a.target)
            self.assertTrue(refused.unavailable, refused.message())
            self.assertIn(named_b, refused.message())
            self.assertTrue(Probe(b.target).ok, self.events(a, b))
            rounds += 1
            time.sleep(0.1)
        self.assertEqual(harness.epoch_of(b.target), b_epoch)
        leader = harness.json_lines(self, harness.jamctl(
            f"{a.target},{b.target}", "leader"))
        self.assertEqual(leader, [{"leader": b.target,
                                   "epoch": str(b_epoch)}])
        self.assertNotEqual(
            harness.jamctl(a.target, "health", SERVICE).returncode, 0)
        self.assertEqual(harness.jamctl(b.target, "health", SERVICE).returncode,
                         0)
        print(f"A a standby naming B, B answering at epoch {b_epoch}, for "
              f"{STANDBY_WATCH_S} s ({rounds} rounds)")
        print("leadership events:\n" + self.events(a, b))
        def after_cut(server, message):
            return ", ".join(f"{t - cut_unix:.2f}"
                             for t in harness.logged_at(server, message)) or "-"

        print("by the replicas' logs (s after the cut): A stepped down "
              f"{after_cut(a, 'leadership: stepped down')}, B leading "
              f"{after_cut(b, 'leadership: leading')}, A standing by behind "
              f"B {after_cut(a, f'leadership: standing by leader={b.target}')}"
              f" (link up at {restored - cut:.2f})")
        self.assertLess(time.monotonic() - self.began, TEST_BOUND_S)


if __name__ == "__main__":
    harness.main()
