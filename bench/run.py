#!/usr/bin/python3
"""tally's benchmark: tallyd side by side with nginx and the Python original,
in one run, on one machine.

    bench/run            full run: writes bench/results/{results.md,results.png,raw.json}
    bench/run --smoke    one repetition of short loads (ab -n as in the full run),
                         results in a temp directory; targets shown but not
                         binding; fails if a server got no requests or a
                         target could not be measured (CI runs this so it
                         cannot rot)

Servers: tallyd with the memory, redis and postgres backends, each with CAP 100
(the original's benchmark: after 100 requests every answer is "go away") and
with a huge CAP (every request makes a claim); nginx from Debian returning a
static body, with its access log off and with a JSON access log
(bench/peers/nginx); the Python original with its own Redis
(bench/peers/python). Every peer is part of the repository, and one that
cannot start fails the run. tallyd logs to a file with its default settings,
as a user would run it; every server's log file is emptied after each of its
loads (as logrotate's copytruncate would), so that one load's log writeback
does not land on the next server's load.

Loads, interleaved over the repetitions (every server gets each load once per
repetition before the next repetition starts). Within a load the servers a
target compares are measured back to back: the Python original, tally memory
and nginx static first (nginx with its JSON access log right after), then the
three "claims" servers, then the rest; the order is
reversed every other repetition (six by default, so each of a pair goes first
equally often). Every target comparing two servers is the median of their
per-repetition ratios: this shared VM's speed drifts by up to 2x within
minutes (nginx alone: 98k then 53k req/s three minutes later), far more than
the servers differ, and a pair measured seconds apart sees the same machine.
The ratio of the two medians is reported beside it.
    ab -n 10000 -c 10            the original's benchmark, no keep-alive
    ab -k -n 50000 -c 50         keep-alive
    wrk -t2 -c64 -d10s           keep-alive, as fast as the client can

Reported per server and load: median req/s, p50 and p99 latency, the server's
own CPU time per request (utime+stime of its whole process tree from /proc,
before and after the run), and RSS after the run; plus tallyd's RSS with
1,000 idle keep-alive connections open; and, as facts rather than targets,
how many requests each CAP-100 server told "hello" (from its log: tallyd
exactly 100, the racy Python original more). Client and server share the
machine's CPUs: compare the ratios of one run, and CPU per request.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
HUGE_CAP = 10**15


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# -- /proc --------------------------------------------------------------------


def proc_tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path("/proc/%s/stat" % d).read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            f = Path("/proc/%d/stat" % p).read_text()
        except OSError:
            continue
        fields = f[f.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            total += int(Path("/proc/%d/statm" % p).read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total


# -- servers ------------------------------------------------------------------


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


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = Path(workdir) / ("redis-%d" % self.port)
        self.dir.mkdir()
        self.proc = Proc("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", str(self.dir)])
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":
                return
            time.sleep(0.02)
        raise RuntimeError("redis did not start")

    def stop(self):
        self.proc.stop()


class Postgres:
    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tbpg-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, user="postgres")
        self._run([self.BIN + "/initdb", "-D", str(self.dir / "data"), "-U", "postgres", "-A",
                   "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off" % (self.port, self.dir))
        self._run([self.BIN + "/pg_ctl", "-D", str(self.dir / "data"), "-l",
                   str(self.dir / "log"), "-w", "-o", opts, "start"])
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def _run(self, argv):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, check=True, capture_output=True, cwd="/tmp")

    def stop(self):
        self._run([self.BIN + "/pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w",
                   "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


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
    return Server(name, port, p, "CAP %s" % ("10^15" if cap == HUGE_CAP else cap),
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


# -- loads --------------------------------------------------------------------


def run_ab(url, n, c, keepalive):
    argv = ["ab", "-s", "5", "-q", "-n", str(n), "-c", str(c)]
    if keepalive:
        argv.append("-k")
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=600).stdout

    def num(pat, conv=float, default=None):
        m = re.search(pat, out, re.M)
        return conv(m.group(1)) if m else default

    return {
        "rps": num(r"^Requests per second:\s+([\d.]+)"),
        "requests": num(r"^Complete requests:\s+(\d+)", int, 0),
        "failed": num(r"^Failed requests:\s+(\d+)", int, None),
        "non2xx": num(r"^Non-2xx responses:\s+(\d+)", int, 0),
        "p50_ms": num(r"^\s+50%\s+(\d+)"),
        "p99_ms": num(r"^\s+99%\s+(\d+)"),
    }


def wrk_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, seconds):
    argv = ["timeout", str(seconds + 20), "wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency",
            url]
    out = subprocess.run(argv, capture_output=True, text=True).stdout

    def lat(pct):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % pct, out, re.M)
        return wrk_ms(m.group(1), m.group(2)) if m else None

    m = re.search(r"^\s+(\d+) requests in", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "requests": int(m.group(1)) if m else 0,
        "failed": None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errs.group(1) if errs else "",
        "p50_ms": lat(50),
        "p99_ms": lat(99),
    }


def measure(server, load, args):
    pids = server.pids()
    cpu0 = cpu_seconds(pids)
    if load == "ab":
        r = run_ab(server.url, args.ab_n, 10, False)
    elif load == "ab -k":
        r = run_ab(server.url, args.abk_n, 50, True)
    else:
        r = run_wrk(server.url, args.wrk_s)
    pids = server.pids()
    cpu = cpu_seconds(pids) - cpu0
    r["cpu_us_per_req"] = cpu / r["requests"] * 1e6 if r["requests"] else None
    r["rss_mb"] = rss_bytes(pids) / 2**20
    return r


def idle_rss(server, n=1000):
    """tallyd's RSS with n idle keep-alive connections, each having made one
    request."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("connection closed")
                data += chunk
        time.sleep(0.5)
        return rss_bytes(server.pids()) / 2**20
    finally:
        for s in socks:
            s.close()


