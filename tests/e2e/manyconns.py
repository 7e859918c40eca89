"""Helpers of the load tests (test_load*.py): many client sockets driven
from one thread, and tallyd's /metrics.

The sockets are non-blocking and waited on with selectors (epoll), so that
thousands of connections need no threads; every wait is bounded by a
deadline. Only 127.0.0.1 is used.
"""

import errno
import os
import resource
import selectors
import socket
import time

HOST = "127.0.0.1"


# -- sockets -------------------------------------------------------------------


def raise_nofile(need):
    """Raises RLIMIT_NOFILE of this process (and so of the tallyd it starts)
    to at least need if the hard limit allows, raising the hard limit too
    when privileged. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            pass
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_response(buf, head=False):
    """One whole HTTP/1.x answer at the start of buf: (status, headers
    dict with lower-case names, body, bytes used), or None if incomplete.
    Answers here always carry a Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert parts[0].startswith("HTTP/1."), "bad status line %r" % lines[0]
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = 0 if head else int(headers.get("content-length", "0"))
    if len(buf) < end + 4 + n:
        return None
    return status, headers, buf[end + 4 : end + 4 + n], end + 4 + n


def open_many(port, n, deadline, wave=1000):
    """n connected non-blocking sockets to 127.0.0.1:port, opened in waves
    of `wave` concurrent connects. Fails on any connect error."""
    socks, pending = [], []
    sel = selectors.DefaultSelector()
    try:
        while len(socks) < n:
            pending = []
            for _ in range(min(wave, n - len(socks))):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                rc = s.connect_ex((HOST, port))
                assert rc in (0, errno.EINPROGRESS), "connect: %s" % os.strerror(rc)
                pending.append(s)
                sel.register(s, selectors.EVENT_WRITE)
            left = len(pending)
            while left:
                assert time.monotonic() < deadline, "%d connects still pending" % left
                for key, _ in sel.select(timeout=0.5):
                    s = key.fileobj
                    sel.unregister(s)
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    assert err == 0, "connect failed: %s" % os.strerror(err)
                    left -= 1
            socks.extend(pending)
            pending = []
        return socks
    except BaseException:
        close_all(socks + pending)
        raise
    finally:
        sel.close()


def exchange(socks, req, deadline, head=False):
    """Sends req on every socket, then reads one answer from each. Returns
    a list parallel to socks: (status, headers, body), or ("closed" or
    "reset", bytes received) when the server closed or reset first."""
    sent = []
    for s in socks:
        try:
            s.send(req)  # a few dozen bytes: the socket buffer takes them
            sent.append(True)
        except (BrokenPipeError, ConnectionResetError):
            sent.append(False)
    return collect(socks, deadline, head, skip=[not x for x in sent])


def collect(socks, deadline, head=False, skip=None):
    """Reads one answer from each socket (those not marked in skip).
    Returns a list parallel to socks: (status, headers, body), or
    ("closed", bytes received) / ("reset", bytes received) when the server
    closed (FIN) or reset the connection first; ("closed", b"") for
    skipped sockets."""
    sel = selectors.DefaultSelector()
    bufs = {}
    out = [None] * len(socks)
    try:
        for i, s in enumerate(socks):
            if skip and skip[i]:
                out[i] = ("closed", b"")
                continue
            bufs[s.fileno()] = [i, b""]
            sel.register(s, selectors.EVENT_READ)
        left = len(bufs)
        while left:
            assert time.monotonic() < deadline, "%d answers missing" % left
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                slot = bufs[s.fileno()]
                try:
                    data = s.recv(65536)
                    how = "closed"
                except ConnectionResetError:
                    data, how = b"", "reset"
                if not data:
                    out[slot[0]] = (how, slot[1])
                    sel.unregister(s)
                    left -= 1
                    continue
                slot[1] += data
                got = parse_response(slot[1], head)
                if got:
                    out[slot[0]] = got[:3]
                    sel.unregister(s)
                    left -= 1
        return out
    finally:
        sel.close()


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# -- /metrics ------------------------------------------------------------------


def metric(t, name):
    """Value of an unlabelled metric from /metrics, as a float."""
    r = t.request("GET", "/metrics", headers={"Connection": "close"})
    assert r.status == 200, r
    for line in r.body.decode().split("\n"):
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def labelled_metric(t, name, labels):
    r = t.request("GET", "/metrics", headers={"Connection": "close"})
    for line in r.body.decode().split("\n"):
        if line.startswith("%s{%s} " % (name, labels)):
            return float(line.split()[1])
    raise AssertionError("no %s{%s} in /metrics" % (name, labels))


def wait_metric(t, name, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = metric(t, name)
        if pred(v):
            return v
        assert time.monotonic() < deadline, "%s stuck at %r" % (name, v)
        time.sleep(0.05)
