"""Backend faults (issue 6, item 5): three tallyd instances of two workers
each, under concurrent load, while their shared Redis (then PostgreSQL) is
killed with SIGKILL and restarted ten times. Every instance stays up and
keeps its clients' connections, no number is ever granted twice, never
more than CAP, and every instance serves again within 3 s of each
restart. A number whose claim was in flight when the server died may be
lost (a gap), never duplicated.

Then backends that stop answering without closing: a server that is
frozen (SIGSTOP) with tallyd's connections open, and a PostgreSQL port
that accepts connections and never says a word (test_backends.py has the
Redis one). Both must be timed out by --backend-timeout.

Redis keeps its data in an append-only file fsynced at every write: an
in-memory Redis restarted empty would legitimately count from 0 again.
"""

import os
import signal
import socket
import threading
import time
from collections import Counter

import pytest

import rawhttp
from servers import PostgresServer, RedisServer, _children

CYCLES = 10
BIG_CAP = 1_000_000_000


@pytest.fixture(params=["redis", "postgres"])
def backend(request):
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


def wait_ready(t, timeout=10.0):
    deadline = time.monotonic() + timeout
    while t.request("GET", "/readyz", headers={"Connection": "close"}).status != 200:
        assert time.monotonic() < deadline, "not ready:\n" + t.log_text()[-2000:]
        time.sleep(0.02)
    return t


class Load:
    """Keep-alive clients, `per_instance` threads per instance, sending
    GET / until stopped, `pause` seconds apart (and 10 ms after a 503, as
    a client backing off would). Every answer is recorded
    as (instance, status, body dict or None, time); a connection that
    breaks is recorded as status None (tallyd must never drop a client's
    connection because its backend failed)."""

    def __init__(self, insts, per_instance, pause=0.0):
        self.insts = insts
        self.pause = pause
        self.stop = threading.Event()
        self.results = []
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i, t), daemon=True)
                        for i, t in enumerate(insts) for _ in range(per_instance)]

    def run(self, i, t):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = t.conn(timeout=5)
                r = conn.request("GET", "/")
                body = r.json() if r.status in (200, 503) else None
                self.results.append((i, r.status, body, time.monotonic()))
                if r.status == 503:
                    time.sleep(0.01)  # a client backing off a little
            except (OSError, rawhttp.Closed, ValueError) as e:
                self.results.append((i, None, None, time.monotonic()))
                self.errors.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join(10)


def hellos(results):
    return [b["request_num"] for (_, st, b, _) in results if st == 200 and b and "hello" in b]


def wait_back(insts, t_up, limit=3.0, require_hello=True):
    """Seconds until every instance is ready and answers GET / with 200
    (a hello, unless the cap was reached), measured from t_up."""
    back = {}
    while len(back) < len(insts):
        assert time.monotonic() - t_up < limit, (
            "instances %s not back %.1fs after the restart" %
            (sorted(set(range(len(insts))) - set(back)), limit))
        for i, t in enumerate(insts):
            if i in back:
                continue
            if t.request("GET", "/readyz", headers={"Connection": "close"}).status != 200:
                continue
            r = t.request("GET", "/", headers={"Connection": "close"})
            if r.status == 200 and (not require_hello or "hello" in r.json()):
                back[i] = time.monotonic() - t_up
        time.sleep(0.01)
    return max(back.values())


def wait_down(insts, timeout=3.0):
    """Waits until every instance reports its backend down (/readyz 503)."""
    deadline = time.monotonic() + timeout
    for t in insts:
        while t.request("GET", "/readyz", headers={"Connection": "close"}).status != 503:
            assert time.monotonic() < deadline, "an instance never noticed the backend died"
            time.sleep(0.01)


def all_logged(insts):
    time.sleep(0.05)  # log lines reach the files within ~10 ms
    out = []
    for t in insts:
        out += t.request_counts()
    return out


