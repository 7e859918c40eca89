#!/bin/sh
# Installs what tally needs from Debian 12's packages (idempotent: a second
# run checks and returns in a fraction of a second).
#   scripts/setup.sh          build and serve: compiler, meson, libuv, libpq, hiredis, llhttp
#   scripts/setup.sh --test   also the test suite's tools and real servers
# A failed apt-get is named, with the last lines of its output (.logs/).
set -eu
cd -P -- "$(dirname -- "$0")/.." >/dev/null # (CDPATH would print the directory)
. scripts/lib.sh

pkgs="meson ninja-build pkg-config gcc libc6-dev libuv1-dev libpq-dev libhiredis-dev node-llhttp"
who=setup
case "${1:-}" in
"") ;;
--test)
    who="setup --test"
    pkgs="$pkgs libcmocka-dev redis-server postgresql python3 python3-pytest python3-requests \
          apache2-utils wrk jq curl procps valgrind"
    ;;
*)
    echo "usage: scripts/setup.sh [--test]" >&2
    exit 2
    ;;
esac
# shellcheck disable=SC2086
install_packages "$who" $pkgs
