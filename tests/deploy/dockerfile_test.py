"""Static checks of deploy/docker/Dockerfile and .dockerignore, without a
container engine: the Dockerfile lints clean (npm dockerfile-utils), its
stages are Debian 12, the build stage installs packages of
tools/install-deps.sh and runs tools/docker-build-steps.sh, the runtime stage
runs as a non-root user, exposes the server's default ports and checks
health with jamctl, and the build context holds what COPY takes and no more.
docker_build_steps_test.py builds with the same steps and checks that the
packages suffice.

Usage: python3 dockerfile_test.py --server=PATH
"""

import argparse
import os
import re
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
import dockerfile as d  # noqa: E402

SERVER = None


def server_default(flag):
    """The default value of a jam-balancer flag, from its --helpfull."""
    out = subprocess.run([SERVER, "--helpfull"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    match = re.search(rf"--{flag} \(.*?\);\s+default: \"(.*?)\";", text, re.S)
    if not match:
        raise AssertionError(f"no default of --{flag} in --helpfull:\n{text}")
    return match.group(1)


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = d.parse_dockerfile()
        cls.build, cls.runtime = cls.stages[0], cls.stages[-1]

    def test_lints_clean(self):
        lint = os.path.join(d.ROOT, "tools", "node_modules", ".bin", "dockerfile-utils")
        result = subprocess.run([lint, "lint", d.DOCKERFILE], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout.strip(), "")

    def test_two_debian_12_stages(self):
        self.assertEqual([(s.image, s.name) for s in self.stages],
                         [("debian:bookworm", "build"), ("debian:bookworm-slim", None)])

    def test_build_packages_are_install_deps_packages(self):
        packages = d.apt_packages(self.build)
        self.assertIn("build-essential", packages)
        self.assertEqual(sorted(set(packages) - d.install_deps_packages()), [],
                         "build-stage packages that tools/install-deps.sh does not install")

    def test_build_runs_the_steps_script_and_the_runtime_takes_its_output(self):
        runs = [r.args for r in self.build.all("RUN") if "docker-build-steps.sh" in r.args]
        self.assertEqual(len(runs), 1)
        match = re.fullmatch(r"tools/docker-build-steps\.sh (\S+) (\S+)", runs[0])
        self.assertTrue(match, runs[0])
        out_dir = match.group(2)
        copies = [c.args for c in self.runtime.all("COPY")]
        self.assertEqual(copies, [f"--from=build {out_dir}/bin/ /usr/local/bin/"])

    def test_runtime_installs_libraries_only(self):
        packages = d.apt_packages(self.runtime)
        self.assertTrue(packages)
        for package in packages:
            self.assertRegex(package, r"^lib", "runtime packages are shared libraries")
            self.assertNotRegex(package, r"-dev$")
        for run in self.runtime.all("RUN"):
            if "apt-get install" in run.args:
                self.assertIn("--no-install-recommends", run.args)
                self.assertIn("rm -rf /var/lib/apt/lists/*", run.args)

    def test_runs_as_a_non_root_user(self):
        user = self.runtime.one("USER").args
        match = re.fullmatch(r"(\d+):(\d+)", user)
        self.assertTrue(match, f"numeric USER uid:gid, so Kubernetes can verify it: {user}")
        self.assertGreater(int(match.group(1)), 0)
        created = " ".join(r.args for r in self.runtime.all("RUN"))
        self.assertIn(f"--uid {match.group(1)}", created)
        self.assertIn(f"--gid {match.group(2)}", created)
        # USER comes before the command runs, after everything root does.
        keywords = [i.keyword for i in self.runtime.instructions]
        self.assertGreater(keywords.index("USER"), max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY")))

    def test_exposes_the_server_default_ports(self):
        grpc = server_default("listen").rsplit(":", 1)[1]
        metrics = server_default("metrics_listen").rsplit(":", 1)[1]
        self.assertEqual(self.runtime.one("EXPOSE").args.split(), [grpc, metrics])

    def test_healthcheck_asks_jamctl_health_on_the_grpc_port(self):
        grpc = server_default("listen").rsplit(":", 1)[1]
        healthcheck = self.runtime.one("HEALTHCHECK")
        command = healthcheck.exec_form()
        self.assertIsNotNone(command, "exec form")
        self.assertEqual(command[0], "jamctl")
        self.assertEqual(command[-1], "health")
        self.assertIn(f"--target=127.0.0.1:{grpc}", command)
        deadline = next(a for a in command if a.startswith("--deadline="))
        timeout = healthcheck.flags()["timeout"]
        self.assertLess(int(deadline.split("=")[1].rstrip("s")), int(timeout.rstrip("s")),
                        "jamctl gives up before Docker kills it")

    def test_entrypoint_is_the_server(self):
        self.assertEqual(self.runtime.one("ENTRYPOINT").exec_form(), ["jam-balancer"])
        self.assertEqual(self.runtime.all("CMD"), [])

    def test_context_holds_what_copy_takes_and_no_more(self):
        files = d.context_files()
        copied = d.copied_files(self.build, files)
        self.assertEqual(sorted(f for f, _ in copied), files, "every context file is copied")
        self.assertIn("tools/docker-build-steps.sh", files)
        self.assertIn("CMakeLists.txt", files)
        for f in files:
            self.assertNotRegex(f, r"^(build|\.git|tools/node_modules|deploy|tests)(/|$)")

    def test_dockerignore_semantics(self):
        patterns = d.read_dockerignore()
        self.assertTrue(d.ignored("build/server/jam-balancer", patterns))
        self.assertTrue(d.ignored("tools/node_modules/.bin/buf", patterns))
        self.assertTrue(d.ignored("tools/build.sh", patterns))
        self.assertTrue(d.ignored(".git/HEAD", patterns))
        self.assertFalse(d.ignored("server/main.cc", patterns))
        self.assertFalse(d.ignored("tools/docker-build-steps.sh", patterns))


def main():
    global SERVER
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--server", required=True)
    known, rest = parser.parse_known_args()
    SERVER = os.path.abspath(known.server)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
