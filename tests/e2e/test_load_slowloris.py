"""Load (issue 6, item 4), slowloris: 2,000 slowloris connections neither
delay normal requests nor outlive --header-timeout.

The attacker runs in a separate Python process (this file run as a
script, see slowloris_main) so that its work does not sit in the measuring
process; it drives its sockets from one thread with non-blocking sockets
and selectors (epoll). Only 127.0.0.1 is used; every wait is bounded.
"""

import errno
import heapq
import json
import os
import selectors
import socket
import subprocess
import sys
import time

from manyconns import HOST, raise_nofile


# -- slowloris -------------------------------------------------------------------------------

SLOW_PREFIX = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Slow: "


def slowloris_main(port, n, keep_s, interval, grace_s):
    """The attacker (run in its own process): keeps n connections open for
    keep_s seconds, each sending a never-ending request, its first line at
    once and then one byte every `interval` seconds, and reopens any the
    server closes; then stops reopening and waits up to grace_s for the
    server to close the rest. Prints "READY" when the first n are open,
    then one JSON line of results.

    A connection's lifetime runs from the connect() call (before the server
    can have accepted it) to the moment the close is seen, so any lag of
    this process lengthens it: the bound checked is conservative. Reopens
    are spread over loop turns (at most 100 per turn) so that a wave of
    closes does not delay the reading of the next ones."""
    raise_nofile(n + 200)
    sel = selectors.DefaultSelector()
    conns = {}  # fd -> dict
    lifetimes = []
    statuses = {}
    stats = {"opened": 0, "connect_errors": 0, "max_open": 0, "bytes_sent": 0, "max_turn": 0.0}
    live = [0]  # connections whose connect completed and not yet closed
    timers = []  # (due, seq, fd, id of the connection's dict)
    seq = [0]
    to_open = [n]
    payload = SLOW_PREFIX + b"a" * 100000

    def open_one():
        t_open = time.monotonic()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex((HOST, port))
        if rc not in (0, errno.EINPROGRESS):
            stats["connect_errors"] += 1
            s.close()
            return
        conns[s.fileno()] = {"s": s, "t_open": t_open, "up": False, "sent": 0, "buf": b""}
        sel.register(s, selectors.EVENT_WRITE)

    def close_one(fd, now):
        c = conns.pop(fd)
        sel.unregister(c["s"])
        c["s"].close()
        if c["up"]:
            live[0] -= 1
        lifetimes.append(now - c["t_open"])
        if c["buf"].startswith(b"HTTP/1."):
            st = c["buf"][9:12].decode("latin-1")
        else:
            st = "none" if not c["buf"] else "garbage"
        statuses[st] = statuses.get(st, 0) + 1

    def send_next(fd, now):
        c = conns[fd]
        k = len(SLOW_PREFIX) if c["sent"] == 0 else 1
        try:
            c["s"].send(payload[c["sent"] : c["sent"] + k])
        except OSError:
            return  # the server closed: the read side reports it
        c["sent"] += k
        stats["bytes_sent"] += k
        seq[0] += 1
        heapq.heappush(timers, (now + interval, seq[0], fd, id(c)))

    ready = False
    t_start = time.monotonic()
    t_stop_reopen = None
    while True:
        now = time.monotonic()
        if t_stop_reopen is None and ready and now - t_start >= keep_s:
            t_stop_reopen = now
            to_open[0] = 0
        if t_stop_reopen is not None and (not conns or now - t_stop_reopen > grace_s):
            break
        if not ready and now - t_start > 30:
            break
        for _ in range(min(to_open[0], 100)):
            open_one()
            to_open[0] -= 1
        timeout = 0.0 if to_open[0] else 0.05
        if timers:
            timeout = max(0.0, min(timeout, timers[0][0] - now))
        events = sel.select(timeout=timeout)
        t_turn = time.monotonic()
        for key, _ in events:
            fd = key.fd
            c = conns.get(fd)
            if c is None:
                continue
            now = time.monotonic()
            if not c["up"]:
                err = c["s"].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    stats["connect_errors"] += 1
                    conns.pop(fd)
                    sel.unregister(c["s"])
                    c["s"].close()
                    continue
                c["up"] = True
                stats["opened"] += 1
                live[0] += 1
                sel.modify(c["s"], selectors.EVENT_READ)
                send_next(fd, now)
                continue
            try:
                data = c["s"].recv(65536)
            except OSError:
                data = b""
            if data:
                c["buf"] += data
                continue
            close_one(fd, now)
            if t_stop_reopen is None:
                to_open[0] += 1
        now = time.monotonic()
        stats["max_turn"] = max(stats["max_turn"], now - t_turn)
        stats["max_open"] = max(stats["max_open"], live[0])
        if not ready and live[0] >= n:
            ready = True
            t_start = now
            print("READY", flush=True)
        while timers and timers[0][0] <= now:
            _, _, fd, ident = heapq.heappop(timers)
            c = conns.get(fd)
            if c is not None and id(c) == ident:
                send_next(fd, now)
    now = time.monotonic()
    still_open = [now - c["t_open"] for c in conns.values()]
    lifetimes.sort()
    res = dict(stats, still_open=len(still_open),
               oldest_open=max(still_open) if still_open else 0.0,
               closed=len(lifetimes), statuses=statuses,
               max_lifetime=lifetimes[-1] if lifetimes else None,
               median_lifetime=lifetimes[len(lifetimes) // 2] if lifetimes else None,
               p99_lifetime=lifetimes[int(len(lifetimes) * 0.99)] if lifetimes else None)
    print(json.dumps(res), flush=True)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def test_slowloris_neither_delays_requests_nor_outlives_header_timeout(tallyd):
    n = 2000
    header_timeout = 2.0
    keep = 4.0
    raise_nofile(n + 500)
    t = tallyd("--threads", "2", "--cap", "1000000000", "--header-timeout", "2s",
               "--log-level", "warning")
    drv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "slowloris", str(t.port),
                            str(n), str(keep), "0.5", str(header_timeout + 2)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = drv.stdout.readline()
        assert line.strip() == "READY", "slowloris driver: %r %s" % (line, drv.stderr.read())
        # Normal requests while the 2,000 are open, and while they are cut
        # off and reopened: every 10 ms, alternately on a fresh connection
        # and on one kept-alive connection.
        lat_fresh, lat_ka = [], []
        ka = t.conn()
        t_end = time.monotonic() + keep - 0.3
        i = 0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            if i % 2 == 0:
                with t.conn() as c:
                    r = c.request("GET", "/", headers={"Connection": "close"})
                lat_fresh.append(time.monotonic() - t0)
            else:
                r = ka.request("GET", "/")
                lat_ka.append(time.monotonic() - t0)
            assert r.status == 200 and r.json()["hello"] == "world", r
            i += 1
            time.sleep(0.01)
        ka.close()
        out, err = drv.communicate(timeout=keep + header_timeout + 10)
    finally:
        if drv.poll() is None:
            drv.kill()
            drv.wait()
    assert drv.returncode == 0, err
    res = json.loads(out.strip().split("\n")[-1])
    lat = lat_fresh + lat_ka
    p50, p99, worst = percentile(lat, 0.5), percentile(lat, 0.99), max(lat)
    print("\nslowloris: %d held at once, %d opened, %d closed by the server (%r), lifetime "
          "median %.2fs max %.2fs; %d normal requests: p50 %.1f ms p99 %.1f ms max %.1f ms "
          "(fresh p99 %.1f, keep-alive p99 %.1f)"
          % (res["max_open"], res["opened"], res["closed"], res["statuses"],
             res["median_lifetime"], res["max_lifetime"], len(lat), p50 * 1e3, p99 * 1e3,
             worst * 1e3, percentile(lat_fresh, 0.99) * 1e3, percentile(lat_ka, 0.99) * 1e3))
    assert res["connect_errors"] == 0, res
    assert res["max_open"] >= n, res
    # None outlives the header timeout (+1 s), all are gone at the end.
    assert res["still_open"] == 0, res
    assert res["max_lifetime"] <= header_timeout + 1.0, res
    # Closed with 408 (or plainly closed when the 408 met a byte in flight).
    assert set(res["statuses"]) <= {"408", "none"}, res
    assert res["statuses"].get("408", 0) >= n // 2, res
    # ...and the normal requests were not delayed.
    assert len(lat) >= 200, len(lat)
    assert p99 < 0.100, "p99 %.1f ms with slowloris connections open" % (p99 * 1e3)
    assert t.running()


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "slowloris":
        slowloris_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]),
                       float(sys.argv[5]), float(sys.argv[6]))
    else:
        sys.exit("usage: test_load_slowloris.py slowloris PORT N KEEP_S INTERVAL_S GRACE_S")
