#!/usr/bin/env bash
# Builds the unit and end-to-end tests (ctest labels unit, end_to_end) with
# a sanitizer preset of CMakePresets.json and runs them, stopping at the
# first report:
#   tools/sanitize.sh asan-ubsan   AddressSanitizer + UndefinedBehaviorSanitizer,
#                                  and the fuzz targets (label fuzz, each
#                                  $JAM_BALANCER_FUZZ_SECONDS, 60 by default)
#   tools/sanitize.sh tsan         ThreadSanitizer (tools/tsan.supp)
# Builds into build-<preset> (or $BUILD_DIR) only the test binaries those
# labels run (no benchmarks, no server binaries for the system tests).
# Extra arguments go to ctest, e.g. -R strand; $SANITIZE_SKIP, a ctest
# regular expression, names tests to leave out.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: tools/sanitize.sh asan-ubsan|tsan [ctest arguments]}
shift
build_dir=${BUILD_DIR:-build-$preset}
labels='unit|end_to_end'
[ "$preset" = asan-ubsan ] && labels+='|fuzz'
labels="^($labels)\$"

cmake --preset "$preset" -B "$build_dir" \
  ${JAM_BALANCER_FUZZ_SECONDS:+-DJAM_BALANCER_FUZZ_SECONDS=$JAM_BALANCER_FUZZ_SECONDS} \
  >/dev/null
# The tests' names are their binaries' target names (tests/CMakeLists.txt's
# jam_test, tests/fuzz's jam_fuzzer).
mapfile -t targets < <(ctest --test-dir "$build_dir" -N -L "$labels" |
  sed -n 's/^ *Test *#[0-9]*: *//p')
echo "sanitize.sh: building ${#targets[@]} test binaries in $build_dir"
SECONDS=0
cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]}"
echo "sanitize.sh: $preset build took ${SECONDS}s"

# Stop at the first report, with whole stacks.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$PWD/tools/tsan.supp"
# memory_release_test measures glibc malloc giving memory back; the
# sanitizers replace malloc with their own allocators.
SECONDS=0
status=0
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error \
  -L "$labels" -E "^memory_release_test\$${SANITIZE_SKIP:+|$SANITIZE_SKIP}" \
  --timeout 600 "$@" || status=$?
echo "sanitize.sh: $preset tests took ${SECONDS}s"
exit "$status"
