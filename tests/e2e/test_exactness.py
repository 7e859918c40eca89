"""The heart of tally: numbers 1..CAP granted exactly once, across threads,
under concurrent load (DESIGN.md section 2), and counted exactly by
`jq .record.extra.request_count` on the log (section 4)."""

import http.client
import json
import subprocess
import threading
from collections import Counter

from conftest import TALLYD, child_env

CAPPED_MSG = "Received a request but we already hit %d requests!"


def level_names(records):
    return Counter(r["record"]["level"]["name"] for r in records)


def capped_records(records, cap):
    return [r for r in records if r["record"]["message"] == CAPPED_MSG % cap]


def test_ab_10000_requests_grant_exactly_100(tallyd, ab):
    t = tallyd("--threads", "2")
    res = ab(["-n", "10000", "-c", "10", t.url + "/"])
    assert res["rc"] == 0, res["stderr"] + res["stdout"]
    assert res["complete"] == 10000, res["stdout"]
    assert res["failed"] == 0, res["stdout"]
    assert res["non2xx"] == 0, res["stdout"]
    assert res["write_errors"] == 0, res["stdout"]
    assert res["doc_length"] == 35, res["stdout"]  # every answer padded to one length
    t.stop_ok()

    records = t.records()
    counts = t.request_counts()
    assert len(counts) == 100, counts
    assert sorted(counts) == list(range(1, 101))
    assert all(isinstance(n, int) for n in counts)
    capped = capped_records(records, 100)
    assert len(capped) == 9900
    assert level_names(records)["WARNING"] == 9900
    for r in capped:
        assert r["record"]["level"]["name"] == "WARNING"
        assert r["record"]["level"]["no"] == 30
        assert "request_count" not in r["record"]["extra"]
    granted = [r for r in records if "request_count" in r["record"]["extra"]]
    for r in granted:
        n = r["record"]["extra"]["request_count"]
        assert r["record"]["message"] == "Request #%d" % n
        assert r["record"]["level"]["name"] == "INFO"
        assert r["record"]["thread"]["name"] in ("worker-1", "worker-2")

    # The real jq agrees with our reading of the log.
    p = subprocess.run(["jq", ".record.extra.request_count", str(t.log_path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    jq_vals = [v for v in p.stdout.split() if v != "null"]
    assert sorted(int(v) for v in jq_vals) == list(range(1, 101))
    assert p.stdout.split().count("null") == len(records) - 100


def test_ab_concurrency_with_a_cap_below_the_load_is_exact(tallyd, ab):
    """A cap the load crosses in the middle: 7,000 numbers, each once, and
    the counter stops at exactly 7,000 across both threads."""
    t = tallyd("--threads", "2", "--cap", "7000")
    res = ab(["-n", "10000", "-c", "10", t.url + "/"])
    assert res["complete"] == 10000 and res["failed"] == 0 and res["non2xx"] == 0, res["stdout"]
    t.stop_ok()
    counts = t.request_counts()
    assert len(counts) == 7000
    assert sorted(counts) == list(range(1, 7001))
    assert len(capped_records(t.records(), 7000)) == 3000


def _client(port, n, results, errors):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(n):
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            results.append((resp.status, resp.getheader("Content-Length"), body,
                            resp.getheader("Connection")))
    except Exception as e:  # reported by the test
        errors.append(repr(e))
    finally:
        conn.close()


def test_thread_pool_clients_get_exactly_100_hellos(tallyd):
    t = tallyd("--threads", "2")
    results, errors = [], []
    threads = [threading.Thread(target=_client, args=(t.port, 100, results, errors))
               for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads), "clients hung"
    assert errors == []
    assert len(results) == 2000

    hellos, away = [], []
    for status, length, body, connection in results:
        assert status == 200
        assert int(length) == len(body) == 35
        assert connection is None or connection.lower() != "close"
        doc = json.loads(body)  # padding spaces are JSON whitespace
        if "hello" in doc:
            assert doc == {"hello": "world", "request_num": doc["request_num"]}
            hellos.append(doc["request_num"])
        else:
            away.append(doc)
    assert len(hellos) == 100
    assert sorted(hellos) == list(range(1, 101))
    assert len(away) == 1900
    assert all(d == {"Go": "away!", "request_num": 100} for d in away)

    t.stop_ok()
    # The log and the answers agree: one INFO line per hello, same numbers.
    assert sorted(t.request_counts()) == sorted(hellos)
    assert len(capped_records(t.records(), 100)) == 1900


def test_hello_bodies_carry_the_logged_numbers_one_to_one(tallyd):
    """On one keep-alive connection, answer k carries number k, and the
    log's Request #k is the same k."""
    t = tallyd("--threads", "2", "--cap", "50")
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
    try:
        nums = []
        for _ in range(60):
            conn.request("GET", "/")
            nums.append(json.loads(conn.getresponse().read())["request_num"])
    finally:
        conn.close()
    assert nums == list(range(1, 51)) + [50] * 10
    t.stop_ok()
    assert t.request_counts() == list(range(1, 51))


def test_second_instance_on_a_taken_port_does_not_start(tallyd):
    """Two memory-backend processes answering on one port would each count
    1..CAP: every number granted twice. Starting tallyd on a port another
    tallyd already serves must fail (as nginx or redis do), not silently
    split the connections between two counters."""
    t = tallyd("--threads", "2", "--cap", "1000")
    second = subprocess.Popen([TALLYD, "--host", "127.0.0.1", "--port", str(t.port),
                               "--threads", "2", "--cap", "1000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=child_env())
    try:
        try:
            out, err = second.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            out = err = b""
        still_running = second.poll() is None
        nums = []
        if still_running:
            # Show what it does: numbers from two counters on one port.
            for _ in range(40):
                nums.append(t.get_json("/")[1]["request_num"])
        assert not still_running, (
            "a second tallyd started on port %d beside the first; answers: %s"
            % (t.port, sorted(nums)))
        assert second.returncode != 0
        text = (out + err).decode("utf-8", "replace")
        assert str(t.port) in text, text
    finally:
        if second.poll() is None:
            second.terminate()
            second.wait(15)
    # The first instance is untouched.
    assert t.get_json("/") == (200, {"hello": "world", "request_num": 1})