# -- report -------------------------------------------------------------------


LOADS = ["ab", "ab -k", "wrk"]
LOAD_TITLES = {
    "ab": "ab -n 10000 -c 10 (no keep-alive)",
    "ab -k": "ab -k -n 50000 -c 50",
    "wrk": "wrk -t2 -c64 -d10s",
}


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30
    osname = "Linux"
    try:
        osname = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return "%s, %d CPUs (%s), %.0f GiB RAM, kernel %s" % (osname, os.cpu_count(), cpu, mem,
                                                          platform.release())


def summarize(results, servers):
    table = {}
    for s in servers:
        for load in LOADS:
            runs = [r for r in results if r["server"] == s.name and r["load"] == load]
            if not runs:
                continue
            table[(s.name, load)] = {
                k: median([r[k] for r in runs])
                for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_mb")
            }
            table[(s.name, load)]["failed"] = sum((r.get("failed") or 0) for r in runs)
            table[(s.name, load)]["non2xx"] = sum((r.get("non2xx") or 0) for r in runs)
    return table


def paired_ratios(results, a, b, load, key="rps"):
    """a's value over b's, repetition by repetition (measured back to back)."""
    val = {(r["server"], r["rep"]): r.get(key) for r in results if r["load"] == load}
    reps = sorted({rep for (_, rep) in val})
    return [val[(a, rep)] / val[(b, rep)] for rep in reps
            if val.get((a, rep)) and val.get((b, rep))]


def pair_target(results, table, label, a, b, load, key, lim, cmp):
    """A target comparing a with b: (label, median of the per-repetition
    ratios, limit, cmp, ratio of the medians, per-repetition ratios)."""
    pairs = paired_ratios(results, a, b, load, key)
    va = (table.get((a, load)) or {}).get(key)
    vb = (table.get((b, load)) or {}).get(key)
    return (label, median(pairs), lim, cmp, va / vb if va and vb else None, pairs)


