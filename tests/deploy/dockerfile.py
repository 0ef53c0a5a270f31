"""Reading deploy/docker/Dockerfile, .dockerignore and the Debian package
database, for the deploy tests that check the image without a container
engine (dockerfile_test.py, docker_build_steps_test.py). Python 3 standard
library only.
"""

import json
import os
import re
import shlex
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILE = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
INSTALL_DEPS = os.path.join(ROOT, "tools", "install-deps.sh")


class Instruction:
    def __init__(self, keyword, args, line):
        self.keyword = keyword  # Upper case, e.g. "RUN".
        self.args = args  # The rest, continuation lines joined.
        self.line = line  # Line number of the keyword.

    def exec_form(self):
        """The JSON array of an exec-form instruction (CMD, ENTRYPOINT,
        HEALTHCHECK ... CMD), or None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            match = re.search(r"\bCMD\s+(\[.*\])\s*$", text)
            text = match.group(1) if match else ""
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) else None

    def flags(self):
        """--name=value options before the arguments, as a dict."""
        return dict(re.findall(r"--([\w-]+)=(\S+)", self.args.split(" CMD ")[0]))

    def __repr__(self):
        return f"{self.keyword} {self.args} (line {self.line})"


class Stage:
    def __init__(self, image, name):
        self.image = image
        self.name = name
        self.instructions = []

    def all(self, keyword):
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword):
        found = self.all(keyword)
        if len(found) != 1:
            raise AssertionError(f"expected one {keyword} in stage {self.name}, found {found}")
        return found[0]


def parse_dockerfile(path=DOCKERFILE):
    """Returns the stages of a Dockerfile, each with its instructions."""
    instructions = []
    pending, start = None, 0
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#") or (pending is None and not line.strip()):
                continue
            if pending is None:
                pending, start = "", number
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            pending += line
            keyword, _, args = pending.strip().partition(" ")
            instructions.append(Instruction(keyword.upper(), " ".join(args.split()), start))
            pending = None
    if pending is not None:
        raise AssertionError(f"{path}: continuation at the end of the file")
    stages = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", instruction.args, re.I)
            if not match:
                raise AssertionError(f"unreadable {instruction}")
            stages.append(Stage(match.group(1), match.group(2)))
        elif instruction.keyword == "ARG" and not stages:
            continue
        else:
            if not stages:
                raise AssertionError(f"{instruction} before FROM")
            stages[-1].instructions.append(instruction)
    return stages


def apt_packages(stage):
    """The packages that a stage's RUN instructions apt-get install."""
    packages = []
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;", run.args):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                packages += [w for w in after if not w.startswith("-")]
    return packages


def install_deps_packages():
    """Every Debian package name tools/install-deps.sh may install."""
    with open(INSTALL_DEPS, encoding="utf-8") as f:
        text = f.read()
    names = []
    for block in re.findall(r"packages\+?=\((.*?)\)", text, re.S):
        for line in block.splitlines():
            names += line.split("#", 1)[0].split()
    return set(names)


# --- .dockerignore ---------------------------------------------------------

