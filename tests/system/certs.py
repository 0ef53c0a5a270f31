"""Certificates for the TLS tests, made with `openssl` at test time in a
temporary folder (removed by the test's cleanup):

  ca.crt                 the CA that signs everything below
  server.crt/.key        a server certificate for 127.0.0.1, ::1 and
                         localhost (subjectAltName), for the balancer and
                         for etcd members
  client.crt/.key        a client certificate (CN jam-client)
  other-ca.crt           a second, unrelated CA
  other-client.crt/.key  a client certificate that other CA signed

EC P-256 keys (fast to make), PKCS#8 PEM, valid one day.

Also a command for tests in other languages (the Node client's):
`python3 certs.py DIR` makes the same files in DIR, which must exist.
"""

import os
import shutil
import subprocess
import tempfile

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
OPENSSL_TIMEOUT_S = 30


def _openssl(*args, cwd):
    result = subprocess.run([OPENSSL, *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=OPENSSL_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {result.stderr}")


def _key(name, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _ca(name, cwd):
    _key(name, cwd)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-sha256",
             "-days", "1", "-subj", f"/CN={name}", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign", "-out", f"{name}.crt",
             cwd=cwd)


def _leaf(name, ca, cn, extensions, cwd):
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}",
             "-out", f"{name}.csr", cwd=cwd)
    with open(os.path.join(cwd, f"{name}.ext"), "w") as ext:
        ext.write(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
             "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "1",
             "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
             cwd=cwd)


def make(d):
    """Makes the files above in the folder `d`."""
    _ca("ca", d)
    _leaf("server", "ca", "jam-balancer",
          "basicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\n"
          "extendedKeyUsage=serverAuth,clientAuth\n"
          "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n", d)
    _leaf("client", "ca", "jam-client",
          "basicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\n"
          "extendedKeyUsage=clientAuth\n", d)
    _ca("other-ca", d)
    _leaf("other-client", "other-ca", "intruder",
          "basicConstraints=CA:FALSE\n"
          "keyUsage=critical,digitalSignature\n"
          "extendedKeyUsage=clientAuth\n", d)


class Certs:
    """Makes the files above in a temporary folder that `test`'s cleanup
    removes; each attribute is a path (ca_crt: ca.crt, other_client_key:
    other-client.key)."""

    def __init__(self, test):
        self.dir = tempfile.mkdtemp(prefix="jam-certs-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        make(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def __getattr__(self, name):
        # ca_crt -> ca.crt, other_client_key -> other-client.key
        stem, _, ext = name.rpartition("_")
        if ext not in ("crt", "key") or not stem:
            raise AttributeError(name)
        return self.path(f"{stem.replace('_', '-')}.{ext}")


if __name__ == "__main__":
    import sys
    make(sys.argv[1])