def targets(table, results, idle_mb):
    """(label, value, limit, "ge" or "le", ratio of the medians or None,
    per-repetition ratios or None) for every target, in issue 5's order; the
    value is None when the servers it needs were not measured."""
    ab_t = table.get(("tally memory", "ab")) or {}
    tally_runs = [v for (n, _), v in table.items() if n.startswith("tally")]
    return [
        pair_target(results, table, "wrk: tally memory >= 1.0 x nginx static",
                    "tally memory", "nginx static", "wrk", "rps", 1.0, "ge"),
        pair_target(results, table, "wrk: tally redis, every request claiming >= 0.7 x tally memory",
                    "tally redis, claims", "tally memory, claims", "wrk", "rps", 0.7, "ge"),
        pair_target(results, table,
                    "wrk: tally postgres, every request claiming >= 0.5 x tally memory",
                    "tally postgres, claims", "tally memory, claims", "wrk", "rps", 0.5, "ge"),
        pair_target(results, table, "ab: tally CPU per request <= nginx's",
                    "tally memory", "nginx static", "ab", "cpu_us_per_req", 1.0, "le"),
        ("ab: tally p99 <= 2 ms", ab_t.get("p99_ms"), 2.0, "le", None, None),
        ("ab: 0 failed requests (all tally servers, all loads)",
         sum(v["failed"] for v in tally_runs) if tally_runs else None, 0, "le", None, None),
        pair_target(results, table, "wrk: tally memory >= 20 x the Python original",
                    "tally memory", "Python original", "wrk", "rps", 20.0, "ge"),
        ("RSS with 1,000 idle keep-alive connections <= 10 MB", idle_mb, 10.0, "le", None, None),
    ]


NGINX_JSON = "nginx static, JSON access log"


def informational(table, results):
    """Ratios with nginx's JSON-logging variant, in targets()'s shape (no
    limit): shown, never judged. Empty if it was not measured."""
    if not any(n == NGINX_JSON for (n, _) in table):
        return []
    return [
        pair_target(results, table, "wrk: tally memory / nginx static, JSON access log (req/s)",
                    "tally memory", NGINX_JSON, "wrk", "rps", None, None),
        pair_target(results, table, "ab: tally memory's CPU per request / nginx JSON log's",
                    "tally memory", NGINX_JSON, "ab", "cpu_us_per_req", None, None),
        pair_target(results, table, "wrk: nginx JSON log / nginx static (req/s)",
                    NGINX_JSON, "nginx static", "wrk", "rps", None, None),
    ]


