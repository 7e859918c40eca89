"""Throwaway redis-server and PostgreSQL 15 servers for the backend tests.

Each runs on a free port of 127.0.0.1 with its data in a temporary
directory, and can be stopped, killed (SIGKILL, like a crash) and restarted
on the same port and data directory, which is what backend-fault tests
need. PostgreSQL refuses to run as root: as root, every postgres command
runs through `runuser -u postgres` (NOTES.md's recipe).

Plain Python, no pytest: the benchmark (bench/run.py) starts its backends
with these too. The fixtures redis_server and postgres_server are in
conftest.py.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _children(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces; split after ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(d))
    return out


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class RedisServer:
    """redis-server --port P --bind 127.0.0.1 in a temp dir, without
    persistence unless args (more redis-server options, appended last so
    they win, e.g. ["--appendonly", "yes"]) turn it on. new_session: the
    server runs in a session of its own (a scheduling group of its own
    under sched_autogroup, as a service would; the benchmark wants that)."""

    def __init__(self, port=None, args=(), new_session=False):
        self.port = port or free_port()
        self.args = [str(a) for a in args]
        self.new_session = new_session
        self.dir = tempfile.mkdtemp(prefix="tally-redis-")
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis.log")

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=10.0):
        assert not self.running(), "already running"
        log = open(self.log_path, "ab")
        try:
            argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", self.dir,
                    "--daemonize", "no", "--protected-mode", "no"]
            argv.extend(self.args)
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=self.new_session)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %r:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self.ping():
                return self
            time.sleep(0.01)
        self.kill()
        raise RuntimeError("redis-server not answering PING on port %d" % self.port)

    def ping(self):
        """PING over the protocol (no redis-cli needed): True on +PONG."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args, timeout=10):
        """redis-cli -p PORT args...; returns stdout (stripped)."""
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("redis-cli %s failed: %s" % (args, p.stderr))
        return p.stdout.strip()

    def stop(self, timeout=10.0):
        if not self.running():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """SIGKILL: the server vanishes without a goodbye."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def restart(self, timeout=10.0):
        """Stops if needed and starts again on the same port and directory."""
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A PostgreSQL 15 cluster (initdb, trust auth, fsync off) listening on
    127.0.0.1:P, its Unix socket in its own temp dir. settings: more
    server settings as (name, value) pairs or a dict, passed as -c
    name=value after the defaults (e.g. {"synchronous_commit": "off"})."""

    def __init__(self, port=None, settings=()):
        self.port = port or free_port()
        self.settings = list(dict(settings).items())
        # Under /tmp and short: the socket path must stay under 108 bytes
        # and be reachable by the postgres user (/root is not).
        self.dir = tempfile.mkdtemp(prefix="tpg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "log")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, user="postgres")
        self.initialized = False

    @property
    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    @property
    def conninfo(self):
        return "host=127.0.0.1 port=%d user=postgres dbname=postgres" % self.port

    def _run(self, argv, timeout=60, check=True):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/tmp",
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s\n%s\n%s" % (argv, p.returncode, p.stdout,
                                                                p.stderr, self.log_tail()))
        return p

    def start(self, timeout=30):
        if not self.initialized:
            self._run([PG_BIN + "/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                       "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
            self.initialized = True
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off" % (self.port, self.dir))
        opts += "".join(" -c %s=%s" % (k, v) for k, v in self.settings)
        self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log_path, "-w",
                   "-t", str(int(timeout)), "-o", opts, "start"], timeout=timeout + 10)
        return self

    @property
    def pid(self):
        """The postmaster's PID (first line of postmaster.pid), or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid
        return pid is not None and _pid_alive(pid)

    def psql(self, sql, timeout=20):
        """Runs sql with psql over TCP; returns its unaligned, tuples-only
        output."""
        p = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, p.stderr))
        return p.stdout.strip()

    def ping(self):
        try:
            return self.psql("select 1", timeout=5) == "1"
        except (RuntimeError, subprocess.TimeoutExpired):
            return False

    def stop(self, timeout=30):
        if not self.initialized or not self.running():
            return
        self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t",
                   str(int(timeout)), "stop"], timeout=timeout + 10, check=False)

    def kill(self, timeout=10):
        """SIGKILL the postmaster and its children (a crash of the host's
        database), then wait until they are gone so a restart can reuse the
        data directory."""
        pid = self.pid
        if pid is None or not _pid_alive(pid):
            return
        victims = [pid] + _children(pid)
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_pid_alive(p) for p in victims):
            time.sleep(0.02)
        # A killed postmaster leaves its lock file; if nothing reaps it, its
        # zombie PID would look alive to the next start. Everything is dead
        # now, so the lock file is stale.
        stale = [os.path.join(self.data, "postmaster.pid"),
                 os.path.join(self.dir, ".s.PGSQL.%d" % self.port),
                 os.path.join(self.dir, ".s.PGSQL.%d.lock" % self.port)]
        for path in stale:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def restart(self, timeout=30):
        """Stops (unless already down) and starts on the same port and data
        directory."""
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
