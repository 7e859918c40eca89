#!/bin/sh
# Command 2: set everything up on Debian 12, build, and run the whole test
# suite: C unit tests (cmocka, under meson test) and end-to-end tests
# (pytest, driving the real tallyd against real redis-server and postgres).
#   scripts/test.sh              normal build in build/, then the container
#                                tests (podman: images, play kube, kube manifests)
#   scripts/test.sh --sanitize   ASan+UBSan build in build-asan/ (no containers)
#   scripts/test.sh --unit       setup, build and the unit tests only
#   scripts/test.sh --no-containers   unit and end-to-end tests
#   scripts/test.sh --pristine   the front door: the README's two commands,
#                                each in a pristine Debian 12 root made by
#                                debootstrap (tests/pristine; needs root)
# The unit tests are required (-Dtests=enabled): a missing cmocka is an
# error, never a smaller suite. A failed setup or build is named, with the
# last lines of its output. The last line printed is "N passed, N failed";
# the exit status is 0 only when tests ran and none failed.
set -eu
cd -P -- "$(dirname -- "$0")/.." >/dev/null # (CDPATH would print the directory)
. scripts/lib.sh

build=build
opts="-Dtests=enabled -Db_sanitize=none -Dfuzz=false"
suites="unit e2e containers"
for arg in "$@"; do
    case $arg in
    --sanitize)
        build="build-asan"
        opts="-Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -Dfuzz=false"
        suites=$(echo "$suites" | sed 's/ containers//')
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=66:${ASAN_OPTIONS:-}"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=67:${UBSAN_OPTIONS:-}"
        ;;
    --unit) suites="unit" ;;
    --no-containers) suites=$(echo "$suites" | sed 's/ containers//') ;;
    --pristine) suites="pristine" ;;
    *)
        echo "usage: scripts/test.sh [--sanitize] [--unit | --no-containers | --pristine]" >&2
        exit 2
        ;;
    esac
done

# A setup or build that fails still ends with the line CI reads.
trap '[ $? -eq 0 ] || echo "0 passed, 1 failed"' EXIT
if [ "$suites" = pristine ]; then
    # The roots install and build their own clones; this machine needs
    # only what drives them. Results go to .logs/, not to a build/ that
    # would then be empty.
    install_packages "test --pristine" debootstrap git python3 python3-pytest apache2-utils
    build=.logs
else
    scripts/setup.sh --test
    # shellcheck disable=SC2086
    ensure_build "$build" $opts
    step "$build" "building everything in $build/ (ninja -C $build)" ninja -C "$build"
fi
trap - EXIT

mkdir -p "$build"
rm -f "$build/meson-logs/testlog.json" "$build"/pytest-*.xml
results=""
for suite in $suites; do
    case $suite in
    unit)
        results="$build/meson-logs/testlog.json"
        say "unit tests (meson test -C $build)"
        meson test -C "$build" --print-errorlogs || true
        ;;
    e2e)
        say "end-to-end tests (pytest tests/e2e, TALLYD=$build/tallyd)"
        TALLYD="$PWD/$build/tallyd" /usr/bin/python3 -m pytest tests/e2e -q -p no:cacheprovider \
            --junitxml="$build/pytest-e2e.xml" || true
        results="$results $build/pytest-e2e.xml"
        ;;
    containers)
        say "container tests (pytest tests/containers: podman images, play kube, manifests)"
        /usr/bin/python3 -m pytest tests/containers -q -p no:cacheprovider \
            --junitxml="$build/pytest-containers.xml" || true
        results="$results $build/pytest-containers.xml"
        ;;
    pristine)
        say "front-door tests (pytest tests/pristine: the two commands in pristine Debian 12 roots)"
        /usr/bin/python3 -m pytest tests/pristine -v -s -p no:cacheprovider \
            --junitxml="$build/pytest-pristine.xml" || true
        results="$results $build/pytest-pristine.xml"
        ;;
    esac
done
# shellcheck disable=SC2086
exec /usr/bin/python3 scripts/summary.py $results
