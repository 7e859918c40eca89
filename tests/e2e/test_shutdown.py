"""Graceful shutdown (DESIGN.md section 6): SIGTERM or SIGINT stops
accepting, answers what was received, exits 0 within the grace, and
leaves a whole log."""

import json
import signal
import threading
import time

import rawhttp

PARTIAL = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Late: 1\r\n"  # the final CRLF is missing


def wait_refused(port, timeout=3.0):
    """Waits until connects to port are refused; returns the time it took."""
    t0 = time.monotonic()
    while not rawhttp.connect_refused(port, timeout=0.5):
        assert time.monotonic() - t0 < timeout, "still accepting connections after the signal"
        time.sleep(0.01)
    return time.monotonic() - t0


def check_whole_log(t):
    text = t.log_text()
    assert text.endswith("\n"), "last log line torn: %r" % text[-200:]
    records = t.records()  # every line valid JSON
    assert records, "empty log"
    return records


class Hammer(threading.Thread):
    """A keep-alive client sending GET / back to back until the server
    closes the connection. Records every answer; any torn answer is an
    error."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.conn = rawhttp.Conn(port, timeout=5)
        self.answers = []
        self.error = None
        self.ended = None
        self.started_ok = threading.Event()

    def run(self):
        try:
            while True:
                self.conn.send_request("GET", "/")
                try:
                    r = self.conn.read_response()
                except rawhttp.Closed as e:
                    # Closed between two answers: fine, unless bytes of a
                    # half answer arrived.
                    assert e.partial == b"", "torn answer: %r" % e.partial[:200]
                    self.ended = "closed"
                    return
                assert r.status == 200, r
                doc = json.loads(r.body)
                assert "request_num" in doc
                self.answers.append(r)
                self.started_ok.set()
                if (r.header("Connection") or "").lower() == "close":
                    assert self.conn.wait_closed(3)
                    self.ended = "close-header"
                    return
        except (BrokenPipeError, ConnectionResetError):
            self.ended = "reset-on-send"
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.started_ok.set()
            self.conn.close()


def test_sigterm_drains_in_flight_requests(tallyd):
    t = tallyd("--threads", "2", "--cap", "1000000", "--shutdown-timeout", "5s")
    idle = [t.conn() for _ in range(3)]
    for c in idle:
        assert c.request("GET", "/healthz").status == 200
    hammers = [Hammer(t.port) for _ in range(4)]
    for h in hammers:
        h.start()
    for h in hammers:
        assert h.started_ok.wait(5)
    partial = t.conn()
    partial.send(PARTIAL)
    # A pipelined batch whose answers are all owed once it has been read.
    batch = t.conn()
    batch.send(rawhttp.build("GET", "/") * 10)
    first = batch.read_response()
    time.sleep(0.2)

    t0 = time.monotonic()
    t.send_signal(signal.SIGTERM)
    took = wait_refused(t.port)
    assert took < 1.0, "took %.2fs to stop accepting" % took
    assert t.running(), "exited before the partial request was answered"

    # Idle keep-alive connections are closed.
    for c in idle:
        assert c.wait_closed(3), "idle connection kept open while draining"
        c.close()
    # The rest of the batch was received before the signal: answered.
    rest = [batch.read_response() for _ in range(9)]
    nums = [json.loads(r.body)["request_num"] for r in [first] + rest]
    assert nums == sorted(nums) and len(set(nums)) == 10
    assert batch.wait_closed(3)
    batch.close()

    # The partial request completes after the signal and is answered, with
    # Connection: close.
    time.sleep(0.3)
    partial.send(b"\r\n")
    r = partial.read_response()
    assert r.status == 200 and json.loads(r.body)["hello"] == "world"
    assert (r.header("Connection") or "").lower() == "close"
    assert partial.wait_closed(3)
    partial.close()

    for h in hammers:
        h.join(6)
        assert not h.is_alive(), "a keep-alive client was never closed"
        assert h.error is None, repr(h.error)
        assert h.answers, "a keep-alive client got no answer before the signal"
        assert h.ended in ("closed", "close-header", "reset-on-send")

    rc = t.wait(5 + 3)
    assert rc == 0, "exit status %r: %s" % (rc, t.stderr_text()[-2000:])
    assert time.monotonic() - t0 < 5 + 1

    records = check_whole_log(t)
    # Every number granted reached a client: the log and the answers agree.
    got = [json.loads(r.body)["request_num"] for h in hammers for r in h.answers]
    got += nums + [json.loads(r.body)["request_num"]]
    counts = t.request_counts()
    assert sorted(counts) == sorted(got)
    assert sorted(counts) == list(range(1, len(counts) + 1))
    assert records[-1]["record"]["level"]["name"] in ("INFO", "WARNING")


def test_sigint_is_graceful_too(tallyd):
    t = tallyd("--threads", "2")
    idle = t.conn()
    assert idle.request("GET", "/healthz").status == 200
    partial = t.conn()
    partial.send(PARTIAL)
    time.sleep(0.2)
    t.send_signal(signal.SIGINT)
    wait_refused(t.port)
    assert idle.wait_closed(3)
    idle.close()
    partial.send(b"\r\n")
    r = partial.read_response()
    assert r.status == 200 and json.loads(r.body) == {"hello": "world", "request_num": 1}
    assert partial.wait_closed(3)
    partial.close()
    assert t.wait(10 + 3) == 0, t.stderr_text()
    check_whole_log(t)
    assert t.request_counts() == [1]


def test_idle_server_exits_promptly(tallyd):
    t = tallyd("--threads", "2")
    with t.conn() as c:
        assert c.request("GET", "/").status == 200
    time.sleep(0.1)
    t.stop_ok()
    assert t.stop_elapsed < 1.0, "an idle server took %.2fs to stop" % t.stop_elapsed
    check_whole_log(t)


def test_shutdown_timeout_bounds_a_stalled_request(tallyd):
    t = tallyd("--threads", "2", "--shutdown-timeout", "1s", "--header-timeout", "60s")
    stalled = t.conn()
    stalled.send(PARTIAL)
    time.sleep(0.2)
    t0 = time.monotonic()
    t.send_signal(signal.SIGTERM)
    wait_refused(t.port)
    rc = t.wait(1 + 3)
    elapsed = time.monotonic() - t0
    assert rc == 0, "exit status %r" % rc
    assert 0.8 <= elapsed <= 2.5, "exited after %.2fs with a 1s grace" % elapsed
    # The stalled client was cut off (with or without an answer).
    try:
        stalled.read_response(timeout=2)
    except rawhttp.Closed:
        pass
    stalled.close()
    check_whole_log(t)
    assert t.request_counts() == []


def test_second_signal_does_not_hang_or_crash(tallyd):
    t = tallyd("--threads", "2", "--header-timeout", "60s")
    stalled = t.conn()
    stalled.send(PARTIAL)
    time.sleep(0.2)
    t0 = time.monotonic()
    t.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t.send_signal(signal.SIGTERM)
    rc = t.wait(5)
    assert rc == 0, "exit status %r" % rc
    assert time.monotonic() - t0 < 3.0, "a second signal should end the grace"
    stalled.close()
    check_whole_log(t)
