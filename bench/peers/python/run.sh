#!/bin/sh
# The Python original, as it is deployed: uvicorn with N worker processes
# serving app:app (Starlette + redis.asyncio + loguru). uvicorn picks uvloop
# and httptools, which Debian's python3-uvloop and python3-httptools provide.
# Its log (JSON lines, uvicorn's own lines included) goes to stdout.
#
#   bench/peers/python/run.sh [WORKERS [PORT [REDIS_HOST [REDIS_PORT]]]]
#   defaults:                   2        8000   127.0.0.1    6379
#
# Needs a running Redis (the counter is its key request_count) and Debian's
# python3-uvicorn python3-starlette python3-redis python3-loguru
# python3-uvloop python3-httptools, run with /usr/bin/python3.
set -eu
workers=${1:-2}
port=${2:-8000}
REDIS_HOST=${3:-127.0.0.1}
REDIS_PORT=${4:-6379}
export REDIS_HOST REDIS_PORT
# Debian's packages only: nothing from a virtualenv or PYTHONPATH
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV
# no __pycache__ left in the repository
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")"
exec /usr/bin/python3 -m uvicorn app:app --host 127.0.0.1 --port "$port" \
    --workers "$workers" --log-config uvicorn-log.json
