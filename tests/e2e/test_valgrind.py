"""tallyd under valgrind (issue 6, item 2): memcheck with full leak
checking sees a smoke load (keep-alive and not, pipelined, a bad request,
/metrics, /readyz) with the memory backend, and with Redis through an
outage and a reconnect, then SIGTERM: exit 0, no error, no definitely
lost byte.

Always the normal build, REPO/build/tallyd, whatever TALLYD says: the
ASan build cannot run under valgrind. It is built if missing, and valgrind
is installed with apt-get if missing (as CI runs as root on Debian).
"""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import rawhttp
from conftest import REPO, Tallyd
from servers import PostgresServer, RedisServer

BUILD_TALLYD = REPO / "build" / "tallyd"
VALGRIND_ARGS = ["--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                 "--show-leak-kinds=definite", "--num-callers=30"]


@pytest.fixture(scope="module")
def valgrind():
    path = shutil.which("valgrind")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], capture_output=True,
                       timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        path = shutil.which("valgrind")
    assert path, "valgrind is not installed and could not be installed (apt-get install valgrind)"
    return path


@pytest.fixture(scope="module")
def build_tallyd():
    """The normal build's binary; built (meson setup + ninja) if missing."""
    if not BUILD_TALLYD.exists():
        if not (REPO / "build" / "build.ninja").exists():
            subprocess.run(["meson", "setup", "build"], cwd=REPO, check=True, capture_output=True,
                           timeout=300)
        subprocess.run(["ninja", "-C", "build"], cwd=REPO, check=True, capture_output=True,
                       timeout=600)
    assert os.access(BUILD_TALLYD, os.X_OK), "no %s" % BUILD_TALLYD
    return BUILD_TALLYD


class ValgrindTallyd(Tallyd):
    """A Tallyd whose command line runs build/tallyd under valgrind,
    valgrind's report in vg.log next to the tallyd log."""

    def __init__(self, workdir, valgrind, binary, flags=(), env=None):
        super().__init__(workdir, flags, env=env)
        self.valgrind = valgrind
        self.binary = str(binary)
        self.vg_log = self.workdir / ("valgrind-%d.log" % self.serial)

    def argv(self):
        return ([self.valgrind] + VALGRIND_ARGS + ["--log-file=%s" % self.vg_log, self.binary,
                                                   "--host", "127.0.0.1", "--port", str(self.port)]
                + self.flags)

    def vg_text(self):
        return self.vg_log.read_text(errors="replace") if self.vg_log.exists() else ""


def check_clean(t, what):
    """SIGTERM, then exit 0 and a clean memcheck report."""
    rc = t.stop(signal.SIGTERM, timeout=45)
    report = t.vg_text()
    assert rc == 0, "%s: exit status %r under valgrind\n%s\n%s" % (what, rc, report[-6000:],
                                                                  t.stderr_text()[-2000:])
    m = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    assert m, "%s: no ERROR SUMMARY in valgrind's report:\n%s" % (what, report[-3000:])
    assert m.group(1) == "0", "%s: valgrind found errors:\n%s" % (what, report[-8000:])
    lost = re.search(r"definitely lost: ([\d,]+) bytes", report)
    assert lost is None or lost.group(1) == "0", "%s: leaks:\n%s" % (what, report[-8000:])
    in_use = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", report)
    return (in_use.group(1), in_use.group(2)) if in_use else None


