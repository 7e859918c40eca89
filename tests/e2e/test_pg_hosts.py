"""PostgreSQL multi-host URLs (libpq's host lists with
target_session_attrs): a host that accepts connections and never answers
(a hung primary) must not starve the others. libpq's connect_timeout does
not bound a non-blocking PQconnectPoll, so tally bounds each attempt with
--backend-timeout and begins attempt n at host n (src/counter/url.h)."""

import socket
import time

from servers import free_port


def hung_host():
    """A listening socket that never accepts: the kernel completes the
    handshake, nothing ever answers libpq's startup packet."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", free_port()))
    s.listen(16)
    return s


def ready_within(t, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if t.request("GET", "/readyz").status == 200:
            return True
        time.sleep(0.05)
    return False


def test_hung_first_host_does_not_starve_the_second(tallyd, postgres_server):
    hung = hung_host()
    try:
        url = "postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?target_session_attrs=read-write" % (
            hung.getsockname()[1], postgres_server.port)
        t = tallyd("--threads", "2", "--backend", "postgres", "--database-url", url,
                   "--backend-timeout", "1s")
        t0 = time.monotonic()
        # the first attempt of each worker spends its 1 s on the hung host;
        # the next begins at the good one
        assert ready_within(t, 6), "never ready: the hung host starved the second"
        took = time.monotonic() - t0
        assert t.get_json("/") == (200, {"hello": "world", "request_num": 1})
        assert took < 6
        lines = [r["record"]["message"] for r in t.records()]
        assert any("no connection within 1000ms" in m for m in lines), lines[-10:]
        assert any("connected to" in m for m in lines), lines[-10:]
    finally:
        hung.close()


def test_refusing_first_host_is_skipped(tallyd, postgres_server):
    """A first host that refuses connections (a stopped server) is passed
    over by libpq within the same attempt: ready at once."""
    closed = free_port()  # nothing listens there
    url = "postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?target_session_attrs=read-write" % (
        closed, postgres_server.port)
    t = tallyd("--threads", "1", "--backend", "postgres", "--database-url", url)
    assert ready_within(t, 5)
    assert t.get_json("/") == (200, {"hello": "world", "request_num": 1})
