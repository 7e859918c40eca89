#!/bin/sh
# Command 2: set everything up on Debian 12, build, and run the whole test
# suite: C unit tests (cmocka, under meson test) and end-to-end tests
# (pytest, driving the real tallyd against real redis-server and postgres).
#   scripts/test.sh              normal build in build/, then the container
#                                tests (podman: images, play kube, kube manifests)
#   scripts/test.sh --sanitize   ASan+UBSan build in build-asan/ (no containers)
# The last line printed is "N passed, N failed"; the exit status is 0 only
# when tests ran and none failed.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --test

build=build
opts=""
if [ "${1:-}" = "--sanitize" ]; then
    build=build-asan
    opts="-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=66:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=67:${UBSAN_OPTIONS:-}"
fi
# shellcheck disable=SC2086
[ -f "$build/build.ninja" ] || meson setup "$build" $opts >/dev/null
ninja -C "$build" >/dev/null

rm -f "$build/meson-logs/testlog.json" "$build"/pytest-*.xml
meson test -C "$build" --print-errorlogs || true
TALLYD="$PWD/$build/tallyd" /usr/bin/python3 -m pytest tests/e2e -q -p no:cacheprovider \
    --junitxml="$build/pytest-e2e.xml" || true
results="$build/pytest-e2e.xml"
if [ "$build" = build ]; then
    /usr/bin/python3 -m pytest tests/containers -q -p no:cacheprovider \
        --junitxml="$build/pytest-containers.xml" || true
    results="$results $build/pytest-containers.xml"
fi
# shellcheck disable=SC2086
exec /usr/bin/python3 scripts/summary.py "$build/meson-logs/testlog.json" $results
