"""The servers the benchmark starts (bench/run.py): tallyd, nginx and the
Python original from bench/peers/, each in a session of its own with its
log in the run's work directory; and their backends, the throwaway
redis-server and PostgreSQL of tests/e2e/servers.py.

A peer that cannot start raises PeerError; a tallyd or backend that does
not start, RuntimeError: either fails the run.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from procfs import proc_tree

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
HUGE_CAP = 10**15
NGINX_JSON = "nginx static, JSON access log"

# The end-to-end tests' throwaway servers and free-port helper (plain
# Python, no pytest).
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from servers import PostgresServer, RedisServer, free_port  # noqa: E402


# -- backends -----------------------------------------------------------------


def start_redis(backends):
    """A started redis-server (tests/e2e/servers.py's RedisServer) in a
    session of its own, like the servers under test. It is added to
    backends before it starts, so that stop_backends cleans up after a
    start that failed."""
    redis = RedisServer(new_session=True)
    backends.append(redis)
    return redis.start()


def start_postgres(backends):
    """A started PostgreSQL 15 (tests/e2e/servers.py's PostgresServer:
    fsync and full_page_writes off), with synchronous_commit off too; added
    to backends as start_redis."""
    pg = PostgresServer(settings={"synchronous_commit": "off"})
    backends.append(pg)
    return pg.start()


def stop_backends(backends):
    """Stops each backend (redis: SIGTERM; postgres: pg_ctl stop) and
    removes its directory; a failure is reported and the rest still
    stopped."""
    for b in backends:
        try:
            b.stop()
            b.cleanup()
        except Exception as e:  # keep cleaning up
            print("bench: stopping a backend: %s" % e, file=sys.stderr)


# -- the servers under test ---------------------------------------------------


def wait_port(port, timeout=20.0, path="/"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
                if s.recv(64).startswith(b"HTTP/1."):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


class PeerError(RuntimeError):
    """A server the benchmark needs could not be started: the run fails."""


def log_tail(path, n=15):
    """The last n lines of a log, for an error message: a loguru-serialized
    line is shown as its text, a long line as its start and end."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    out = []
    for line in lines[-n:]:
        try:
            line = json.loads(line)["text"].strip().replace("\n", " | ")
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        out.append("    " + (line if len(line) <= 300 else line[:140] + " ... " + line[-140:]))
    return "\n".join(out) or "    (log empty)"


class Proc:
    def __init__(self, name, argv, env=None, cwd=None, log=None):
        self.name = name
        self.log_path = Path(log) if log else None
        # O_APPEND, so that after rotate() the server writes from offset 0
        self.log = open(log or os.devnull, "ab")
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                  stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def pids(self):
        return proc_tree(self.p.pid)

    def rotate(self):
        """Empties the log file, as logrotate's copytruncate would: the page
        cache and disk writeback of one load's log (up to ~0.5 GB of JSON
        lines under wrk) then do not spill into the next server's load."""
        try:
            os.ftruncate(self.log.fileno(), 0)
        except OSError:
            pass

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


class Server:
    """A server under test: name, port, and its process (a Proc or an Nginx:
    pids(), rotate(), stop(), log_path). counts_hellos: a CAP-100 server
    whose log's "Request #N" lines are counted (see count_hellos)."""

    def __init__(self, name, port, proc, note="", counts_hellos=False):
        self.name = name
        self.port = port
        self.proc = proc
        self.note = note
        self.hellos = [] if counts_hellos else None
        self.scan_log = counts_hellos

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def pids(self):
        return self.proc.pids()

    def rotate_log(self):
        """Counts the load's hellos (while there can be any), then empties
        the log."""
        if self.scan_log and self.proc.log_path:
            found = count_hellos(self.proc.log_path)
            self.hellos += found
            # the counter only grows: once a load has found none after some
            # were found, no later load can have any
            if self.hellos and not found:
                self.scan_log = False
        self.proc.rotate()


def count_hellos(path):
    """The N of every "Request #N" line in a JSON log (loguru's serialized
    shape, which tallyd and the Python original both write: the number is
    record.extra.request_count). Only lines mentioning request_count are
    parsed."""
    found = []
    try:
        f = open(path, "rb")
    except OSError:
        return found
    with f:
        for line in f:
            if b'"request_count"' not in line:
                continue
            try:
                rec = json.loads(line)["record"]
            except (ValueError, KeyError, TypeError):
                continue
            n = (rec.get("extra") or {}).get("request_count")
            if isinstance(n, int) and str(rec.get("message", "")).startswith("Request #"):
                found.append(n)
    return found


# The name of the earlier build bench/run --baseline measures beside tally memory.
BASELINE = "tally baseline"


def start_tally(tallyd, name, workdir, backend_flags, cap, threads):
    port = free_port()
    log = Path(workdir) / ("%s.log" % name)
    argv = [tallyd, "--host", "127.0.0.1", "--port", str(port), "--cap", str(cap)]
    if threads:
        argv += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items()
           if not re.match(r"^(TALLY_.*|PORT|REDIS_URL|DATABASE_URL)$", k)}
    p = Proc(name, argv + backend_flags, env=env, log=log)
    if not wait_port(port, path="/readyz"):
        p.stop()
        raise RuntimeError("%s did not start; its log:\n%s" % (name, log_tail(log)))
    # /readyz answers 200 once every worker's backend is connected
    for _ in range(200):
        if http_status(port, "/readyz") == 200:
            break
        time.sleep(0.02)
    note = "CAP %s" % ("10^15" if cap == HUGE_CAP else cap)
    if name == BASELINE:
        note += ", " + str(tallyd)
    return Server(name, port, p, note,
                  counts_hellos=cap == 100)


