"""Connection reuse: HTTP/1.1 keep-alive, HTTP/1.0 keep-alive as ab -k
speaks it, pipelining in request order, requests split across reads."""

import json
import socket
import struct
import threading
import time

import rawhttp


def num(r):
    return json.loads(r.body)["request_num"]


def test_http11_reuses_the_connection(tallyd):
    t = tallyd("--threads", "2")
    with t.conn() as c:
        nums = []
        for _ in range(5):
            r = c.request("GET", "/")
            assert r.status == 200
            assert (r.header("Connection") or "").lower() != "close"
            nums.append(num(r))
        assert c.request("GET", "/healthz").status == 200
        assert c.request("GET", "/metrics").status == 200
        assert c.request("GET", "/nope").status == 404
        assert nums == [1, 2, 3, 4, 5]
        assert c.is_open(0.3)


def test_http11_connection_close_is_honoured(tallyd):
    t = tallyd()
    with t.conn() as c:
        r = c.request("GET", "/", headers={"Connection": "close"})
        assert r.status == 200
        assert r.header("Connection").lower() == "close"
        assert c.wait_closed(3)


def test_http10_keepalive_is_echoed_and_kept(tallyd):
    t = tallyd()
    with t.conn() as c:
        for i in range(1, 4):
            r = c.request("GET", "/", version="1.0", headers={"Connection": "keep-alive"})
            assert r.status == 200
            assert r.header("Connection").lower() == "keep-alive", r
            assert r.header("Content-Length") == "35"
            assert num(r) == i
        r = c.request("GET", "/healthz", version="1.0", headers={"Connection": "Keep-Alive"})
        assert r.status == 200 and r.header("Connection").lower() == "keep-alive"
        assert c.is_open(0.3)


def test_http10_without_keepalive_is_closed(tallyd):
    t = tallyd()
    with t.conn() as c:
        r = c.request("GET", "/", version="1.0")
        assert r.status == 200
        assert (r.header("Connection") or "close").lower() == "close"
        assert c.wait_closed(3)
    with t.conn() as c:
        r = c.request("GET", "/healthz", version="1.0", host=False)
        assert r.status == 200
        assert c.wait_closed(3)


def test_ab_keepalive_completes(tallyd, ab):
    t = tallyd("--threads", "2")
    res = ab(["-k", "-n", "2000", "-c", "10", t.url + "/"])
    assert res["rc"] == 0, res["stdout"] + res["stderr"]
    assert res["complete"] == 2000, res["stdout"]
    assert res["failed"] == 0, res["stdout"]
    assert res["non2xx"] == 0, res["stdout"]
    assert res["keepalive"] == 2000, res["stdout"]
    t.stop_ok()
    assert sorted(t.request_counts()) == list(range(1, 101))


def test_pipelined_mixed_requests_answered_in_order(tallyd):
    t = tallyd("--threads", "2")
    paths = (["/", "/healthz", "/nope", "/", "/readyz"] * 4)[:20]
    expected = {"/": 200, "/healthz": 200, "/nope": 404, "/readyz": 200}
    with t.conn() as c:
        c.send(b"".join(rawhttp.build("GET", p) for p in paths))
        answers = [c.read_response() for _ in paths]
        assert [r.status for r in answers] == [expected[p] for p in paths]
        roots = [num(r) for p, r in zip(paths, answers) if p == "/"]
        assert roots == list(range(1, len(roots) + 1))
        for p, r in zip(paths, answers):
            doc = json.loads(r.body)
            if p == "/nope":
                assert "error" in doc
            if p == "/":
                assert doc["hello"] == "world"
        assert c.is_open(0.3)
        assert c.request("GET", "/healthz").status == 200


def test_100_pipelined_roots_in_one_write(tallyd):
    t = tallyd("--threads", "2")
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/") * 100)
        answers = [c.read_response() for _ in range(100)]
        assert [num(r) for r in answers] == list(range(1, 101))
        assert all(r.status == 200 for r in answers)
        assert c.is_open(0.3)
        c.send(rawhttp.build("GET", "/") * 30 + rawhttp.build("GET", "/healthz"))
        more = [c.read_response() for _ in range(31)]
        assert [json.loads(r.body) for r in more[:30]] == [{"Go": "away!", "request_num": 100}] * 30
        assert more[30].status == 200


def test_pipelined_http10_keepalive_then_close(tallyd):
    """The last request of a pipeline asks to close: everything before it
    is answered, then the connection closes."""
    t = tallyd()
    with t.conn() as c:
        ka = {"Connection": "keep-alive"}
        c.send(rawhttp.build("GET", "/", "1.0", ka) * 3 + rawhttp.build("GET", "/", "1.0"))
        answers = [c.read_response() for _ in range(4)]
        assert [num(r) for r in answers] == [1, 2, 3, 4]
        assert [r.header("Connection").lower() for r in answers[:3]] == ["keep-alive"] * 3
        assert c.wait_closed(3)


def test_request_one_byte_per_send(tallyd):
    t = tallyd()
    req = rawhttp.build("GET", "/", headers=[("User-Agent", "slow/1.0"), ("Accept", "*/*")])
    with t.conn() as c:
        for i in range(len(req)):
            c.send(req[i : i + 1])
            time.sleep(0.002)
        r = c.read_response()
        assert r.status == 200 and num(r) == 1
        # And a pipelined pair split at every byte boundary of the middle.
        two = rawhttp.build("GET", "/healthz") + rawhttp.build("GET", "/")
        c.send(two[:7])
        time.sleep(0.05)
        c.send(two[7:40])
        time.sleep(0.05)
        c.send(two[40:])
        assert c.read_response().status == 200
        assert num(c.read_response()) == 2


