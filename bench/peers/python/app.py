"""The Python original: the request counter that tally replaces.

GET / reads the counter `request_count` from Redis and, while it is below
100, writes back count + 1 and answers {"hello":"world","request_num":N};
from then on it answers {"Go":"away!","request_num":N}. The read and the
write are two separate Redis commands, with other requests free to run in
between (get-then-set, no transaction, no INCR): under concurrency several
requests read the same count and get the same number, so far more than 100
requests are told "hello". That race is the original's and is kept on
purpose; tally's claims are atomic.

Every hello is logged at INFO as "Request #N" with request_count=N bound
(jq .record.extra.request_count), every "go away" as a WARNING. Logging is
set up by logsetup (loguru, serialize=True, stdout).

Redis: REDIS_HOST and REDIS_PORT (default 127.0.0.1:6379). Run with run.sh.
"""

import contextlib
import os

import redis.asyncio
from loguru import logger
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import logsetup  # noqa: F401  (loguru to stdout, serialized)

CAP = 100
KEY = "request_count"


async def count_request(request):
    store = request.app.state.redis
    raw = await store.get(KEY)
    count = 0 if raw is None else int(raw)
    if count >= CAP:
        logger.warning("Received a request but we already hit 100 requests!")
        return JSONResponse({"Go": "away!", "request_num": count})
    count += 1
    # Another request may have read the same value since our get: both write
    # the same number and both answer it.
    await store.set(KEY, count)
    logger.bind(request_count=count).info("Request #{}", count)
    return JSONResponse({"hello": "world", "request_num": count})


@contextlib.asynccontextmanager
async def lifespan(app):
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    app.state.redis = redis.asyncio.Redis(host=host, port=port)
    await app.state.redis.ping()  # fail at startup, not on the first request
    logger.info("Connected to Redis at {}:{}", host, port)
    try:
        yield
    finally:
        await app.state.redis.close()


app = Starlette(routes=[Route("/", count_request)], lifespan=lifespan)
