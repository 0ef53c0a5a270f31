"""The Docker build, as far as it can run without a container engine:
lays out the build context the Dockerfile's COPY instructions take (after
.dockerignore) in a fresh directory, runs the Dockerfile's build step
(tools/docker-build-steps.sh) there into a fresh build directory, and checks

- that the binaries it installs start, answer health and stop on SIGTERM;
- that the build stage's Debian packages (with their dependencies and the
  base image's packages) ship every file the build used: compiler, CMake,
  protoc and the gRPC plugin, headers, CMake package files, libraries;
- that the runtime stage's packages ship every shared library the
  binaries load.

Usage: python3 docker_build_steps_test.py (builds from the work tree)
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
import dockerfile as d  # noqa: E402

# The build takes under a minute on 2 cores; leave room for a slow machine.
BUILD_TIMEOUT_S = 480
START_TIMEOUT_S = 10


class DockerBuildStepsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="deploy-docker-build-")
        try:
            cls.stages = d.parse_dockerfile()
            cls.build_stage, cls.runtime_stage = cls.stages[0], cls.stages[-1]
            cls.src = os.path.join(cls.work, "src")
            cls.out = os.path.join(cls.work, "out")
            cls.build_dir = os.path.join(cls.work, "build")
            # The context as the build stage sees it under its WORKDIR.
            workdir = cls.build_stage.one("WORKDIR").args
            for source, target in d.copied_files(cls.build_stage, d.context_files()):
                relative = os.path.relpath(target, workdir)
                assert not relative.startswith(".."), f"{target} outside WORKDIR {workdir}"
                os.makedirs(os.path.dirname(os.path.join(cls.src, relative)), exist_ok=True)
                shutil.copy2(os.path.join(d.ROOT, source), os.path.join(cls.src, relative))
            run = next(r.args for r in cls.build_stage.all("RUN") if "docker-build-steps.sh" in r.args)
            script, build_arg, out_arg = run.split()
            cls.image_out = out_arg
            started = time.monotonic()
            cls.result = subprocess.run(
                [os.path.join(cls.src, script), cls.build_dir, cls.out],
                cwd=cls.src, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=BUILD_TIMEOUT_S)
            cls.seconds = time.monotonic() - started
        except BaseException:
            shutil.rmtree(cls.work, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0,
                         f"docker-build-steps.sh failed:\n{self.result.stdout[-4000:]}\n{self.result.stderr[-4000:]}")

    def binaries(self):
        return [os.path.join(self.out, "bin", name) for name in ("jam-balancer", "jamctl")]

    def test_steps_install_both_binaries(self):
        print(f"\nbuild steps took {self.seconds:.0f} s", file=sys.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.out, "bin"))), ["jam-balancer", "jamctl"])
        for binary in self.binaries():
            self.assertTrue(os.access(binary, os.X_OK), binary)

    def test_binaries_serve_and_answer_health(self):
        server_path, jamctl = self.binaries()
        # Under timeout(1) in its own process group, so it cannot outlive
        # the test.
        server = subprocess.Popen(
            ["timeout", "--signal=KILL", "60", server_path,
             "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def kill():
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.wait(timeout=10)
            server.stderr.close()

        self.addCleanup(kill)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and " port=" not in line:
            line = server.stderr.readline()
            if not line:
                break
        match = re.search(r" port=(\d+)", line)
        self.assertTrue(match, f"no start line: {line!r}")
        health = subprocess.run([jamctl, f"--target=127.0.0.1:{match.group(1)}", "--deadline=5s", "health"],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(health.returncode, 0, health.stderr)
        self.assertIn("SERVING", health.stdout)
        server.send_signal(signal.SIGTERM)  # timeout(1) passes it on.
        self.assertEqual(server.wait(timeout=15), 0)

    def test_build_packages_ship_every_file_the_build_used(self):
        packages = d.installed_packages()
        available = d.closure(d.apt_packages(self.build_stage), packages) | d.base_packages(packages)
        used = self.files_the_build_used()
        self.assertGreater(len(used), 100)
        owners, unowned = d.owning_packages(used)
        self.assertEqual(unowned, [], "files the build used that no package ships")
        missing = sorted({f"{pkg} ({path})" for path, pkg in owners.items() if pkg not in available})
        # One file per package is enough to tell.
        seen, report = set(), []
        for entry in missing:
            pkg = entry.split()[0]
            if pkg not in seen:
                seen.add(pkg)
                report.append(entry)
        self.assertEqual(report, [], "packages the build stage lacks")

    def test_runtime_packages_ship_every_shared_library(self):
        packages = d.installed_packages()
        available = d.closure(d.apt_packages(self.runtime_stage), packages) | d.base_packages(packages)
        libraries = set()
        for binary in self.binaries():
            out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=True).stdout
            self.assertNotIn("not found", out)
            libraries |= set(re.findall(r"=> (/\S+)", out))
        self.assertGreater(len(libraries), 5)
        owners, unowned = d.owning_packages(libraries)
        self.assertEqual(unowned, [])
        missing = sorted({f"{pkg} ({path})" for path, pkg in owners.items() if pkg not in available})
        self.assertEqual(missing, [], "packages the runtime stage lacks")

    def files_the_build_used(self):
        """Absolute paths outside the build directory that the build read:
        every header (ninja -t deps), every input and tool named in
        build.ninja (libraries, protoc, CMake package files), and the tools
        in CMakeCache.txt that the build ran."""
        paths = set()
        deps = subprocess.run(["ninja", "-C", self.build_dir, "-t", "deps"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
        paths |= {line.strip() for line in deps.splitlines() if line.startswith("    /")}
        with open(os.path.join(self.build_dir, "build.ninja"), encoding="utf-8") as f:
            ninja = f.read()
        paths |= set(re.findall(r"(?<![\w.$-])(/usr/[^\s:$\"']+)", ninja))
        with open(os.path.join(self.build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
            cache = f.read()
        for tool in ("CMAKE_CXX_COMPILER", "CMAKE_AR", "CMAKE_RANLIB", "CMAKE_LINKER", "CMAKE_MAKE_PROGRAM",
                     "CMAKE_COMMAND", "CMAKE_STRIP"):
            match = re.search(rf"^{tool}:\w+=(/\S+)$", cache, re.M)
            if match:
                paths.add(match.group(1))
        paths.add(shutil.which("cmake"))
        paths.add(shutil.which("strip"))  # install --strip
        return {p for p in paths if p and os.path.isfile(p) and not p.startswith(self.work)}


if __name__ == "__main__":
    unittest.main(verbosity=2)