def test_requests_with_bodies_keep_the_stream_in_sync(tallyd):
    """A body (Content-Length or chunked) on a GET is read and skipped, not
    parsed as the next request."""
    t = tallyd()
    with t.conn() as c:
        body = b"GET /nope HTTP/1.1\r\n\r\n"  # looks like a request; is a body
        c.send(rawhttp.build("GET", "/", headers={"Content-Length": str(len(body))}, body=body))
        r = c.read_response()
        assert r.status == 200 and num(r) == 1
        chunked = b"5\r\nhello\r\n0\r\n\r\n"
        c.send(rawhttp.build("GET", "/", headers={"Transfer-Encoding": "chunked"}, body=chunked))
        r = c.read_response()
        assert r.status == 200 and num(r) == 2
        assert c.request("GET", "/healthz").status == 200


def test_many_connections_at_once(tallyd):
    """200 simultaneous keep-alive connections each get answers."""
    t = tallyd("--threads", "2", "--cap", "1000")
    conns = [rawhttp.Conn(t.port) for _ in range(200)]
    try:
        for c in conns:
            c.send(rawhttp.build("GET", "/"))
        nums = [num(c.read_response()) for c in conns]
        assert sorted(nums) == list(range(1, 201))
        for c in conns:
            c.send(rawhttp.build("GET", "/healthz"))
        assert all(c.read_response().status == 200 for c in conns)
    finally:
        for c in conns:
            c.close()


def test_half_close_gets_every_answer_then_close(tallyd):
    """A client that sends its requests and then shuts down its side
    (shutdown(SHUT_WR)) still gets every answer, then the close."""
    t = tallyd()
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/") * 3 + rawhttp.build("GET", "/healthz"))
        c.sock.shutdown(socket.SHUT_WR)
        answers = [c.read_response() for _ in range(4)]
        assert [num(r) for r in answers[:3]] == [1, 2, 3]
        assert answers[3].status == 200
        assert c.wait_closed(3)


def test_long_pipeline_with_backpressure(tallyd):
    """5,000 pipelined requests sent while the answers are read as they
    come: the server must stop reading while its writes back up, and still
    answer every request, in order."""
    t = tallyd("--threads", "2", "--cap", "1000000")
    paths = ["/", "/healthz", "/nope", "/"] * 1250
    with t.conn(timeout=20) as c:
        payload = b"".join(rawhttp.build("GET", p) for p in paths)
        errors = []

        def sender():
            try:
                for i in range(0, len(payload), 7000):
                    c.sock.sendall(payload[i : i + 7000])
            except OSError as e:
                errors.append(e)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        answers = [c.read_response(timeout=20) for _ in paths]
        th.join(10)
        assert not errors
        expected = {"/": 200, "/healthz": 200, "/nope": 404}
        assert [r.status for r in answers] == [expected[p] for p in paths]
        nums = [num(r) for p, r in zip(paths, answers) if p == "/"]
        assert nums == list(range(1, 2501))
        assert c.request("GET", "/healthz").status == 200


def test_slow_reading_client(tallyd):
    """A client that pipelines far more than one read's worth of requests
    and reads the answers late, through a small receive window: the
    server's writes back up, it stops reading, the requests pile up in its
    socket; when the client reads, every request is answered, in order."""
    t = tallyd("--cap", "100000", "--idle-timeout", "10s")
    n = 6000  # about 200 KiB of requests
    with rawhttp.Conn(t.port, timeout=20, rcvbuf=4096) as c:
        errors = []

        def sender():
            try:
                c.sock.sendall(rawhttp.build("GET", "/") * n)
            except OSError as e:
                errors.append(e)

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        time.sleep(1.0)  # let the server's writes back up
        got = []
        while len(got) < n:
            r = c.read_response(timeout=10)
            assert r.status == 200, "answer %d: %r" % (len(got) + 1, r)
            got.append(num(r))
        th.join(5)
        assert not errors
        assert got == list(range(1, n + 1))
        assert c.request("GET", "/healthz").status == 200


def test_pipeline_larger_than_one_read(tallyd):
    """3,000 pipelined requests (100 KiB) in one send: more than the
    server reads at once. All answered, in order."""
    t = tallyd("--cap", "100000")
    n = 3000
    for _ in range(3):
        with t.conn(timeout=10) as c:
            c.send(rawhttp.build("GET", "/healthz") * n)
            answers = [c.read_response() for _ in range(n)]
            assert [r.status for r in answers] == [200] * n


def test_clients_vanishing_mid_pipeline_do_not_hurt(tallyd):
    """Connections reset (RST) with answers still owed: the server carries
    on, and numbers it granted are still logged exactly once."""
    t = tallyd("--threads", "2", "--cap", "100000")
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        s.sendall(rawhttp.build("GET", "/") * 50)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
    time.sleep(0.3)
    with t.conn() as c:
        r = c.request("GET", "/")
        assert r.status == 200
        last = num(r)
    t.stop_ok()
    counts = t.request_counts()
    assert len(counts) == len(set(counts)) == last
    assert sorted(counts) == list(range(1, last + 1))
