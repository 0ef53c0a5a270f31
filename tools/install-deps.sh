#!/usr/bin/env bash
# Installs everything the build and the tests need on Debian 12 (run as root):
# the Debian packages, then the npm tools pinned in tools/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev grpc-proto prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format python3 curl yamllint
  # A real Prometheus server and promtool, for the metrics tests.
  prometheus
  # A real browser for the browser test (tests/browser, playwright-core).
  chromium
  # A real etcd cluster (etcd, etcdctl) for the HA tests (label ha), and
  # `ip netns` for the partition test.
  etcd-server etcd-client iproute2
  # clang and its sanitizer and libFuzzer runtimes, for tools/sanitize.sh.
  clang-14 libclang-rt-14-dev
  # Raw HTTP/2 and gRPC clients for the attack tests (label attack).
  python3-h2 python3-grpcio
)
# Node.js and npm only if no node is on the machine yet (some images ship a
# newer one than Debian's).
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
# kubectl (for `kubectl kustomize` in the deploy checks) only if none is there:
# Debian's kubernetes-client would conflict with an installed one.
command -v kubectl >/dev/null || packages+=(kubernetes-client)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Third-party tools used by the tests (buf; the deploy checks' packages),
# installed again when the lock file asks for what is not there.
if [ ! -x tools/node_modules/.bin/buf ] ||
  ! (cd tools && npm ls --all >/dev/null 2>&1); then
  (cd tools && npm ci --no-audit --no-fund)
fi

# The Node.js client's dependencies (client/node), installed again when its
# lock file asks for what is not there.
if [ ! -d client/node/node_modules ] ||
  ! (cd client/node && npm ls --all >/dev/null 2>&1); then
  (cd client/node && npm ci --no-audit --no-fund)
fi

# The demo front end's and the browser test's packages (both link
# client/node, installed above), installed again when their lock files ask
# for what is not there.
for dir in examples/frontend tests/browser; do
  if [ ! -d "$dir/node_modules" ] ||
    ! (cd "$dir" && npm ls --all >/dev/null 2>&1); then
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
done
