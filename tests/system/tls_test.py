"""TLS and mutual TLS on the gRPC port, black-box: certificates made with
openssl at test time (tests/system/certs.py), the real server, and three
clients: jamctl (the C++ client library), Python grpcio (Debian's
python3-grpcio, a third-party gRPC stack) and buf curl (Go's TLS).

- TLS only (--tls_cert, --tls_key): a client that trusts the CA is
  answered, by IP address and by name; plaintext and a client that does not
  trust the CA are not.
- Mutual TLS (--tls_client_ca): a client without a certificate, or with one
  from another CA, is refused; with the right certificate it is answered.
- /metrics stays plain HTTP on its own port.
- Bad flags (a key without a certificate, an unreadable file, a key that is
  not the certificate's, --etcd_* without --etcd_endpoints) refuse to start,
  naming the flag and the file.
"""

import json
import unittest
import urllib.request

import grpc

import harness
from certs import Certs

GET_STATS = "/jambalancer.v1.JamBalancerService/GetStats"
# How long a refused client may try before it gives up.
REFUSED_DEADLINE = "2s"


def grpcio_get_stats(target, root=None, cert=None, key=None, timeout=5):
    """GetStats through Python grpcio over TLS (root, cert, key: PEM file
    paths or None), or plaintext when root is None. An empty GetStatsRequest
    is zero bytes, so no generated code is needed. Returns the answer's
    bytes; raises grpc.RpcError."""
    def read(path):
        if path is None:
            return None
        with open(path, "rb") as file:
            return file.read()

    if root is None:
        channel = grpc.insecure_channel(target)
    else:
        channel = grpc.secure_channel(
            target, grpc.ssl_channel_credentials(read(root), read(key),
                                                 read(cert)))
    with channel:
        call = channel.unary_unary(GET_STATS,
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        return call(b"", timeout=timeout)


class TlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.holder = unittest.TestCase()
        cls.certs = Certs(cls.holder)

    @classmethod
    def tearDownClass(cls):
        cls.holder.doCleanups()

    def jamctl(self, server, *tls, deadline="5s", host="127.0.0.1"):
        return harness.jamctl(f"{host}:{server.port}", *tls, "stats",
                              deadline=deadline)

    def tls_flags(self, client_ca=False):
        c = self.certs
        flags = [f"--tls_cert={c.server_crt}", f"--tls_key={c.server_key}"]
        if client_ca:
            flags.append(f"--tls_client_ca={c.ca_crt}")
        return flags

    def assert_answered(self, result):
        self.assertEqual(result.returncode, 0, harness.describe(result))
        self.assertEqual(json.loads(result.stdout)["maxUsers"], 7)

    def assert_refused(self, result):
        self.assertEqual(result.returncode, 1, harness.describe(result))
        self.assertIn("UNAVAILABLE", result.stderr)

    def test_server_tls(self):
        c = self.certs
        server = harness.start_server(self, *self.tls_flags())
        self.assertIn("tls=on", server.start_line)
        # Trusting the CA: by address and by the name in the certificate.
        self.assert_answered(self.jamctl(server, f"--tls_ca={c.ca_crt}"))
        self.assert_answered(
            self.jamctl(server, f"--tls_ca={c.ca_crt}", host="localhost"))
        # A client certificate is not asked for, and does no harm.
        self.assert_answered(
            self.jamctl(server, f"--tls_ca={c.ca_crt}",
                        f"--tls_cert={c.client_crt}",
                        f"--tls_key={c.client_key}"))
        # Plaintext, and TLS trusting only another CA, are refused.
        self.assert_refused(self.jamctl(server, deadline=REFUSED_DEADLINE))
        self.assert_refused(
            self.jamctl(server, f"--tls_ca={c.other_ca_crt}",
                        deadline=REFUSED_DEADLINE))
        # A third-party client.
        # (max_users is 7, so the answer is not empty.)
        self.assertTrue(grpcio_get_stats(server.target, root=c.ca_crt))
        with self.assertRaises(grpc.RpcError) as refused:
            grpcio_get_stats(server.target, timeout=2)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # Metrics stay plain HTTP on their own port.
        with urllib.request.urlopen(
                f"http://127.0.0.1:{server.metrics_port}/metrics",
                timeout=10) as response:
            self.assertIn('jam_balancer_max_users{pool="default"} 7',
                          response.read().decode())

    def test_mutual_tls(self):
        c = self.certs
        server = harness.start_server(self, *self.tls_flags(client_ca=True))
        self.assertIn("tls=mutual", server.start_line)
        own = [f"--tls_ca={c.ca_crt}", f"--tls_cert={c.client_crt}",
               f"--tls_key={c.client_key}"]
        self.assert_answered(self.jamctl(server, *own))
        self.assertEqual(harness.jamctl(server.target, *own, "health")
                         .returncode, 0)
        # No certificate; one of another CA; plaintext.
        self.assert_refused(
            self.jamctl(server, f"--tls_ca={c.ca_crt}",
                        deadline=REFUSED_DEADLINE))
        self.assert_refused(
            self.jamctl(server, f"--tls_ca={c.ca_crt}",
                        f"--tls_cert={c.other_client_crt}",
                        f"--tls_key={c.other_client_key}",
                        deadline=REFUSED_DEADLINE))
        self.assert_refused(self.jamctl(server, deadline=REFUSED_DEADLINE))

        # Python grpcio: answered with the certificate, refused without it
        # and with the other CA's.
        self.assertTrue(grpcio_get_stats(server.target, c.ca_crt,
                                         c.client_crt, c.client_key))
        for cert, key in ((None, None),
                          (c.other_client_crt, c.other_client_key)):
            with self.subTest(grpcio_cert=cert):
                with self.assertRaises(grpc.RpcError) as refused:
                    grpcio_get_stats(server.target, c.ca_crt, cert, key,
                                     timeout=2)
                self.assertEqual(refused.exception.code(),
                                 grpc.StatusCode.UNAVAILABLE)

        # buf curl (Go's TLS stack) with and without the certificate.
        url = f"https://127.0.0.1:{server.port}{GET_STATS}"
        answered = harness.run([harness.BUF, "curl", "--timeout", "10s",
                                "--protocol", "grpc", "--cacert", c.ca_crt,
                                "--cert", c.client_crt, "--key", c.client_key,
                                "-d", "{}", url])
        self.assert_answered(answered)
        refused = harness.run([harness.BUF, "curl", "--timeout", "10s",
                               "--protocol", "grpc", "--cacert", c.ca_crt,
                               "-d", "{}", url])
        self.assertNotEqual(refused.returncode, 0, harness.describe(refused))
        self.assertNotIn("maxUsers", refused.stdout)

    def test_bad_flags_refuse_to_start(self):
        c = self.certs
        missing = c.path("missing.crt")
        cases = [
            ([f"--tls_key={c.server_key}"], ["tls_key", "tls_cert"]),
            ([f"--tls_cert={c.server_crt}"], ["tls_cert", "tls_key"]),
            ([f"--tls_client_ca={c.ca_crt}"], ["tls_client_ca", "tls_cert"]),
            ([f"--tls_cert={missing}", f"--tls_key={c.server_key}"],
             ["tls_cert", missing, "cannot read"]),
            ([f"--tls_cert={c.server_crt}", f"--tls_key={c.client_key}"],
             ["tls_key", c.client_key, "not the key of"]),
            ([*self.tls_flags(), f"--tls_client_ca={missing}"],
             ["tls_client_ca", missing]),
            ([f"--etcd_cacert={c.ca_crt}"], ["etcd_cacert", "etcd_endpoints"]),
        ]
        for flags, words in cases:
            with self.subTest(flags=flags):
                server = harness.launch_server(self, *flags)
                self.assertIsNone(server.wait_for_start(),
                                  "started: " + server.stderr())
                self.assertNotEqual(server.process.returncode, 0)
                for word in words:
                    self.assertIn(word, server.stderr())

    def test_jamctl_names_a_bad_file(self):
        result = harness.jamctl("127.0.0.1:1",
                                f"--tls_ca={self.certs.path('nope.crt')}",
                                "stats")
        self.assertEqual(result.returncode, 2, harness.describe(result))
        self.assertIn("nope.crt", result.stderr)
        self.assertIn("cannot read", result.stderr)
        result = harness.jamctl("127.0.0.1:1",
                                f"--tls_cert={self.certs.client_crt}",
                                "stats")
        self.assertEqual(result.returncode, 2, harness.describe(result))
        self.assertIn("--tls_key", result.stderr)


if __name__ == "__main__":
    harness.main()
