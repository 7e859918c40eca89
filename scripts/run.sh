#!/bin/sh
# Command 1: set everything up on Debian 12, build, and run tallyd on :8080
# (memory backend). Extra arguments go to tallyd: scripts/run.sh --threads 2
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build tallyd >/dev/null
exec build/tallyd "$@"