def run_kill_cycles(tallyd, name, srv, cap, pause):
    insts = [wait_ready(tallyd("--threads", "2", "--cap", str(cap), "--backend-timeout", "1s",
                               "--log-level", "info", *backend_flags(name, srv)))
             for _ in range(3)]
    recoveries = []
    with Load(insts, per_instance=2, pause=pause) as load:
        time.sleep(0.3)
        for cycle in range(CYCLES):
            srv.kill()
            wait_down(insts)
            time.sleep(0.2)  # requests meet the dead backend meanwhile
            srv.start()
            t_up = time.monotonic()
            recoveries.append(wait_back(insts, t_up, require_hello=(cap == BIG_CAP)))
            for t in insts:
                assert t.running(), "an instance died in cycle %d" % cycle
            time.sleep(0.3)  # load on the healthy backend
    return insts, load, recoveries


def check_no_duplicates(insts, load, name, srv, cap):
    for t in insts:
        assert t.running()
    assert not load.errors, "client connections broke: %r" % load.errors[:5]
    statuses = Counter(st for (_, st, _, _) in load.results)
    assert set(statuses) <= {200, 503}, statuses
    logged = all_logged(insts)
    dup = [n for n, c in Counter(logged).items() if c > 1]
    assert not dup, "numbers granted twice: %r" % sorted(dup)[:20]
    assert all(1 <= n <= cap for n in logged), "a number outside 1..CAP was granted"
    seen = hellos(load.results)
    assert len(seen) == len(set(seen)), "a client saw a number twice"
    assert set(seen) <= set(logged), "a client got a number no log shows"
    stored = stored_counter(name, srv)
    assert (max(logged) if logged else 0) <= stored <= cap, (max(logged), stored)
    return logged, stored, statuses


