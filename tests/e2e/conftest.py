"""Fixtures for tally's end-to-end tests: the real tallyd on a free port.

The binary is $TALLYD, or build/tallyd of this repository. Every instance a
test starts is stopped at teardown with SIGTERM and must exit with status 0
within its --shutdown-timeout (plus a little slack), and must have written
no sanitizer report to stderr: an ASan/UBSan build that finds a leak or
undefined behaviour makes the test fail. ASAN_OPTIONS, UBSAN_OPTIONS and
the rest of the environment are passed through, except tally's own
variables (TALLY_*, PORT, REDIS_URL, DATABASE_URL), which a test sets
explicitly when it means to.
"""

import itertools
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

import rawhttp
from servers import PostgresServer, RedisServer, free_port  # noqa: F401 (free_port: for the tests)

REPO = Path(__file__).resolve().parents[2]
TALLYD = os.environ.get("TALLYD") or str(REPO / "build" / "tallyd")

# Variables tallyd reads; never inherited from the caller's environment.
TALLY_ENV_RE = re.compile(r"^(TALLY_.*|PORT|REDIS_URL|DATABASE_URL)$")
SANITIZER_RE = re.compile(r"(AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
                          r"MemorySanitizer|UndefinedBehaviorSanitizer|runtime error:)")
SHUTDOWN_SLACK = 3.0  # process exit, log flush, sanitizer leak check


# -- small helpers -------------------------------------------------------------


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not TALLY_ENV_RE.match(k)}
    env.update(extra or {})
    return env


