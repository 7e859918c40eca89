"""Regression tests for bugs a code review found (each test failed before its
fix): per-request header deadlines, the drain's single Connection: close,
backoff when a Redis handshake fails, and a PostgreSQL counter row deleted
while workers were at the cap."""

import socket
import threading
import time

from servers import RedisServer


def test_header_deadline_is_per_request_not_per_connection(tallyd):
    """A pipelining client whose requests straddle reads is never idle, and
    no request of it takes longer than --header-timeout: it must not get a
    408 just because the connection has lived longer than that."""
    t = tallyd("--threads", "1", "--header-timeout", "1s")
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HT")
        buf = b""
        answers = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            while buf.count(b"\r\n\r\n{") < answers + 1:
                chunk = s.recv(4096)
                assert chunk, "closed after %d answers: %r" % (answers, buf[-200:])
                buf += chunk
            answers += 1
            time.sleep(0.3)
            s.sendall(b"TP/1.1\r\nHost: x\r\n\r\nGET /healthz HT")
        assert b" 408 " not in buf
        assert answers >= 7
    finally:
        s.close()


def test_drain_sends_one_connection_close_on_the_last_answer(tallyd):
    """Requests queued when SIGTERM arrives are answered; only the last
    answer says Connection: close, and then the connection closes."""
    srv = RedisServer(args=["--enable-debug-command", "yes"])
    srv.start()
    try:
        t = tallyd("--threads", "1", "--backend", "redis", "--redis-url", srv.url)
        deadline = time.monotonic() + 5
        while t.request("GET", "/readyz").status != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # hold Redis busy so that the claims are in flight at SIGTERM
        blocker = threading.Thread(target=srv.cli, args=("debug", "sleep", "0.8"))
        blocker.start()
        time.sleep(0.1)
        s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        time.sleep(0.2)
        t.send_signal(15)
        data = b""
        s.settimeout(5)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        blocker.join()
        assert t.wait(15) == 0
        answers = data.count(b"HTTP/1.1 ")
        assert answers == 5, data
        heads = [h for h in data.split(b"HTTP/1.1 ")[1:]]
        closes = [b"Connection: close" in h.split(b"\r\n\r\n")[0] for h in heads]
        assert closes == [False] * 4 + [True], closes
        assert data.count(b'"hello":"world"') == 5
    finally:
        srv.cleanup()


def test_failed_redis_handshake_backs_off_and_never_says_connected(tallyd, redis_server):
    """SELECT of a database that does not exist fails after the connection
    is made: the worker must not report itself up, and must retry with
    backoff (not every 50 ms), logging once."""
    url = "redis://127.0.0.1:%d/99" % redis_server.port
    t = tallyd("--threads", "2", "--backend", "redis", "--redis-url", url)
    time.sleep(3.0)
    assert t.request("GET", "/readyz").status == 503
    assert t.request("GET", "/").status == 503
    msgs = [r["record"]["message"] for r in t.records()]
    assert not any("connected to" in m for m in msgs), msgs[:5]
    down = [m for m in msgs if "redis" in m and ("cannot connect" in m or "lost" in m)]
    assert 1 <= len(down) <= 2, down  # one per worker
    # backoff: 50 ms doubling to 1 s is ~8 attempts per worker in 3 s, not 60
    clients = int(redis_server.cli("info", "stats").split("total_connections_received:")[1]
                  .split()[0])
    assert clients <= 2 * 10, clients


def test_postgres_row_deleted_while_halted_is_recreated_at_the_floor(tallyd, postgres_server):
    """The counter's row deleted while the counter is at CAP: the row is made
    again, and the next claim raises it to the floor (the 3 this process has
    seen granted) instead of handing out 1, 2, 3 a second time; the loss is
    logged and counted (counter/floor.h)."""
    t = tallyd("--threads", "2", "--cap", "3", "--backend", "postgres", "--database-url",
               postgres_server.url)
    deadline = time.monotonic() + 5
    while t.request("GET", "/readyz").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for _ in range(8):
        t.request("GET", "/", headers={"Connection": "close"})
    assert t.request("GET", "/").json() == {"Go": "away!", "request_num": 3}
    postgres_server.psql("DELETE FROM tally_counters WHERE name = 'request_count'")
    deadline = time.monotonic() + 3
    answers = []
    while time.monotonic() < deadline:
        r = t.request("GET", "/", headers={"Connection": "close"})
        answers.append((r.status, r.json()))
        if postgres_server.psql(
                "SELECT value FROM tally_counters WHERE name = 'request_count'") == "3":
            break
        time.sleep(0.05)
    assert postgres_server.psql(
        "SELECT value FROM tally_counters WHERE name = 'request_count'") == "3"
    assert not [a for a in answers if a[0] == 200 and "hello" in a[1]], answers
    r = t.request("GET", "/")
    assert r.json() == {"Go": "away!", "request_num": 3}
    ready = t.request("GET", "/readyz").json()
    assert ready["status"] == "ready" and ready["lost_writes"] >= 1, ready
    metrics = t.request("GET", "/metrics").body.decode()
    assert "\ntally_counter_floor 3\n" in metrics
    assert "\ntally_counter_lost_numbers_total %d\n" % (3 * ready["lost_writes"]) in metrics
    lost = [rec for rec in t.records() if "lost writes" in rec["record"]["message"]]
    assert lost and all(rec["record"]["level"]["name"] == "ERROR" for rec in lost), lost
    assert "the counter was 0" in lost[0]["record"]["message"]
    assert sorted(t.request_counts()) == [1, 2, 3]


def test_bytes_after_a_close_request_do_not_reset_the_answers(tallyd):
    """A client's last request says Connection: close, and a stray CRLF
    (RFC 9112 2.2 asks servers to tolerate one) follows it but is still in
    the socket when the answers are written: closing then without looking
    would make the kernel send a reset that destroys answers the client has
    not read yet. tallyd must linger instead: all answers, then EOF. The
    process is stopped while the client writes, so that its first read ends
    exactly after the close request (64 KiB of 17 pipelined requests: a
    full ring of 16 and the close request) and the CRLF stays unread."""
    t = tallyd("--threads", "1")
    pad = b"q" * 3800
    head = (b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Pad: " + pad + b"\r\n\r\n") * 16
    last0 = b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: "
    last = last0 + b"p" * (65536 - len(head) - len(last0) - 4) + b"\r\n\r\n"
    data = head + last
    assert len(data) == 65536  # the worker's read buffer
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # answers wait in tallyd's send queue
    s.connect(("127.0.0.1", t.port))
    t.send_signal(19)  # SIGSTOP
    try:
        s.sendall(data + b"\r\n")
        time.sleep(0.2)
    finally:
        t.send_signal(18)  # SIGCONT
    time.sleep(0.5)
    s.settimeout(5)
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except ConnectionResetError:
        raise AssertionError("reset after %d of 17 answers" % buf.count(b"HTTP/1.1 200"))
    finally:
        s.close()
    assert buf.count(b"HTTP/1.1 200 ") == 17
    assert t.request("GET", "/healthz").status == 200