def http_status(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
            m = re.match(rb"HTTP/1\.\d (\d+)", s.recv(64))
            return int(m.group(1)) if m else None
    except OSError:
        return None


def nginx_binary():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


class Nginx:
    """One nginx from bench/peers/nginx/<variant>.conf, in a directory of its
    own under the run's work directory (its config with the placeholders
    filled in, pid file, error log, temp paths, access log). nginx
    daemonizes, so it runs in a session of its own, as a service would."""

    def __init__(self, variant, workdir):
        src = PEERS / "nginx" / (variant + ".conf")
        if not src.is_file():
            raise PeerError("nginx peer %s is missing" % src)
        self.bin = nginx_binary()
        if not self.bin:
            raise PeerError("nginx not found (Debian: apt-get install nginx-light); "
                            "bench/run installs it")
        self.port = free_port()
        self.dir = Path(workdir) / ("nginx-" + variant)
        self.dir.mkdir()
        text = src.read_text().replace("@PORT@", str(self.port)).replace("@WORKDIR@", str(self.dir))
        left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
        if left:
            raise PeerError("%s: placeholders not filled in: %s" % (src, " ".join(left)))
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(text)
        self.pid_file = self.dir / "nginx.pid"
        self.log_path = self.dir / "access.log"  # written by json-log only
        self.started = False
        r = subprocess.run(self._argv(), capture_output=True, text=True)
        if r.returncode != 0:
            raise PeerError("nginx (%s) did not start:\n%s\n%s" % (
                src, (r.stderr or r.stdout).strip(), log_tail(self.dir / "error.log")))
        self.started = True
        if not wait_port(self.port):
            self.stop()
            raise PeerError("nginx (%s) does not answer on port %d; its error log:\n%s" % (
                src, self.port, log_tail(self.dir / "error.log")))

    def _argv(self, *extra):
        # -e: the error log from the start, not the compiled-in /var/log/nginx
        return [self.bin, "-p", str(self.dir), "-e", str(self.dir / "error.log"),
                "-c", str(self.conf)] + list(extra)

    def pids(self):
        try:
            master = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return []
        return proc_tree(master)

    def rotate(self):
        """Empties the access log (nginx opens it O_APPEND), as Proc.rotate."""
        try:
            os.truncate(self.log_path, 0)
        except OSError:
            pass

    def stop(self):
        if not self.started:
            return
        self.started = False
        pids = self.pids()
        subprocess.run(self._argv("-s", "quit"), capture_output=True)
        for _ in range(100):
            if not any(Path("/proc/%d" % p).exists() for p in pids):
                return
            time.sleep(0.05)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_nginx(workdir, variant, name, note):
    ng = Nginx(variant, workdir)
    return Server(name, ng.port, ng, note)


PYTHON_PEER_MODULES = {"uvicorn": "python3-uvicorn", "starlette": "python3-starlette",
                       "redis.asyncio": "python3-redis", "loguru": "python3-loguru",
                       "uvloop": "python3-uvloop", "httptools": "python3-httptools"}


def start_python_peer(workdir, redis, workers=2):
    run = PEERS / "python" / "run.sh"
    if not run.is_file():
        raise PeerError("the Python peer %s is missing" % run)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    missing = [pkg for mod, pkg in PYTHON_PEER_MODULES.items()
               if subprocess.run(["/usr/bin/python3", "-c", "import " + mod], env=env,
                                 capture_output=True).returncode != 0]
    if missing:
        raise PeerError("the Python peer needs Debian's %s (bench/run installs them)"
                        % " ".join(missing))
    port = free_port()
    log = Path(workdir) / "python-peer.log"
    p = Proc("python", ["sh", str(run), str(workers), str(port), "127.0.0.1", str(redis.port)],
             env=env, log=log)
    # Up once every worker has started its app (connected to Redis); the
    # probe asks for a path without a route, so it does not count.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_bytes()
        if b"Application startup failed" in text or p.p.poll() is not None:
            break
        if text.count(b"Application startup complete") >= workers and wait_port(
                port, timeout=1, path="/bench-probe"):
            return Server("Python original", port, p, "uvicorn --workers %d + Redis" % workers,
                          counts_hellos=True)
        time.sleep(0.1)
    p.stop()
    raise PeerError("the Python peer (%s) did not start; its log:\n%s" % (run, log_tail(log)))
