"""Replicas on an etcd that speaks TLS only and requires client certificates
(etcd_cluster.py with tls: --client-cert-auth; peers plain), certificates
made by openssl at test time (certs.py):

- a balancer with --etcd_cacert, --etcd_cert and --etcd_key leads and
  answers (its own gRPC port stays plaintext: the two are independent);
- one with only --etcd_cacert (no client certificate) never leads, answers
  nothing, and logs that it cannot reach etcd;
- one that trusts another CA never leads either.
"""

import time
import unittest

import harness
from certs import Certs
from etcd_cluster import EtcdCluster

TTL_S = 1
LEAD_BOUND_S = 15
# How long a replica that cannot reach etcd is watched for not leading.
NEVER_LEADS_S = 4


def answers(server):
    return harness.jamctl(server.target, "stats", deadline="1s").returncode == 0


class EtcdTlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.holder = unittest.TestCase()
        cls.certs = Certs(cls.holder)
        cls.etcd = EtcdCluster(cls.holder, tls=cls.certs)

    @classmethod
    def tearDownClass(cls):
        cls.holder.doCleanups()

    def start_replica(self, *tls):
        return harness.start_server(
            self, f"--etcd_endpoints={self.etcd.endpoints}",
            f"--election_ttl={TTL_S}s", "--resync_grace=0s", *tls)

    def test_etcd_answers_only_over_tls_with_a_client_certificate(self):
        # The cluster as the replicas will see it: etcdctl without a client
        # certificate is refused.
        c = self.certs
        refused = harness.run(
            [self.etcd.etcdctl, f"--endpoints={self.etcd.endpoints}",
             f"--cacert={c.ca_crt}", "--dial-timeout=2s",
             "--command-timeout=2s", "endpoint", "health"])
        self.assertNotEqual(refused.returncode, 0, harness.describe(refused))
        self.assertEqual(self.etcd.etcdctl_run("endpoint", "health")
                         .returncode, 0)

    def test_replica_with_a_client_certificate_leads(self):
        c = self.certs
        began = time.monotonic()
        server = self.start_replica(f"--etcd_cacert={c.ca_crt}",
                                    f"--etcd_cert={c.client_crt}",
                                    f"--etcd_key={c.client_key}")
        while not answers(server):
            self.assertLess(time.monotonic() - began, LEAD_BOUND_S,
                            server.stderr())
            time.sleep(0.1)
        print(f"\nleading over TLS {time.monotonic() - began:.2f} s after "
              "the start")
        self.assertIn("leadership: leading", server.stderr())
        self.assertEqual(
            harness.jamctl(server.target, "health",
                           "jambalancer.v1.JamBalancerService").returncode, 0)

    def assert_never_leads(self, server, error):
        deadline = time.monotonic() + NEVER_LEADS_S
        while time.monotonic() < deadline:
            self.assertFalse(answers(server), server.stderr())
            time.sleep(0.2)
        self.assertNotIn("leadership: leading", server.stderr())
        logged = [line for line in server.lines()
                  if "leadership: cannot grant a lease" in line]
        self.assertTrue(logged, server.stderr())
        self.assertIn(error, logged[0])
        self.assertIn("etcd_tls=on (check --etcd_cacert", logged[0])
        print(f"\n{logged[0].strip()}")

    def test_replica_without_a_client_certificate_never_leads(self):
        server = self.start_replica(f"--etcd_cacert={self.certs.ca_crt}")
        self.assert_never_leads(server, "UNAVAILABLE: etcd LeaseGrant")

    def test_replica_trusting_another_ca_never_leads(self):
        c = self.certs
        server = self.start_replica(f"--etcd_cacert={c.other_ca_crt}",
                                    f"--etcd_cert={c.client_crt}",
                                    f"--etcd_key={c.client_key}")
        self.assert_never_leads(server, "UNAVAILABLE: etcd LeaseGrant")

    def test_bad_etcd_tls_flags_refuse_to_start(self):
        c = self.certs
        missing = c.path("missing.key")
        endpoints = f"--etcd_endpoints={self.etcd.endpoints}"
        for flags, words in [
            ([f"--etcd_cert={c.client_crt}"], ["etcd_cert", "etcd_key"]),
            ([f"--etcd_cert={c.client_crt}", f"--etcd_key={missing}"],
             ["etcd_key", missing, "cannot read"]),
        ]:
            with self.subTest(flags=flags):
                server = harness.launch_server(self, endpoints, *flags)
                self.assertIsNone(server.wait_for_start(),
                                  "started: " + server.stderr())
                for word in words:
                    self.assertIn(word, server.stderr())


if __name__ == "__main__":
    harness.main()