def test_backend_killed_and_restarted_ten_times(tallyd, backend):
    """Large CAP: a steady stream of grants across the ten crashes."""
    name, srv = backend
    insts, load, recoveries = run_kill_cycles(tallyd, name, srv, BIG_CAP, pause=0.0)
    logged, stored, statuses = check_no_duplicates(insts, load, name, srv, BIG_CAP)
    gaps = stored - len(logged)
    print("\n%s killed %d times: %d granted, %d gaps, answers %r, back after max %.2fs "
          "(median %.2fs)" % (name, CYCLES, len(logged), gaps, dict(statuses), max(recoveries),
                              sorted(recoveries)[len(recoveries) // 2]))
    assert statuses[503] > 0, "the faults were never seen by a client"
    assert len(logged) > 20 * CYCLES, "too little load: %d grants" % len(logged)
    # Gaps come only from claims in flight at a crash: at most one batch per
    # worker per crash, and those batches are as large as the requests in
    # flight (2 clients per instance).
    assert gaps <= CYCLES * 3 * 2, "%d numbers lost in %d crashes" % (gaps, CYCLES)


def test_backend_killed_and_restarted_with_cap_100(tallyd, backend):
    """CAP 100, paced clients so that the cap is reached in the middle of
    the crashes: never more than 100 granted, and once the load has run
    out of numbers the stored counter is exactly 100 and every number not
    granted is a gap left by a crash."""
    name, srv = backend
    insts, load, recoveries = run_kill_cycles(tallyd, name, srv, 100, pause=0.2)
    first_goaway = min((ts for (_, st, b, ts) in load.results if st == 200 and b and "Go" in b),
                       default=None)
    during = first_goaway is not None
    # Use up what is left of the numbers, if the crashes ended first.
    for k in range(400):
        i = k % 3
        r = insts[i].request("GET", "/", headers={"Connection": "close"})
        load.results.append((i, r.status, r.json(), time.monotonic()))
        if k >= 3 and all(x[2] == {"Go": "away!", "request_num": 100}
                          for x in load.results[-3:]):
            break
    logged, stored, statuses = check_no_duplicates(insts, load, name, srv, 100)
    # The cap is reached now: the rest were refused with "Go away!", never
    # a number over 100.
    goaway = [b for (_, st, b, _) in load.results if st == 200 and b and "Go" in b]
    assert goaway and all(b == {"Go": "away!", "request_num": 100} for b in goaway)
    assert stored == 100, stored
    assert len(logged) <= 100
    gaps = sorted(set(range(1, 101)) - set(logged))
    print("\n%s, CAP 100, killed %d times (cap reached %s): %d hellos, stored counter %d, "
          "gaps %r, back after max %.2fs" % (name, CYCLES, "during the crashes" if during
                                             else "after them", len(logged), stored, gaps,
                                             max(recoveries)))
    # Without a fault the stored counter equals the hellos granted; each
    # crash may lose at most the claims in flight (a batch per worker).
    assert stored - len(logged) == len(gaps) <= CYCLES * 3 * 2
    for t in insts:
        assert t.request("GET", "/").json() == {"Go": "away!", "request_num": 100}


# -- servers that stop answering ---------------------------------------------------------------


def freeze(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def test_frozen_backend_is_timed_out_then_recovers(tallyd, backend):
    """The backend server is frozen (SIGSTOP): its sockets stay open and it
    never answers. Requests get 503 within --backend-timeout, reconnects
    time out too, the instances stay up and healthy; once it thaws (SIGCONT)
    service is back within 3 s, and the claims it executed late, after
    tallyd gave up on them, are gaps, never duplicates."""
    name, srv = backend
    insts = [wait_ready(tallyd("--threads", "2", "--cap", str(BIG_CAP), "--backend-timeout",
                               "300ms", *backend_flags(name, srv))) for _ in range(2)]
    pids = [srv.pid] + _children(srv.pid)  # postgres: the postmaster and its backends
    try:
        with Load(insts, per_instance=2) as load:
            time.sleep(0.5)
            freeze(pids, signal.SIGSTOP)
            t_frozen = time.monotonic()
            time.sleep(0.2)
            for t in insts:
                t0 = time.monotonic()
                r = t.request("GET", "/", headers={"Connection": "close"}, timeout=5)
                took = time.monotonic() - t0
                assert r.status == 503 and r.header("Retry-After") == "1", r
                assert took < 0.3 + 0.5, "503 after %.2fs with a 300ms backend timeout" % took
                assert t.request("GET", "/healthz").status == 200
            time.sleep(1.5)  # several reconnects, each timed out
            for t in insts:
                assert t.request("GET", "/readyz").status == 503
            freeze(pids, signal.SIGCONT)
            t_thawed = time.monotonic()
            back = wait_back(insts, t_thawed)
            time.sleep(0.3)
    finally:
        freeze(pids, signal.SIGCONT)
    for t in insts:
        assert t.running()
    assert not load.errors, load.errors[:5]
    frozen_answers = Counter(st for (_, st, _, ts) in load.results if t_frozen + 1.0 < ts
                             < t_thawed)
    assert frozen_answers and set(frozen_answers) == {503}, frozen_answers
    logged = all_logged(insts)
    dup = [n for n, c in Counter(logged).items() if c > 1]
    assert not dup, "numbers granted twice: %r" % sorted(dup)[:20]
    seen = hellos(load.results)
    assert len(seen) == len(set(seen)) and set(seen) <= set(logged)
    stored = stored_counter(name, srv)
    assert max(logged) <= stored
    print("\n%s frozen 1.7 s: answers while frozen %r, back %.2fs after thawing, %d granted, "
          "%d gaps" % (name, dict(frozen_answers), back, len(logged), stored - len(logged)))
    timeouts = [r["record"]["message"] for t in insts for r in t.records()
                if r["record"]["level"]["name"] in ("WARNING", "ERROR")]
    assert timeouts, "no warning logged about the unresponsive backend"


def test_postgres_port_that_never_answers_is_timed_out(tallyd):
    """A TCP listener that accepts and is silent, as --database-url: the
    connection attempt (libpq's startup) times out, requests get 503 within
    the timeout, tallyd retries, stays up, and exits 0 on SIGTERM."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        t = tallyd("--threads", "1", "--backend", "postgres", "--database-url",
                   "postgresql://postgres@127.0.0.1:%d/postgres" % port, "--backend-timeout",
                   "300ms")
        t0 = time.monotonic()
        r = t.request("GET", "/")
        assert r.status == 503 and r.header("Retry-After") == "1", r
        assert time.monotonic() - t0 < 1.0
        time.sleep(1.5)
        assert t.running()
        assert t.request("GET", "/readyz").status == 503
        assert t.request("GET", "/healthz").status == 200
        assert len(held) >= 2, "tallyd did not retry after the timeout (%d connects)" % len(held)
        time.sleep(0.1)
        msgs = [r["record"]["message"] for r in t.records()]
        assert any("300ms" in m for m in msgs), msgs
        t.stop_ok()
    finally:
        stop.set()
        th.join(5)
        for s in held:
            s.close()
        lsock.close()
