"""Shared counters in a real Redis and a real PostgreSQL (DESIGN.md sections
2, 3 and 6): several tallyd processes sharing one backend grant 1..CAP
exactly once between them, and keep doing so while the backend fails and
comes back. Every server here is real and private to the test."""

import socket
import threading
import time
from collections import Counter

import pytest

import rawhttp
from servers import PostgresServer, RedisServer

BACKENDS = ["redis", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(name, server) for each backend, started and removed by the test.
    Redis keeps its data in an append-only file synced at every write, as a
    counter that must survive a crash needs (without persistence a
    restarted Redis starts counting from 0 again)."""
    if request.param == "redis":
        srv = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"])
    else:
        srv = PostgresServer()
    try:
        srv.start()
        yield request.param, srv
    finally:
        srv.cleanup()


def backend_flags(name, srv):
    if name == "redis":
        return ["--backend", "redis", "--redis-url", srv.url]
    return ["--backend", "postgres", "--database-url", srv.url]


def stored_counter(name, srv, key="request_count"):
    if name == "redis":
        v = srv.cli("get", key)
        return int(v) if v else 0
    v = srv.psql("SELECT value FROM tally_counters WHERE name = '%s'" % key)
    return int(v) if v else 0


def start_ready(tallyd, *flags, env=None, timeout=10.0):
    """Starts tallyd and waits until /readyz says its backend is connected."""
    t = tallyd(*flags, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if t.request("GET", "/readyz", headers={"Connection": "close"}).status == 200:
            return t
        time.sleep(0.02)
    raise AssertionError("tallyd never became ready:\n" + t.log_text()[-2000:])


def hammer(instances, per_instance, threads_each, results, stop=None):
    """Keep-alive GET / from threads_each threads per instance; appends
    (instance index, status, body json or None, monotonic time) to results."""

    def worker(i, t, n):
        conn = None
        done = 0
        while done < n and not (stop and stop.is_set()):
            try:
                if conn is None:
                    conn = t.conn(timeout=5)
                r = conn.request("GET", "/")
                body = r.json() if r.status in (200, 503) else None
                results.append((i, r.status, body, time.monotonic(), r.header("Retry-After")))
                done += 1
            except (OSError, rawhttp.Closed):
                results.append((i, None, None, time.monotonic(), None))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
                done += 1
        if conn is not None:
            conn.close()

    ths = []
    for i, t in enumerate(instances):
        for _ in range(threads_each):
            th = threading.Thread(target=worker, args=(i, t, per_instance // threads_each))
            th.start()
            ths.append(th)
    return ths


def granted_numbers(results):
    return [b["request_num"] for (_, st, b, _, _) in results if st == 200 and b and "hello" in b]


def test_three_instances_share_the_cap_exactly(tallyd, backend, ab):
    name, srv = backend
    insts = [start_ready(tallyd, "--threads", "2", *backend_flags(name, srv)) for _ in range(3)]
    # ab on every instance at once (the original's benchmark), and Python
    # clients reading the bodies.
    abs_ = []
    ab_threads = [threading.Thread(target=lambda t=t: abs_.append(ab(["-n", "3000", "-c", "10",
                                                                      t.url + "/"])))
                  for t in insts]
    results = []
    for th in ab_threads:
        th.start()
    for th in hammer(insts, 300, 3, results):
        th.join()
    for th in ab_threads:
        th.join()
    for res in abs_:
        assert res["failed"] == 0 and res["non2xx"] == 0, res["stdout"]
        assert res["complete"] == 3000, res["stdout"]
    assert all(st == 200 for (_, st, _, _, _) in results)

    logged = []
    for t in insts:
        logged += t.request_counts()
    assert sorted(logged) == list(range(1, 101)), Counter(logged).most_common(3)
    # every hello a client saw is one the logs granted, each once
    seen = granted_numbers(results)
    assert len(seen) == len(set(seen)) and set(seen) <= set(logged)
    assert stored_counter(name, srv) == 100
    goaway = [b for (_, st, b, _, _) in results if b and "Go" in b]
    assert goaway and all(b == {"Go": "away!", "request_num": 100} for b in goaway)


def test_backend_outage_gives_503_then_service_returns(tallyd, backend):
    """The backend is killed under load: 503 with Retry-After: 1 and
    /readyz 503 while it is down, every tallyd stays up, service is back
    within 3 s of the restart, and no number is ever granted twice."""
    name, srv = backend
    cap = 10_000_000
    insts = [start_ready(tallyd, "--threads", "2", "--cap", str(cap), *backend_flags(name, srv))
             for _ in range(3)]
    results = []
    stop = threading.Event()
    ths = hammer(insts, 10**9, 2, results, stop)
    try:
        time.sleep(1.0)
        srv.kill()
        time.sleep(0.5)
        t_down = time.monotonic()
        time.sleep(1.0)
        for t in insts:
            r = t.request("GET", "/readyz", headers={"Connection": "close"})
            assert r.status == 503, r
            r = t.request("GET", "/", headers={"Connection": "close"})
            assert r.status == 503 and r.header("Retry-After") == "1", r
            assert r.json() == {"error": "counter backend unavailable"}
        srv.start()
        t_up = time.monotonic()
        # every instance answers 200 again within 3 s
        back = {}
        while len(back) < len(insts) and time.monotonic() - t_up < 3.0:
            for i, t in enumerate(insts):
                if i in back:
                    continue
                r = t.request("GET", "/", headers={"Connection": "close"})
                if r.status == 200:
                    back[i] = time.monotonic() - t_up
            time.sleep(0.02)
        assert len(back) == len(insts), "not back within 3 s: %r" % back
        time.sleep(0.5)
    finally:
        stop.set()
        for th in ths:
            th.join()
    for t in insts:
        assert t.running()
    statuses = Counter(st for (_, st, _, _, _) in results)
    assert statuses[200] > 100 and statuses[503] > 0, statuses
    assert all(ra == "1" for (_, st, _, _, ra) in results if st == 503)
    assert all(st in (200, 503) for (_, st, _, ts, _) in results if ts < t_down), statuses
    logged = []
    for t in insts:
        logged += t.request_counts()
    dup = [n for n, c in Counter(logged).items() if c > 1]
    assert not dup, "numbers granted twice: %r" % dup[:10]
    stored = stored_counter(name, srv)
    assert max(logged) <= stored <= cap
    seen = granted_numbers(results)
    assert len(seen) == len(set(seen)) and set(seen) <= set(logged)


def test_start_with_backend_down_is_not_fatal(tallyd, backend):
    name, srv = backend
    srv.stop()
    t = tallyd("--threads", "2", *backend_flags(name, srv))
    r = t.request("GET", "/")
    assert r.status == 503 and r.header("Retry-After") == "1"
    assert t.request("GET", "/readyz").status == 503
    assert t.request("GET", "/healthz").status == 200
    time.sleep(0.5)
    srv.start()
    t0 = time.monotonic()
    while t.request("GET", "/readyz").status != 200:
        assert time.monotonic() - t0 < 3.0, "not ready 3 s after the backend started"
        time.sleep(0.02)
    assert t.request("GET", "/").json() == {"hello": "world", "request_num": 1}
    # errors are logged once per state change, not per request or retry
    # (log lines reach the file within ~10 ms: wait for them)
    deadline = time.monotonic() + 2
    while True:
        texts = [r["record"]["message"] for r in t.records()]
        if sum("connected to" in m for m in texts) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum("cannot connect" in m for m in texts) <= 2, texts  # one per worker
    assert sum("connected to" in m for m in texts) == 2, texts


def test_redis_script_flush_is_survived(tallyd, redis_server):
    t = start_ready(tallyd, "--threads", "2", *backend_flags("redis", redis_server))
    assert t.request("GET", "/").json()["request_num"] == 1
    assert redis_server.cli("script", "flush") == "OK"
    nums = [t.request("GET", "/").json()["request_num"] for _ in range(10)]
    assert sorted(nums) == list(range(2, 12))
    assert redis_server.cli("get", "request_count") == "11"


def test_reset_reaches_every_instance_within_100ms(tallyd, backend):
    name, srv = backend
    token = "s3cret-token-for-tests"
    insts = [start_ready(tallyd, "--threads", "2", "--cap", "5", *backend_flags(name, srv),
                         env={"TALLY_ADMIN_TOKEN": token}) for _ in range(3)]
    # exhaust the cap and let every worker see it (halt cache)
    for t in insts:
        for _ in range(10):
            t.request("GET", "/", headers={"Connection": "close"})
    assert stored_counter(name, srv) == 5
    for t in insts:
        assert t.request("GET", "/").json() == {"Go": "away!", "request_num": 5}

    wrong = insts[0].request("POST", "/reset", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert stored_counter(name, srv) == 5

    # instances 1 and 2 are polled on keep-alive connections until they
    # grant again; the time runs from the reset's answer.
    firsts = {}
    reset_done = threading.Event()
    t_reset = [None]

    def poll(i, t):
        with t.conn() as c:
            while time.monotonic() < deadline:
                r = c.request("GET", "/")
                b = r.json()
                if reset_done.is_set() and r.status == 200 and "hello" in b:
                    firsts[i] = time.monotonic() - t_reset[0]
                    return

    deadline = time.monotonic() + 5
    ths = [threading.Thread(target=poll, args=(i, t)) for i, t in enumerate(insts[1:], 1)]
    for th in ths:
        th.start()
    time.sleep(0.2)
    r = insts[0].request("POST", "/reset", headers={"Authorization": "Bearer " + token})
    t_reset[0] = time.monotonic()
    reset_done.set()
    assert r.status == 200 and r.json() == {"reset": True}
    for th in ths:
        th.join()
    assert sorted(firsts) == [1, 2], firsts
    assert max(firsts.values()) <= 0.100, firsts
    # the instance that reset grants again at once
    assert insts[0].request("GET", "/").status == 200
    time.sleep(0.1)  # log lines reach the file within ~10 ms
    warn = [r for r in insts[0].records() if "counter reset" in r["record"]["message"]]
    assert len(warn) == 1 and token not in insts[0].log_text()


def test_backend_that_never_answers_is_timed_out(tallyd):
    """A server that accepts connections and never says a word: connects
    time out, requests get 503 within the timeout, tallyd stays up."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept)
    th.start()
    try:
        t = tallyd("--threads", "1", "--backend", "redis", "--redis-url",
                   "redis://127.0.0.1:%d/0" % port, "--backend-timeout", "300ms")
        t0 = time.monotonic()
        r = t.request("GET", "/")
        assert r.status == 503
        assert time.monotonic() - t0 < 1.0
        time.sleep(1.0)
        assert t.running() and t.request("GET", "/readyz").status == 503
        assert len(held) >= 2, "tallyd did not reconnect after the timeout"
        time.sleep(0.1)
        msgs = [r["record"]["message"] for r in t.records()]
        assert any("no connection within 300ms" in m for m in msgs), msgs
    finally:
        stop.set()
        th.join()
        for s in held:
            s.close()
        lsock.close()


@pytest.mark.parametrize("flag,value", [
    ("--redis-url", "http://x"),
    ("--redis-url", "redis://host:99999/0"),
    ("--redis-url", "redis://host:6379/notanumber"),
    ("--redis-url", "unix://relative/path"),
    ("--database-url", "postgresql://[::1"),
    ("--database-url", "host=x port"),
])
def test_malformed_backend_urls_exit_2(flag, value):
    import subprocess
    from conftest import TALLYD, child_env
    p = subprocess.run([TALLYD, flag, value], capture_output=True, text=True, timeout=10,
                       env=child_env())
    assert p.returncode == 2
    lines = p.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("tallyd: " + flag + ": "), p.stderr