def parse_duration(s):
    """tallyd's duration grammar, in seconds: 10, 10s, 1.5s, 250ms, 2m, 1h."""
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?", s)
    if not m:
        return None
    unit = {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * unit


def flag_value(flags, name):
    """Last value given to --name in flags ("--name v" or "--name=v")."""
    val = None
    flags = list(flags)
    for i, f in enumerate(flags):
        if f == name and i + 1 < len(flags):
            val = flags[i + 1]
        elif f.startswith(name + "="):
            val = f[len(name) + 1 :]
    return val


def parse_json_lines(text):
    """Every line of a json-format log as a dict. Fails unless every line is
    one whole JSON object and the text ends with a newline (the last line
    is whole)."""
    if text == "":
        return []
    assert text.endswith("\n"), "the last log line is not whole: %r" % text[-300:]
    out = []
    for i, line in enumerate(text.split("\n")[:-1], 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError("log line %d is not valid JSON (%s): %r" % (i, e, line[:500]))
        assert isinstance(obj, dict), "log line %d is not a JSON object: %r" % (i, line[:300])
        out.append(obj)
    return out


def jq_path(obj, *keys):
    """What `jq .a.b.c` prints for obj: the value, or None (jq's null) when
    a key is missing or a parent is null."""
    for k in keys:
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise AssertionError("jq would fail: cannot index %r with %r" % (obj, k))
        obj = obj.get(k)
    return obj


def jq_request_counts(records):
    """The values `jq .record.extra.request_count` prints, nulls dropped (what
    counting granted numbers from the log means)."""
    vals = [jq_path(r, "record", "extra", "request_count") for r in records]
    return [v for v in vals if v is not None]


def run_ab(args, timeout=60):
    """Runs ab (always with -s 5) and returns its numbers. args: the rest of
    the command line, ending with the URL."""
    assert all("127.0.0.1" in a for a in args if a.startswith("http")), args
    cmd = ["ab", "-s", "5", "-q"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = p.stdout

    def num(label, default=None):
        m = re.search(r"^%s:\s+(\d+)" % re.escape(label), out, re.M)
        return int(m.group(1)) if m else default

    res = {
        "rc": p.returncode,
        "complete": num("Complete requests"),
        "failed": num("Failed requests"),
        "non2xx": num("Non-2xx responses", 0),
        "keepalive": num("Keep-Alive requests", 0),
        "write_errors": num("Write errors", 0),
        "doc_length": num("Document Length"),
        "stdout": out,
        "stderr": p.stderr,
    }
    return res


# -- tallyd --------------------------------------------------------------------

_serials = itertools.count(1)


class Tallyd:
    """One tallyd process. flags: extra command-line flags; env: extra
    environment; port: fixed port (default: a free one, retried if taken);
    port_flag/host_flag: pass --port/--host 127.0.0.1 (turn off to test the
    environment twins); log_reader: argv of a process that reads tallyd's
    stdout through a pipe and writes it to its own stdout (the log file),
    instead of tallyd writing the file directly."""

    def __init__(self, workdir, flags=(), env=None, port=None, port_flag=True, host_flag=True,
                 log_reader=None):
        self.workdir = Path(workdir)
        self.flags = [str(f) for f in flags]
        self.env = dict(env or {})
        self.fixed_port = port
        self.port = port
        self.port_flag = port_flag
        self.host_flag = host_flag
        self.log_reader = log_reader
        self.serial = next(_serials)
        self.proc = None
        self.reader = None
        self.returncode = None
        self.stop_elapsed = None
        self.starts = 0
        self.log_path = None
        self.err_path = None
        st = flag_value(self.flags, "--shutdown-timeout") or self.env.get("TALLY_SHUTDOWN_TIMEOUT")
        self.shutdown_timeout = parse_duration(st) if st else 10.0
        if self.shutdown_timeout is None:
            self.shutdown_timeout = 10.0

    # -- process ---------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def argv(self):
        a = [TALLYD]
        if self.host_flag:
            a += ["--host", "127.0.0.1"]
        if self.port_flag:
            a += ["--port", str(self.port)]
        return a + self.flags

    def _spawn(self):
        self.starts += 1
        self.log_path = self.workdir / ("tallyd-%d-%d.log" % (self.serial, self.starts))
        self.err_path = self.log_path.with_suffix(".err")
        env = child_env(self.env)
        with open(self.err_path, "wb") as err, open(self.log_path, "wb") as log:
            if self.log_reader:
                r, w = os.pipe()
                try:
                    self.reader = subprocess.Popen(self.log_reader, stdin=r, stdout=log,
                                                   stderr=err)
                    self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=w,
                                                 stderr=err, env=env)
                finally:
                    os.close(r)
                    os.close(w)
            else:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=err, env=env)

    def start(self, timeout=10.0):
        for _attempt in range(5):
            if self.fixed_port is None:
                self.port = free_port()
            self._spawn()
            if self.wait_ready(timeout):
                return self
            rc = self.proc.poll()
            if rc is not None and self.fixed_port is None and "cannot listen" in self.log_text():
                self._reap_reader()
                continue  # someone took the port in between: try another
            self.kill()
            raise AssertionError("tallyd did not become ready (exit %r)\nargv: %s\nstderr: %s\nlog: %s"
                                 % (rc, self.argv(), self.stderr_text()[-2000:],
                                    self.log_text()[-2000:]))
        raise AssertionError("tallyd could not find a free port")

    def wait_ready(self, timeout=10.0):
        """Polls GET /healthz until 200. False if the process exits or the
        time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = rawhttp.request(self.port, "GET", "/healthz", headers={"Connection": "close"},
                                    timeout=2)
                if r.status == 200:
                    return True
            except (OSError, rawhttp.Closed):
                pass
            time.sleep(0.02)
        return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for exit; returns the status, or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap_reader()
        return self.returncode

    def _reap_reader(self):
        if self.reader is not None:
            try:
                self.reader.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.reader.kill()
                self.reader.wait()

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends sig and waits up to the shutdown timeout (+ slack). Returns
        the exit status; raises AssertionError (after killing it) if the
        process did not exit in time."""
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            self._reap_reader()
            return self.returncode
        limit = self.shutdown_timeout + SHUTDOWN_SLACK if timeout is None else timeout
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.wait(limit)
        self.stop_elapsed = time.monotonic() - t0
        if rc is None:
            self.kill()
            raise AssertionError("tallyd did not exit within %.1fs of %s" % (limit, sig.name))
        return rc

    def stop_ok(self, sig=signal.SIGTERM, timeout=None):
        rc = self.stop(sig, timeout)
        assert rc == 0, "tallyd exited with status %r after %s\nstderr: %s" % (
            rc, sig.name, self.stderr_text()[-3000:])
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reap_reader()

    # -- output ----------------------------------------------------------------

    def log_text(self):
        data = self.log_path.read_bytes() if self.log_path and self.log_path.exists() else b""
        return data.decode("utf-8")  # strict: a torn multibyte sequence fails here

    def stderr_text(self):
        if self.err_path and self.err_path.exists():
            return self.err_path.read_bytes().decode("utf-8", "replace")
        return ""

    def settle_log(self, quiet=0.15, limit=5.0):
        """While tallyd runs, waits until its log has stopped growing for
        `quiet` seconds: a line reaches the output up to ~30 ms after its
        request (a worker hands lines over within 10 ms, the writer writes
        every ~20 ms under load), so reading right after the last request
        could miss the newest lines."""
        if not self.running() or not self.log_path:
            return
        deadline = time.monotonic() + limit
        size, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            if now_size != size:
                size, since = now_size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.02)

    def records(self):
        self.settle_log()
        return parse_json_lines(self.log_text())

    def request_counts(self):
        return jq_request_counts(self.records())

    def sanitizer_report(self):
        m = SANITIZER_RE.search(self.stderr_text())
        return self.stderr_text()[-4000:] if m else None

    # -- requests --------------------------------------------------------------

    def conn(self, timeout=5.0):
        return rawhttp.Conn(self.port, timeout=timeout)

    def request(self, method="GET", path="/", version="1.1", headers=None, body=b"",
                timeout=5.0):
        return rawhttp.request(self.port, method, path, version, headers, body, timeout)

    def get_json(self, path="/"):
        r = self.request("GET", path)
        return r.status, r.json()


