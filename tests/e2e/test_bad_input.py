"""Bad input over raw sockets (DESIGN.md section 3): a clear status, the
connection closed, never a crash, and the service goes on serving."""

import json
import socket
import time

import pytest

import rawhttp


def assert_serves(t, expect_num=None):
    """The service still answers normally on a fresh connection."""
    with t.conn() as c:
        assert c.request("GET", "/healthz").status == 200
        r = c.request("GET", "/")
        assert r.status == 200
        doc = json.loads(r.body)
        if expect_num is not None:
            assert doc == {"hello": "world", "request_num": expect_num}


def expect_refusal(c, statuses, timeout=3.0):
    """One JSON error answer with a status in statuses, marked
    Connection: close, then the server closes."""
    r = c.read_response(timeout=timeout)
    assert r.status in statuses, r
    assert r.header("Connection") and r.header("Connection").lower() == "close", r
    assert "error" in json.loads(r.body), r
    assert c.wait_closed(3), "connection left open after %d" % r.status
    return r


# -- malformed requests --------------------------------------------------------

MALFORMED = {
    "garbage": b"GARBAGE\r\n\r\n",
    "lowercase method": b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    "space in header name": b"GET / HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n",
    "bad Content-Length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "negative Content-Length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "Transfer-Encoding with Content-Length":
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"0\r\n\r\n",
    "Content-Length with Transfer-Encoding":
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
    "duplicate Content-Length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                b"Content-Length: 0\r\n\r\n",
    "conflicting Content-Length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                  b"Content-Length: 2\r\n\r\nab",
    "obs-fold space": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "obs-fold tab": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
    "obs-fold of Authorization": b"POST /reset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n"
                                b" s3cret\r\nContent-Length: 0\r\n\r\n",
    "NUL in header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "NUL in path": b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in header name": b"GET / HTTP/1.1\r\nHost: x\r\nX\x00A: b\r\n\r\n",
    "unknown Transfer-Encoding": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "bad chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\n\r\n",
    "control char in URL": b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    "whitespace before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "HTTP/1.1 without Host": b"GET / HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_is_400_and_closed(tallyd, name):
    t = tallyd("--threads", "2", env={"TALLY_ADMIN_TOKEN": "s3cret"})
    with t.conn() as c:
        c.send(MALFORMED[name])
        expect_refusal(c, {400})
    # A malformed request never claims a number.
    assert_serves(t, expect_num=1)


def test_bad_request_after_good_ones_on_one_connection(tallyd):
    t = tallyd()
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/") * 2 + b"BROKEN REQUEST\r\n\r\n" + rawhttp.build("GET", "/"))
        assert json.loads(c.read_response().body)["request_num"] == 1
        assert json.loads(c.read_response().body)["request_num"] == 2
        expect_refusal(c, {400})
    # The request after the bad one was never served.
    assert_serves(t, expect_num=3)


# -- HTTP versions -----------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET / HTTP/3.0\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    b"GET / HTTP/0.9\r\nHost: x\r\n\r\n",
], ids=["http2", "h2-preface", "http3", "http1.2", "http0.9-with-version"])
def test_other_http_versions_refused(tallyd, data):
    t = tallyd()
    with t.conn() as c:
        c.send(data)
        expect_refusal(c, {400, 505})
    assert_serves(t, expect_num=1)


def test_http09_request_line_refused_at_once(tallyd):
    """"GET /\\r\\n" is a whole HTTP/0.9 request: refused right away, not
    left waiting for the header timeout (10 s by default)."""
    t = tallyd()
    with t.conn() as c:
        c.send(b"GET /\r\n")
        expect_refusal(c, {400, 505}, timeout=2.0)
    assert_serves(t, expect_num=1)


# -- sizes -------------------------------------------------------------------------


def test_headers_just_under_default_limit_are_fine(tallyd):
    t = tallyd()
    r = t.request("GET", "/", headers={"X-Pad": "a" * 7000})
    assert r.status == 200


@pytest.mark.parametrize("what", ["one big header", "many headers", "long url", "huge header"])
def test_headers_over_default_8k_are_431(tallyd, what):
    t = tallyd()
    if what == "one big header":
        req = rawhttp.build("GET", "/", headers={"X-Pad": "a" * 9000})
    elif what == "many headers":
        req = rawhttp.build("GET", "/", headers=[("X-H%d" % i, "v" * 40) for i in range(250)])
    elif what == "long url":
        req = rawhttp.build("GET", "/" + "a" * 9000)
    else:  # far more than the socket buffers: the answer must still arrive
        req = rawhttp.build("GET", "/", headers={"X-Pad": "a" * 300000})
    with t.conn() as c:
        try:
            c.send(req)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has answered
        expect_refusal(c, {431})
    assert_serves(t, expect_num=1)


def test_custom_max_header_size(tallyd):
    t = tallyd("--max-header-size", "1k")
    assert t.request("GET", "/", headers={"X-Pad": "a" * 600}).status == 200
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/", headers={"X-Pad": "a" * 1500}))
        expect_refusal(c, {431})
    # Request line plus headers count, not just the header values.
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/?" + "q" * 1100))
        expect_refusal(c, {431})
    assert_serves(t, expect_num=2)


