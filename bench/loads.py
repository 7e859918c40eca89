"""The benchmark's loads (ab, ab -k, wrk against one server, with the
server's CPU time and RSS from /proc), the order the servers are measured
in, and tallyd's RSS with many idle keep-alive connections."""

import re
import resource
import socket
import subprocess
import time

from bench_servers import BASELINE, NGINX_JSON
from procfs import cpu_seconds, rss_bytes

LOADS = ["ab", "ab -k", "wrk"]
LOAD_TITLES = {
    "ab": "ab -n 10000 -c 10 (no keep-alive)",
    "ab -k": "ab -k -n 50000 -c 50",
    "wrk": "wrk -t2 -c64 -d10s",
}


def run_ab(url, n, c, keepalive):
    argv = ["ab", "-s", "5", "-q", "-n", str(n), "-c", str(c)]
    if keepalive:
        argv.append("-k")
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=600).stdout

    def num(pat, conv=float, default=None):
        m = re.search(pat, out, re.M)
        return conv(m.group(1)) if m else default

    return {
        "rps": num(r"^Requests per second:\s+([\d.]+)"),
        "requests": num(r"^Complete requests:\s+(\d+)", int, 0),
        "failed": num(r"^Failed requests:\s+(\d+)", int, None),
        "non2xx": num(r"^Non-2xx responses:\s+(\d+)", int, 0),
        "p50_ms": num(r"^\s+50%\s+(\d+)"),
        "p99_ms": num(r"^\s+99%\s+(\d+)"),
    }


def wrk_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, seconds):
    argv = ["timeout", str(seconds + 20), "wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency",
            url]
    out = subprocess.run(argv, capture_output=True, text=True).stdout

    def lat(pct):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % pct, out, re.M)
        return wrk_ms(m.group(1), m.group(2)) if m else None

    m = re.search(r"^\s+(\d+) requests in", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "requests": int(m.group(1)) if m else 0,
        "failed": None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errs.group(1) if errs else "",
        "p50_ms": lat(50),
        "p99_ms": lat(99),
    }


def measure(server, load, args):
    pids = server.pids()
    cpu0 = cpu_seconds(pids)
    if load == "ab":
        r = run_ab(server.url, args.ab_n, 10, False)
    elif load == "ab -k":
        r = run_ab(server.url, args.abk_n, 50, True)
    else:
        r = run_wrk(server.url, args.wrk_s)
    pids = server.pids()
    cpu = cpu_seconds(pids) - cpu0
    r["cpu_us_per_req"] = cpu / r["requests"] * 1e6 if r["requests"] else None
    r["rss_mb"] = rss_bytes(pids) / 2**20
    return r


def idle_rss(server, n=1000):
    """tallyd's RSS with n idle keep-alive connections, each having made one
    request."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("connection closed")
                data += chunk
        time.sleep(0.5)
        return rss_bytes(server.pids()) / 2**20
    finally:
        for s in socks:
            s.close()


# -- the order of the servers -------------------------------------------------


# tally memory sits between its two partners (bench/run --baseline's build
# on one side, nginx static on the other), as does tally memory, claims.
# nginx's JSON-logging variant right after nginx static: one server from tally
# memory, and the pairs the targets compare stay back to back.
MEASURE_ORDER = ["Python original", BASELINE, "tally memory", "nginx static", NGINX_JSON,
                 "tally redis, claims", "tally memory, claims", "tally postgres, claims",
                 "tally redis", "tally postgres"]


def measure_order(servers):
    """The servers in MEASURE_ORDER: each pair a target compares is measured
    back to back (the Python original, tally memory and nginx static; the
    claims servers)."""
    rank = {n: i for i, n in enumerate(MEASURE_ORDER)}
    return sorted(servers, key=lambda s: rank.get(s.name, len(rank)))
