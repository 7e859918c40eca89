"""Load (issue 6, item 4), many connections: 10,000 concurrent connections
all served; --max-connections holds under a burst. (Slowloris is in
test_load_slowloris.py, SIGTERM under load in test_load_sigterm.py; the
socket helpers in manyconns.py.)

Many sockets are driven from one thread with non-blocking sockets and
selectors (epoll). Only 127.0.0.1 is used; every wait is bounded.
"""

import json
import resource
import time

import rawhttp
from manyconns import close_all, exchange, labelled_metric, open_many, raise_nofile, wait_metric


# -- 10,000 connections -------------------------------------------------------------


def test_ten_thousand_concurrent_connections_all_served(tallyd):
    n = 10_000
    limit = raise_nofile(n + 1000)
    assert limit >= n + 200, "RLIMIT_NOFILE cannot be raised to %d (hard limit %r)" % (
        n + 200, resource.getrlimit(resource.RLIMIT_NOFILE))
    t = tallyd("--threads", "2", "--max-connections", "12000", "--cap", "1000000000",
               "--header-timeout", "60s", "--idle-timeout", "60s", "--log-level", "warning")
    t0 = time.monotonic()
    socks = open_many(t.port, n, t0 + 60)
    try:
        t_open = time.monotonic() - t0
        # All of them are open at once in the server.
        held = wait_metric(t, "tally_open_connections", lambda v: v >= n, timeout=10)
        t1 = time.monotonic()
        answers = exchange(socks, rawhttp.build("GET", "/"), t1 + 60)
        t_serve = time.monotonic() - t1
        bad = [a for a in answers if a[0] != 200]
        assert not bad, "%d of %d not served, e.g. %r" % (len(bad), n, bad[:3])
        nums = [json.loads(a[2])["request_num"] for a in answers]
        assert sorted(nums) == list(range(1, n + 1))
        # Still all open after being served (keep-alive): a second round.
        again = exchange(socks, rawhttp.build("GET", "/healthz"), time.monotonic() + 60)
        assert all(a[0] == 200 for a in again)
        print("\n10k connections: opened in %.2fs, %d held by the server, served in %.2fs"
              % (t_open, held, t_serve))
    finally:
        close_all(socks)
    # The server sees every close and frees the connections.
    wait_metric(t, "tally_open_connections", lambda v: v <= 1, timeout=10)
    assert labelled_metric(t, "tally_connections_total", 'result="rejected"') == 0


# -- --max-connections ---------------------------------------------------------------------------


def test_max_connections_holds_under_a_burst(tallyd):
    n = 1000
    raise_nofile(n + 500)
    t = tallyd("--threads", "2", "--max-connections", str(n), "--cap", "1000000000",
               "--idle-timeout", "30s", "--header-timeout", "30s", "--log-level", "warning")
    t0 = time.monotonic()
    socks = open_many(t.port, n + 50, t0 + 30, wave=n + 50)  # all at once
    try:
        t_sent = time.monotonic()
        answers = exchange(socks, rawhttp.build("GET", "/"), t_sent + 20)
        t_done = time.monotonic()
        served = [s for s, a in zip(socks, answers) if a[0] == 200]
        refused = [a for a in answers if a[0] in ("closed", "reset")]
        odd = [a for a in answers if a[0] not in (200, "closed", "reset")]
        assert not odd, odd[:3]
        # At most N served (exactly N: none of them has left), the rest
        # closed at once without a byte.
        assert len(served) == n, (len(served), len(refused))
        assert all(a[1] == b"" for a in refused), refused[:3]
        assert t_done - t_sent < 2.0, "the burst took %.2fs to settle" % (t_done - t_sent)
        nums = sorted(json.loads(a[2])["request_num"] for a in answers if a[0] == 200)
        assert nums == list(range(1, n + 1)), "a refused connection took a number"
        # The first N keep working.
        again = exchange(served, rawhttp.build("GET", "/"), time.monotonic() + 20)
        assert all(a[0] == 200 for a in again)
        assert sorted(json.loads(a[2])["request_num"] for a in again) == list(range(n + 1,
                                                                                    2 * n + 1))
        # Still full: a newcomer is closed at once...
        with t.conn() as c:
            try:
                c.send(rawhttp.build("GET", "/"))
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert c.wait_closed(1.0)
        # ...until some leave: then newcomers are served again.
        for s in served[:10]:
            s.close()
        deadline = time.monotonic() + 3
        newcomers = 0
        while newcomers < 5:
            assert time.monotonic() < deadline, "freed slots were not reused"
            try:
                with t.conn() as c:
                    assert c.request("GET", "/healthz").status == 200
                    newcomers += 1
            except rawhttp.Closed:
                time.sleep(0.02)
    finally:
        close_all(socks)
    wait_metric(t, "tally_open_connections", lambda v: v <= 1)
    assert labelled_metric(t, "tally_connections_total", 'result="rejected"') >= 51
