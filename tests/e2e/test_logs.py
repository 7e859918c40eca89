"""Logs (DESIGN.md section 4): loguru serialize=True lines, whole even
into a slow pipe under load; text format; levels."""

import json
import re
import sys
import time

import rawhttp

LEVEL_NO = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
TIME_REPR_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
TEXT_HEAD_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \| (DEBUG|INFO|WARNING|ERROR)"
                          r" +\| tally:(\w+) - (.*)$")

# Reads its stdin in small pieces with naps and copies it to stdout: a
# consumer slower than tallyd under load, so the pipe fills up.
SLOW_READER = r"""
import os, sys, time
out = sys.stdout.buffer
while True:
    b = os.read(0, 1024)
    if not b:
        break
    out.write(b)
    time.sleep(0.0005)
out.flush()
"""


def check_loguru_shape(rec, pid):
    assert set(rec) == {"text", "record"}, rec
    r = rec["record"]
    for k in ("elapsed", "exception", "extra", "function", "level", "line", "message", "module",
              "name", "process", "thread", "time"):
        assert k in r, "record without %s: %r" % (k, rec)
    assert isinstance(r["elapsed"]["repr"], str)
    assert isinstance(r["elapsed"]["seconds"], (int, float)) and r["elapsed"]["seconds"] >= 0
    assert r["exception"] is None
    assert isinstance(r["extra"], dict)
    lvl = r["level"]
    assert lvl["name"] in LEVEL_NO and lvl["no"] == LEVEL_NO[lvl["name"]], lvl
    assert isinstance(lvl["icon"], str)
    assert isinstance(r["line"], int)
    assert isinstance(r["message"], str) and isinstance(r["function"], str)
    assert r["process"]["id"] == pid
    assert isinstance(r["process"]["name"], str)
    assert isinstance(r["thread"]["id"], int) and isinstance(r["thread"]["name"], str)
    assert TIME_REPR_RE.match(r["time"]["repr"]), r["time"]
    assert abs(r["time"]["timestamp"] - time.time()) < 120
    m = TEXT_HEAD_RE.match(rec["text"][:-1])
    assert rec["text"].endswith("\n") and m, rec["text"]
    assert m.group(1) == r["time"]["repr"][:23]
    assert m.group(2) == lvl["name"]
    assert m.group(3) == r["function"]
    assert m.group(4) == r["message"]


def test_json_lines_have_loguru_shape(tallyd):
    t = tallyd("--cap", "1", "--threads", "2")
    assert t.request("GET", "/").status == 200
    assert t.request("GET", "/").status == 200
    t.stop_ok()
    records = t.records()
    for rec in records:
        check_loguru_shape(rec, t.pid)
    granted = [r for r in records if "request_count" in r["record"]["extra"]]
    assert len(granted) == 1
    g = granted[0]["record"]
    assert g["extra"] == {"request_count": 1}
    assert g["message"] == "Request #1" and g["level"]["name"] == "INFO"
    assert g["function"] == "claim"
    assert granted[0]["text"].endswith(" | INFO | tally:claim - Request #1\n")
    capped = [r for r in records
              if r["record"]["message"] == "Received a request but we already hit 1 requests!"]
    assert len(capped) == 1
    assert capped[0]["record"]["level"]["name"] == "WARNING"
    assert capped[0]["record"]["extra"] == {}


def test_whole_lines_into_a_slow_pipe_under_load(tallyd, ab):
    t = tallyd("--threads", "2", log_reader=[sys.executable, "-c", SLOW_READER])
    res = ab(["-n", "10000", "-c", "50", t.url + "/"])
    assert res["complete"] == 10000 and res["failed"] == 0 and res["non2xx"] == 0, res["stdout"]
    # Still answering while the reader lags behind.
    assert t.request("GET", "/healthz").status == 200
    t.stop_ok(timeout=30)
    text = t.log_text()
    records = t.records()  # every line whole, valid JSON; the last one ends in \n
    for rec in records:
        assert set(rec) == {"text", "record"}
        assert rec["text"].endswith("\n")
    assert not [r for r in records if "not keeping up" in r["record"]["message"]], "lines dropped"
    counts = t.request_counts()
    assert sorted(counts) == list(range(1, 101))
    capped = [r for r in records if r["record"]["level"]["name"] == "WARNING"
              and r["record"]["message"].startswith("Received a request")]
    assert len(capped) == 9900
    assert text.count("\n") == len(records)


def test_text_format(tallyd):
    t = tallyd("--log-format", "text", "--cap", "1")
    assert t.request("GET", "/").status == 200
    assert t.request("GET", "/").status == 200
    t.stop_ok()
    lines = t.log_text().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert lines
    parsed = []
    for line in lines:
        m = TEXT_HEAD_RE.match(line)
        assert m, "not a loguru-like line: %r" % line
        parsed.append(m.groups())
        assert not line.startswith("{")
    assert any(p[1] == "INFO" and p[2] == "claim" and p[3] == "Request #1" for p in parsed)
    assert any(p[1] == "WARNING" and p[3] == "Received a request but we already hit 1 requests!"
               for p in parsed)
    # loguru pads the level to 8 columns.
    assert any(re.search(r" \| INFO     \| ", line) for line in lines)


def test_log_level_warning_hides_info(tallyd):
    t = tallyd("--log-level", "warning", "--cap", "2")
    for _ in range(3):
        assert t.request("GET", "/").status == 200
    t.stop_ok()
    records = t.records()
    levels = [r["record"]["level"]["no"] for r in records]
    assert all(n >= 30 for n in levels), [r["text"] for r in records]
    assert t.request_counts() == []
    capped = [r for r in records
              if r["record"]["message"] == "Received a request but we already hit 2 requests!"]
    assert len(capped) == 1


def test_log_level_error_hides_warnings(tallyd):
    t = tallyd("--log-level", "error", "--cap", "1")
    for _ in range(3):
        assert t.request("GET", "/").status == 200
    with t.conn() as c:
        c.send(b"BAD\r\n\r\n")
        assert c.read_response().status == 400
    t.stop_ok()
    records = t.records()
    assert all(r["record"]["level"]["no"] >= 40 for r in records), [r["text"] for r in records]
    assert t.request_counts() == []


def test_log_level_debug_keeps_info(tallyd):
    t = tallyd("--log-level", "debug", "--cap", "1")
    for _ in range(2):
        assert t.request("GET", "/").status == 200
    t.stop_ok()
    records = t.records()
    for rec in records:
        check_loguru_shape(rec, t.pid)
    assert t.request_counts() == [1]
    assert any(r["record"]["level"]["name"] == "WARNING" for r in records)


def test_log_messages_with_odd_bytes_stay_valid_json(tallyd):
    """Whatever a client sends, log lines stay one valid JSON line each."""
    t = tallyd("--log-level", "debug", env={"TALLY_ADMIN_TOKEN": "tok"})
    nasty = [b"GET /\"\\\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: x\r\nX: \xc3\x28\x1b[31m\r\n\r\n",
             b"\x00\x01\x02\r\n\r\n",
             b"POST /reset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \"\n\"\r\n\r\n"]
    for data in nasty:
        with t.conn() as c:
            c.send(data)
            try:
                c.read_response()
            except rawhttp.Closed:
                pass
    assert t.request("GET", "/healthz").status == 200
    t.stop_ok()
    for rec in t.records():
        check_loguru_shape(rec, t.pid)
        json.dumps(rec)
