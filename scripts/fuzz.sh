#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz, clang, ASan + UBSan) in
# build-fuzz/ and runs each for SECONDS (default 60), two at a time, from a
# copy of its seed corpus, so the repository is never written to.
#   scripts/fuzz.sh [SECONDS]
# Any crash, sanitizer report, leak, timeout (10 s for one input) or broken
# invariant fails its target; its input is kept in build-fuzz/fuzz-artifacts/
# and its log in build-fuzz/fuzz-logs/. One line per target, then the plain
# line "N passed, N failed"; the exit status is 0 only when all passed.
set -eu
cd -P -- "$(dirname -- "$0")/.." >/dev/null # (CDPATH would print the directory)

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS]" >&2
    exit 2
    ;;
esac
targets="fuzz_http fuzz_config fuzz_url fuzz_replies"

. scripts/lib.sh
# Toolchain: the build dependencies, then clang with libFuzzer's runtime.
scripts/setup.sh
install_packages fuzz clang llvm libclang-rt-14-dev

build="build-fuzz"
export CC=clang
ensure_build "$build" -Dfuzz=true -Dtests=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
# shellcheck disable=SC2046
step build-fuzz "building the fuzz targets (ninja -C $build)" \
    ninja -C "$build" $(for t in $targets; do printf 'tests/fuzz/%s ' "$t"; done)

logs=$build/fuzz-logs
artifacts=$build/fuzz-artifacts
mkdir -p "$logs" "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:symbolize=1:${UBSAN_OPTIONS:-}"

run_one() {
    t=$1
    mkdir -p "$work/$t"
    cp -R "tests/fuzz/corpus/$t/." "$work/$t/"
    case $t in
    fuzz_http) max_len=16384 ;;
    fuzz_config) max_len=8192 ;;
    *) max_len=4096 ;;
    esac
    rc=0
    # timeout(1) only guards against a fuzzer that never stops
    timeout $((secs + 120)) "$build/tests/fuzz/$t" "$work/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -dict="tests/fuzz/dict/$t.dict" -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t-" >"$logs/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$logs/$t.rc"
}

# shellcheck disable=SC2086
set -- $targets
while [ $# -gt 0 ]; do
    run_one "$1" &
    if [ $# -gt 1 ]; then
        run_one "$2" &
        shift
    fi
    shift
    wait
done

passed=0
failed=0
for t in $targets; do
    log=$logs/$t.log
    rc=$(cat "$logs/$t.rc")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$execs" ] && grep -q '^Done ' "$log"; then
        passed=$((passed + 1))
        echo "$t: ok, ${execs} execs in ${secs} s, ${cov:-cov: ?}"
    else
        failed=$((failed + 1))
        echo "$t: FAILED (exit $rc), ${execs:-?} execs, ${cov:-cov: ?}; log $log"
        grep -E 'invariant violated|split changed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY|Test unit written' \
            "$log" | head -n 8 | sed 's/^/    /'
    fi
done
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
