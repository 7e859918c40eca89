#!/bin/sh
# Installs what tally needs from Debian 12's packages (idempotent).
#   scripts/setup.sh          build and run: compiler, meson, libuv, libpq, hiredis, llhttp
#   scripts/setup.sh --test   also the test suite's tools and real servers
set -eu

pkgs="meson ninja-build pkg-config gcc libc6-dev libuv1-dev libpq-dev libhiredis-dev node-llhttp"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs libcmocka-dev redis-server postgresql python3 python3-pytest python3-requests \
          apache2-utils wrk jq curl procps"
fi

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "setup: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