def write_report(outdir, results, servers, idle_mb, args, started):
    table = summarize(results, servers)
    lines = ["# tally benchmark", "",
             "Run %s, %d repetition(s), medians. Machine: %s." % (
                 started.strftime("%Y-%m-%d %H:%M UTC"), args.reps, machine()),
             "Client (ab, wrk) and servers share the CPUs; compare ratios within this run and "
             "the servers' own CPU time per request. Within each load the servers were measured "
             "in the order %s; reversed every other repetition." % "; ".join(
                 s.name for s in measure_order(servers)), ""]
    for load in LOADS:
        lines += ["## " + LOAD_TITLES[load].replace("10000", str(args.ab_n))
                  .replace("50000", str(args.abk_n)).replace("10s", "%ds" % args.wrk_s), "",
                  "| server | req/s | p50 ms | p99 ms | server CPU µs/req | RSS MB | failed | non-2xx |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for s in servers:
            v = table.get((s.name, load))
            if not v:
                continue
            lines.append("| %s (%s) | %s | %s | %s | %s | %s | %d | %d |" % (
                s.name, s.note, fmt(v["rps"], ".0f"), fmt(v["p50_ms"], ".2f"),
                fmt(v["p99_ms"], ".2f"), fmt(v["cpu_us_per_req"], ".1f"), fmt(v["rss_mb"], ".1f"),
                v["failed"], v["non2xx"]))
        lines.append("")
    lines += ["tallyd (memory) RSS with 1,000 idle keep-alive connections: %s MB" % fmt(idle_mb, ".1f"),
              "", "## Targets", "",
              "A target comparing two servers is the median of their ratios per repetition "
              "(the pair measured back to back); the ratio of their medians is shown beside it.",
              "", "| target | measured | ratio of medians | per repetition | |",
              "|---|---:|---:|---|---|"]
    for name, val, lim, cmp, of_medians, pairs in targets(table, results, idle_mb):
        if val is None:
            verdict = "not measured"
        else:
            verdict = "met" if (val <= lim if cmp == "le" else val >= lim) else "NOT met"
            if args.smoke:
                verdict += " (smoke run: not binding)"
        lines.append("| %s | %s | %s | %s | %s |" % (
            name, fmt(val, "d" if isinstance(val, int) else ".2f"), fmt(of_medians, ".2f"),
            " ".join("%.2f" % r for r in pairs) if pairs else "", verdict))
    lines.append("")
    info = informational(table, results)
    if info:
        lines += ["## nginx with a JSON access log (informational, not targets)", "",
                  "tallyd writes a JSON line per request; nginx static, with its access log "
                  "off, does not. nginx static, JSON access log writes one too "
                  "(`log_format escape=json`, buffered 64 KiB / 1 s), measured right after "
                  "nginx static and so one server away from tally memory.", "",
                  "| ratio | median of per-repetition ratios | ratio of medians | per repetition |",
                  "|---|---:|---:|---|"]
        for name, val, _, _, of_medians, pairs in info:
            lines.append("| %s | %s | %s | %s |" % (name, fmt(val, ".2f"), fmt(of_medians, ".2f"),
                                                   " ".join("%.2f" % r for r in pairs)))
        lines.append("")
    counted = [s for s in servers if s.hellos is not None]
    if counted:
        lines += ["## Exactness (facts, not targets)", "",
                  "Requests each CAP-100 server told \"hello\" over the run, counted from its "
                  "log's \"Request #N\" lines (record.extra.request_count). No counter is reset "
                  "during a run, so they all come from the server's first load "
                  "(ab -n %d -c 10)." % args.ab_n, "",
                  "| server | hellos | distinct N | N from-to | |", "|---|---:|---:|---|---|"]
        for s in counted:
            h = s.hellos
            if s.name.startswith("tally"):
                verdict = ("exact: 1 to 100, each once" if sorted(h) == list(range(1, 101))
                           else "NOT exact")
            else:
                verdict = ("racy get-then-set: %d hellos beyond 100" % (len(h) - 100)
                           if len(h) > 100 else "")
            lines.append("| %s | %d | %d | %s | %s |" % (
                s.name, len(h), len(set(h)), "%d-%d" % (min(h), max(h)) if h else "-", verdict))
        lines.append("")
    (outdir / "results.md").write_text("\n".join(lines))
    (outdir / "raw.json").write_text(json.dumps({"machine": machine(), "started": started.isoformat(),
                                                 "args": vars(args), "runs": results,
                                                 "idle_rss_mb": idle_mb,
                                                 "hellos": {s.name: s.hellos for s in counted}},
                                                indent=1))
    plot(outdir, table, servers)
    return "\n".join(lines)


def plot(outdir, table, servers):
    if not shutil.which("gnuplot"):
        print("bench: gnuplot not found; no chart", file=sys.stderr)
        return
    dat = outdir / "results.dat"
    with open(dat, "w") as f:
        f.write("server " + " ".join('"%s"' % LOAD_TITLES[l].split(" (")[0] for l in LOADS) + "\n")
        for s in servers:
            vals = [(table.get((s.name, l)) or {}).get("rps") or 0 for l in LOADS]
            f.write('"%s" %s\n' % (s.name, " ".join("%.0f" % v for v in vals)))
    script = """
set terminal pngcairo size 1100,560 font ",10"
set output '%s'
set title "req/s, median of the run (client and server share %d CPUs)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set ylabel "requests per second"
set yrange [0:*]
set grid ytics
set xtics rotate by -20 scale 0
plot '%s' using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), \\
     '' using 4 title columnheader(4)
""" % (outdir / "results.png", os.cpu_count(), dat)
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("bench: gnuplot failed: " + r.stderr, file=sys.stderr)
    dat.unlink()


# -- main ---------------------------------------------------------------------


# tally memory sits between its two partners, as does tally memory, claims.
# nginx's JSON-logging variant right after nginx static: one server from tally
# memory, and the pairs the targets compare stay back to back.
MEASURE_ORDER = ["Python original", "tally memory", "nginx static", NGINX_JSON,
                 "tally redis, claims", "tally memory, claims", "tally postgres, claims",
                 "tally redis", "tally postgres"]


def measure_order(servers):
    """The servers in MEASURE_ORDER: each pair a target compares is measured
    back to back (the Python original, tally memory and nginx static; the
    claims servers)."""
    rank = {n: i for i, n in enumerate(MEASURE_ORDER)}
    return sorted(servers, key=lambda s: rank.get(s.name, len(rank)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="short loads, one repetition, targets not binding")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--tallyd", default=str(REPO / "build" / "tallyd"))
    ap.add_argument("--threads", type=int, default=0, help="tallyd --threads (0: its default)")
    ap.add_argument("--out", default=None, help="results directory")
    ap.add_argument("--only", default=None, help="comma-separated server names to run")
    args = ap.parse_args()
    args.ab_n, args.abk_n, args.wrk_s = 10000, 50000, 10
    if args.smoke:
        # ab -n as in the full run: with fewer, a server's CPU time over the
        # load can round to zero clock ticks (10 ms each) and the CPU target
        # goes unmeasured
        args.reps, args.ab_n, args.abk_n, args.wrk_s = 1, 10000, 2000, 1
    outdir = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="tally-bench-"))
                                              if args.smoke else REPO / "bench" / "results")
    outdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-work-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    servers, backends = [], []
    results = []
    idle_mb = None
    failure = None
    unmeasured = []
    try:
        redis = Redis(workdir)
        backends.append(redis)
        pg = Postgres()
        backends.append(pg)
        redis_flags = ["--backend", "redis", "--redis-url", "redis://127.0.0.1:%d/0" % redis.port]
        pg_flags = ["--backend", "postgres", "--database-url", pg.url]
        t = args.threads
        servers.append(start_tally(args.tallyd, "tally memory", workdir, [], 100, t))
        servers.append(start_tally(args.tallyd, "tally memory, claims", workdir, [], HUGE_CAP, t))
        servers.append(start_tally(args.tallyd, "tally redis", workdir,
                                   redis_flags + ["--key", "bench100"], 100, t))
        servers.append(start_tally(args.tallyd, "tally redis, claims", workdir,
                                   redis_flags + ["--key", "benchhuge"], HUGE_CAP, t))
        servers.append(start_tally(args.tallyd, "tally postgres", workdir,
                                   pg_flags + ["--key", "bench100"], 100, t))
        servers.append(start_tally(args.tallyd, "tally postgres, claims", workdir,
                                   pg_flags + ["--key", "benchhuge"], HUGE_CAP, t))
        servers.append(start_nginx(workdir, "static", "nginx static",
                                   "static body, access_log off"))
        servers.append(start_nginx(workdir, "json-log", NGINX_JSON,
                                   "static body, JSON access log, buffered"))
        peer_redis = Redis(workdir)
        backends.append(peer_redis)
        servers.append(start_python_peer(workdir, peer_redis))
        measured = servers
        if args.only:
            keep = set(args.only.split(","))
            measured = [s for s in servers if s.name in keep]

        measured = measure_order(measured)
        for rep in range(args.reps):
            for load in LOADS:
                for s in (measured if rep % 2 == 0 else measured[::-1]):
                    r = measure(s, load, args)
                    s.rotate_log()
                    r.update(server=s.name, load=load, rep=rep)
                    results.append(r)
                    print("rep %d %-7s %-29s %9s req/s  p99 %6s ms  cpu %6s us/req  rss %5s MB" % (
                        rep + 1, load, s.name, fmt(r["rps"], ".0f"), fmt(r["p99_ms"], ".2f"),
                        fmt(r["cpu_us_per_req"], ".1f"), fmt(r["rss_mb"], ".1f")), flush=True)
        mem = next((s for s in servers if s.name == "tally memory"), None)
        if mem:
            idle_mb = idle_rss(mem, 100 if args.smoke else 1000)
        shown = [s for s in servers if s in measured]
        report = write_report(outdir, results, shown, idle_mb, args, started)
        unmeasured = [t[0] for t in targets(summarize(results, shown), results, idle_mb)
                      if t[1] is None]
        print()
        print(report)
        print("results in %s" % outdir)
    except RuntimeError as e:  # PeerError, or a tallyd or Redis that did not start
        failure = str(e)
    finally:
        for s in servers:
            s.proc.stop()
        for b in backends:
            try:
                b.stop()
            except Exception as e:  # keep cleaning up
                print("bench: stopping a backend: %s" % e, file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
    if failure:
        print("bench: %s" % failure, file=sys.stderr)
        print("bench: run failed", file=sys.stderr)
        return 1
    if args.smoke:
        bad = [r for r in results if not r["requests"]
               or (r["server"].startswith("tally") and (r.get("failed") or 0) > 0)]
        if bad or not results:
            print("bench smoke: %d runs without requests or with failures" % len(bad))
            return 1
        if unmeasured and not args.only:
            print("bench smoke: targets not measured: %s" % "; ".join(unmeasured))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