def test_body_over_1mib_is_413(tallyd):
    t = tallyd()
    with t.conn() as c:
        c.send(rawhttp.build("POST", "/", headers={"Content-Length": str(2 * 1024 * 1024)}))
        expect_refusal(c, {413})
    # Chunked: the size is only known as it arrives.
    with t.conn() as c:
        chunk = b"a" * 65536
        body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 20 + b"0\r\n\r\n"  # 1.25 MiB
        try:
            c.send(rawhttp.build("POST", "/reset", headers={"Transfer-Encoding": "chunked"},
                                 body=body))
        except (BrokenPipeError, ConnectionResetError):
            pass
        expect_refusal(c, {413})
    assert_serves(t, expect_num=1)


def test_body_of_exactly_1mib_is_accepted(tallyd):
    t = tallyd()
    body = b"x" * (1024 * 1024)
    with t.conn(timeout=10) as c:
        r = c.request("GET", "/", headers={"Content-Length": str(len(body))}, body=body)
        assert r.status == 200 and json.loads(r.body)["request_num"] == 1
        assert c.request("GET", "/healthz").status == 200


def test_custom_max_body_size(tallyd):
    t = tallyd("--max-body-size", "10")
    assert t.request("GET", "/", headers={"Content-Length": "10"}, body=b"0123456789").status == 200
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/", headers={"Content-Length": "11"}, body=b"0123456789a"))
        expect_refusal(c, {413})
    assert_serves(t, expect_num=2)


# -- timeouts ----------------------------------------------------------------------


def test_incomplete_headers_get_408(tallyd):
    t = tallyd("--header-timeout", "1s")
    with t.conn() as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        expect_refusal(c, {408}, timeout=4)
        elapsed = time.monotonic() - t0
        assert 0.8 <= elapsed <= 2.5, elapsed
    assert_serves(t, expect_num=1)


def test_header_timeout_counts_from_the_first_byte(tallyd):
    """Trickling a byte now and then does not extend the deadline
    (slowloris)."""
    t = tallyd("--header-timeout", "1s")
    with t.conn() as c:
        t0 = time.monotonic()
        req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        got = None
        for i in range(len(req)):
            try:
                c.send(req[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            c.sock.settimeout(0.15)
            try:
                data = c.sock.recv(65536)
            except socket.timeout:
                continue
            c.buf += data
            if not data:
                c.eof = True
            got = time.monotonic() - t0
            break
        assert got is not None, "no 408 while trickling for %.1fs" % (time.monotonic() - t0)
        assert got <= 2.5, got
        expect_refusal(c, {408})
    assert_serves(t, expect_num=1)


def test_header_timeout_applies_to_the_second_request_too(tallyd):
    t = tallyd("--header-timeout", "1s", "--idle-timeout", "10s")
    with t.conn() as c:
        assert c.request("GET", "/healthz").status == 200
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        expect_refusal(c, {408}, timeout=4)
    assert_serves(t, expect_num=1)


def test_idle_keepalive_closed_after_idle_timeout(tallyd):
    t = tallyd("--idle-timeout", "2s")
    with t.conn() as c:
        # Requests every second keep it open past the timeout...
        for _ in range(3):
            assert c.request("GET", "/healthz").status == 200
            assert c.is_open(1.0)
        assert c.request("GET", "/healthz").status == 200
        # ...then silence closes it.
        t0 = time.monotonic()
        assert c.wait_closed(6), "idle connection not closed"
        elapsed = time.monotonic() - t0
        assert 1.6 <= elapsed <= 4.0, elapsed
    assert_serves(t, expect_num=1)


def test_silent_connection_is_not_kept_forever(tallyd):
    t = tallyd("--header-timeout", "1s", "--idle-timeout", "1s")
    with t.conn() as c:
        t0 = time.monotonic()
        try:
            r = c.read_response(timeout=4)  # a 408 is fine, so is a plain close
            assert r.status == 408
            assert c.wait_closed(2)
        except rawhttp.Closed:
            pass
        assert time.monotonic() - t0 <= 3.0
    assert_serves(t, expect_num=1)


# -- connection limit --------------------------------------------------------------


def test_max_connections(tallyd):
    t = tallyd("--threads", "2", "--max-connections", "5")
    first = [t.conn() for _ in range(5)]
    try:
        for c in first:
            assert c.request("GET", "/healthz").status == 200
        # Past the limit: closed at once, nothing answered.
        for _ in range(3):
            with t.conn() as extra:
                t0 = time.monotonic()
                try:
                    extra.send(rawhttp.build("GET", "/"))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                assert extra.wait_closed(2)
                assert time.monotonic() - t0 < 1.0
        # The first five are still served.
        for c in first:
            r = c.request("GET", "/")
            assert r.status == 200
        nums = sorted(json.loads(c.request("GET", "/").body)["request_num"] for c in first)
        assert nums == [6, 7, 8, 9, 10]
        # One leaves: a new connection gets its place (once the server has
        # seen the close).
        first.pop().close()
        wait_for_a_free_slot(t)
    finally:
        for c in first:
            c.close()
    wait_for_a_free_slot(t)
    # The rejected requests never claimed numbers.
    assert_serves(t, expect_num=11)


def wait_for_a_free_slot(t, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with t.conn() as c:
                assert c.request("GET", "/healthz").status == 200
            return
        except rawhttp.Closed:
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