def smoke(t, expect_hello=True):
    """A few hundred requests of every kind. Returns the numbers granted."""
    nums = []
    # new connection per request, HTTP/1.0 and 1.1 with close
    for i in range(60):
        version = "1.0" if i % 2 else "1.1"
        r = t.request("GET", "/", version=version, headers={"Connection": "close"}, timeout=10)
        assert r.status == 200, r
        if "hello" in r.json():
            nums.append(r.json()["request_num"])
    # keep-alive, one request at a time, and pipelined
    with t.conn(timeout=10) as c:
        for _ in range(100):
            r = c.request("GET", "/")
            assert r.status == 200
            if "hello" in r.json():
                nums.append(r.json()["request_num"])
        c.send(rawhttp.build("GET", "/") * 50 + rawhttp.build("HEAD", "/")
               + rawhttp.build("GET", "/healthz") + rawhttp.build("GET", "/nope"))
        for _ in range(50):
            r = c.read_response(timeout=10)
            assert r.status == 200
        assert c.read_response(head=True, timeout=10).status == 200
        assert c.read_response(timeout=10).status == 200
        assert c.read_response(timeout=10).status == 404
        r = c.request("GET", "/metrics")
        assert r.status == 200 and b"tally_requests_total" in r.body
        assert c.request("POST", "/").status == 405
    # bad requests: malformed, too large, a connection dropped mid-request
    with t.conn(timeout=10) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        assert c.read_response(timeout=10).status == 400
    with t.conn(timeout=10) as c:
        c.send(rawhttp.build("GET", "/", headers={"X-Pad": "p" * 10000}))
        assert c.read_response(timeout=10).status == 431
    with t.conn(timeout=10) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
    # a burst of concurrent connections
    conns = [t.conn(timeout=10) for _ in range(30)]
    try:
        for c in conns:
            c.send_request("GET", "/")
        for c in conns:
            r = c.read_response(timeout=10)
            assert r.status == 200
    finally:
        for c in conns:
            c.close()
    if expect_hello:
        assert nums, "no number granted"
    return nums


def test_memory_backend_under_valgrind(tmp_path, valgrind, build_tallyd):
    t = ValgrindTallyd(tmp_path, valgrind, build_tallyd,
                       ["--threads", "2", "--cap", "150", "--shutdown-timeout", "5s"])
    t.start(timeout=60)
    try:
        t0 = time.monotonic()
        nums = smoke(t)
        took = time.monotonic() - t0
        # idle keep-alive connection open at SIGTERM
        idle = t.conn(timeout=10)
        assert idle.request("GET", "/healthz").status == 200
        in_use = check_clean(t, "memory backend")
        idle.close()
    finally:
        t.kill()
    assert sorted(t.request_counts()) == list(range(1, 151))
    assert len(nums) == len(set(nums))
    print("\nvalgrind, memory backend: smoke in %.1fs, exit 0, 0 errors, in use at exit %r"
          % (took, in_use))


@pytest.mark.parametrize("name", ["redis", "postgres"])
def test_backend_with_reconnects_under_valgrind(tmp_path, valgrind, build_tallyd, name):
    """The server stops (a clean close), then is killed (no goodbye); each
    time every worker reconnects. Redis persists its counter (append-only
    file) so that a restarted server goes on counting."""
    if name == "redis":
        srv = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"])
        flags = ["--backend", "redis", "--redis-url", srv.url]
    else:
        srv = PostgresServer()
        flags = ["--backend", "postgres", "--database-url", srv.url]
    t = None
    try:
        srv.start()
        t = ValgrindTallyd(tmp_path, valgrind, build_tallyd,
                           ["--threads", "2", "--cap", "100000", "--backend-timeout", "2s",
                            "--shutdown-timeout", "5s"] + flags)
        t.start(timeout=60)
        wait_ready(t)
        smoke(t)
        # Outage: the server stops; requests get 503; it comes back and
        # every worker reconnects.
        srv.stop()
        deadline = time.monotonic() + 10
        while True:
            r = t.request("GET", "/", headers={"Connection": "close"}, timeout=10)
            if r.status == 503:
                break
            assert time.monotonic() < deadline, "no 503 with the server stopped"
            time.sleep(0.05)
        assert t.request("GET", "/readyz", timeout=10).status == 503
        time.sleep(0.5)
        srv.start()
        wait_ready(t)
        smoke(t)
        # A killed server (no goodbye) and back again.
        srv.kill()
        time.sleep(0.3)
        srv.start()
        wait_ready(t)
        nums = smoke(t)
        assert nums
        in_use = check_clean(t, "%s backend with reconnects" % name)
    finally:
        if t is not None:
            t.kill()
        srv.cleanup()
    counts = t.request_counts()
    assert len(counts) == len(set(counts))
    msgs = [r["record"]["message"] for r in t.records()]
    assert sum("connected to" in m for m in msgs) >= 6, msgs  # 2 workers x 3 connections
    print("\nvalgrind, %s backend with 2 reconnects: exit 0, 0 errors, in use at exit %r"
          % (name, in_use))


def wait_ready(t, timeout=20.0):
    deadline = time.monotonic() + timeout
    while t.request("GET", "/readyz", timeout=10).status != 200:
        assert time.monotonic() < deadline, "not ready under valgrind:\n" + t.log_text()[-2000:]
        time.sleep(0.1)
