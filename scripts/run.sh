#!/bin/sh
# Command 1: set everything up on Debian 12, build, and run tallyd on :8080
# (memory backend). Extra arguments go to tallyd: scripts/run.sh --threads 2
# One line per step on stderr; a step that fails is named, with the last
# lines of its output, and the exit status is not 0. stdout is tallyd's log.
set -eu
cd -P -- "$(dirname -- "$0")/.." >/dev/null # (CDPATH would print the directory)
. scripts/lib.sh
scripts/setup.sh
# build/ is shared with scripts/test.sh; any tests= setting serves.
ensure_build build -Db_sanitize=none -Dfuzz=false
step build "building tallyd (ninja -C build tallyd)" ninja -C build tallyd
say "starting build/tallyd${*:+ $*}"
exec build/tallyd "$@"