def _pattern_matches(pattern, path):
    """Go's filepath.Match as Docker uses it, with ** for any directories."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
            if pattern.startswith("/", i):
                regex += "/?"  # "**/" also matches nothing.
                i += 1
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, path) is not None


def read_dockerignore(path=DOCKERIGNORE):
    patterns = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line[1:] if negated else line).lstrip("/")
            patterns.append((negated, pattern))
    return patterns


def ignored(relative_path, patterns):
    """Whether Docker leaves `relative_path` (a file, relative to the context)
    out of the build context: the last pattern that matches the path or one
    of its parent directories decides."""
    parts = relative_path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negated, pattern in patterns:
        if any(_pattern_matches(pattern, c) for c in candidates):
            excluded = not negated
    return excluded


def context_files(root=ROOT, patterns=None):
    """The files of the build context, in path order: everything under root
    that .dockerignore admits."""
    patterns = read_dockerignore() if patterns is None else patterns
    files = []
    for directory, dirs, names in os.walk(root):
        # Skip directories that are left out with no exception inside.
        def inside_exception(relative):
            return any(negated and (p + "/").startswith(relative + "/") for negated, p in patterns)
        dirs[:] = sorted(
            name for name in dirs
            if not ignored(os.path.relpath(os.path.join(directory, name), root), patterns)
            or inside_exception(os.path.relpath(os.path.join(directory, name), root)))
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(directory, name), root)
            if not ignored(relative, patterns):
                files.append(relative)
    return sorted(files)


def copied_files(stage, files):
    """What the stage's COPY instructions (not --from) take from the build
    context: a list of (context path, path in the image)."""
    workdir = "/"
    copied = []
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = os.path.join(workdir, instruction.args)
        if instruction.keyword != "COPY" or "--from=" in instruction.args:
            continue
        *sources, dest = instruction.args.split()
        dest = os.path.join(workdir, dest)
        for source in sources:
            source = os.path.normpath(source)
            matched = [f for f in files if f == source or f.startswith(source + "/")]
            if not matched:
                raise AssertionError(f"{instruction}: nothing in the build context matches {source}")
            for f in matched:
                if f == source:
                    target = os.path.join(dest, os.path.basename(f)) if dest.endswith("/") else dest
                else:
                    target = os.path.join(dest, os.path.relpath(f, source))
                copied.append((f, os.path.normpath(target)))
    return copied


# --- Debian packages -------------------------------------------------------

def installed_packages():
    """Installed packages: name -> {depends: [[alternatives]], provides,
    priority, essential}."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f",
         "${db:Status-Abbrev}\t${Package}\t${Priority}\t${Essential}\t${Pre-Depends}\t${Depends}\t${Provides}\n"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    packages = {}
    for line in out.splitlines():
        status, name, priority, essential, predepends, depends, provides = line.split("\t")
        if not status.startswith("ii"):
            continue
        groups = [g for g in (predepends + "," + depends).split(",") if g.strip()]
        packages[name] = {
            "depends": [[_name(a) for a in g.split("|")] for g in groups],
            "provides": [_name(p) for p in provides.split(",") if p.strip()],
            "priority": priority,
            "essential": essential == "yes",
        }
    return packages


def _name(relation):
    return relation.strip().split()[0].split(":")[0]


def base_packages(packages):
    """What a debian:bookworm(-slim) image holds before any apt-get install:
    the essential and required packages."""
    return {n for n, p in packages.items() if p["essential"] or p["priority"] == "required"}


def closure(roots, packages):
    """Every installed package that apt-get install --no-install-recommends
    of `roots` brings in. Of alternatives, the first one installed here;
    virtual packages resolve to their installed providers."""
    providers = {}
    for name, info in packages.items():
        for virtual in info["provides"]:
            providers.setdefault(virtual, []).append(name)

    def resolve(name):
        return [name] if name in packages else providers.get(name, [])

    seen = set()
    missing = []
    stack = list(roots)
    while stack:
        name = stack.pop()
        resolved = resolve(name)
        if not resolved:
            missing.append(name)
            continue
        for real in resolved[:1]:
            if real in seen:
                continue
            seen.add(real)
            for alternatives in packages[real]["depends"]:
                for alternative in alternatives:
                    if resolve(alternative):
                        stack.append(alternative)
                        break
    if missing:
        raise AssertionError(f"not installed here, so not checkable: {sorted(set(missing))}")
    return seen


def owning_packages(paths):
    """Maps each file to the Debian package that ships it, trying the path,
    its real path and their /usr-less forms (merged /usr). Returns (owners,
    unowned)."""
    candidates = {}
    for path in set(paths):
        tries = [path, os.path.realpath(path)]
        tries += [p[len("/usr"):] for p in tries if p.startswith("/usr/")]
        candidates[path] = tries
    every = sorted({c for tries in candidates.values() for c in tries})
    found = {}
    for i in range(0, len(every), 500):
        # Exits 1 when some path is nobody's; its answers still count.
        result = subprocess.run(["dpkg-query", "-S", *every[i:i + 500]],
                                capture_output=True, text=True, timeout=120)
        for line in result.stdout.splitlines():
            owners, _, owned = line.rpartition(": ")
            if owners and not owners.startswith("diversion"):
                found[owned] = owners.split(",")[0].split(":")[0].strip()
    owners, unowned = {}, []
    for path, tries in sorted(candidates.items()):
        owner = next((found[t] for t in tries if t in found), None)
        if owner:
            owners[path] = owner
        else:
            unowned.append(path)
    return owners, unowned