@pytest.fixture
def tallyd(tmp_path):
    """Factory: tallyd(*flags, env=..., ...) starts one instance (see Tallyd)
    and returns it ready. Teardown stops every instance with SIGTERM and
    requires exit status 0 within the shutdown timeout and a stderr free of
    sanitizer reports."""
    assert os.access(TALLYD, os.X_OK), "no tallyd binary at %s (set TALLYD or build it)" % TALLYD
    instances = []

    def start(*flags, env=None, port=None, port_flag=True, host_flag=True, log_reader=None,
              ready_timeout=10.0):
        t = Tallyd(tmp_path, flags, env=env, port=port, port_flag=port_flag, host_flag=host_flag,
                   log_reader=log_reader)
        instances.append(t)
        return t.start(ready_timeout)

    yield start

    problems = []
    for t in instances:
        if t.proc is None:
            continue
        try:
            rc = t.stop(signal.SIGTERM)
        except AssertionError as e:
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append("tallyd (%s) exited with status %r\nstderr: %s"
                            % (" ".join(t.argv()[1:]), rc, t.stderr_text()[-4000:]))
        rep = t.sanitizer_report()
        if rep:
            problems.append("sanitizer report from tallyd:\n%s" % rep)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def ab():
    """run_ab(args): ab with -s 5 against 127.0.0.1; returns its numbers."""
    return run_ab


@pytest.fixture
def logtools():
    class T:
        parse_json_lines = staticmethod(parse_json_lines)
        jq_request_counts = staticmethod(jq_request_counts)
        jq_path = staticmethod(jq_path)

    return T


# -- throwaway redis-server / postgres (servers.py) ----------------------------


@pytest.fixture
def redis_server():
    """A started RedisServer, removed at teardown."""
    srv = RedisServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
def postgres_server():
    """A started PostgresServer, removed at teardown."""
    srv = PostgresServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()
