"""Pristine Debian 12 roots for the front-door tests.

A pristine root is what `debootstrap --variant=minbase bookworm` makes from
the Debian mirror this machine's apt uses, with apt's package lists and
downloaded .debs removed (as on a fresh machine or a container image: apt
knows no package until `apt-get update`). It is made once and cached as a
tarball, $TALLY_PRISTINE_CACHE/bookworm-minbase.tar (default
/var/cache/tally-pristine), and every root a test needs is a fresh
extraction of it under /var/tmp, holding a clean `git clone` of this
repository's HEAD at /src/tally.

Commands run inside a root through `unshare --mount --pid --fork
--kill-child`: a mount namespace of their own, where the root gets /proc (of
the new PID namespace), /dev and /sys, and then `chroot`. Nothing is mounted
outside that namespace, so nothing is left mounted when it ends, and the
root's PID 1 is the command itself: killing it (or the unshare holding it)
ends every process started inside. The network is the machine's own (apt
reaches the mirror; a tallyd inside listens on the machine's ports).

Two things are added to the extracted root, neither of which changes what
the commands must install or do: /etc/resolv.conf from the machine (a fresh
machine has its own), and /usr/sbin/policy-rc.d answering 101, the usual
chroot and container convention that keeps packages (redis-server,
postgresql) from starting their services on the machine's ports when they
are installed.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TALLY_PRISTINE_CACHE") or "/var/cache/tally-pristine")
SUITE = "bookworm"
INSIDE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"  # Debian's for users


def mirror():
    """The Debian mirror this machine's apt uses (its first URIs: line, or
    the first deb line of sources.list), else deb.debian.org."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        m = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.M)
        if m:
            return m.group(1)
    lst = Path("/etc/apt/sources.list")
    if lst.exists():
        m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+%s\s" % SUITE, lst.read_text(), re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def tail(text, n=30):
    return "\n".join(text.splitlines()[-n:])


def decode(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def base_tarball():
    """The cached pristine root, made first if missing (about 20-50 s)."""
    tar = CACHE / ("%s-minbase.tar" % SUITE)
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="make-", dir=CACHE))
    try:
        root = work / "root"
        # debootstrap mounts /proc and /sys inside the root: in a mount
        # namespace of its own, they go when it ends, however it ends.
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                            "--kill-child", "debootstrap", "--variant=minbase", SUITE, str(root),
                            mirror()], capture_output=True, text=True, timeout=900,
                           preexec_fn=die_with_parent)
        if p.returncode != 0:
            raise RuntimeError("debootstrap failed (exit %d):\n%s"
                               % (p.returncode, tail(p.stdout + p.stderr)))
        for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (root / d).glob("*"):
                if f.is_file():
                    f.unlink()
        part = work / "root.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(part), "."],
                       check=True, timeout=300)
        os.replace(part, tar)
    finally:
        remove_tree(work)
    return tar


def mounts_under(path):
    """Mount points of this namespace at or below path."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path + "/"):
                out.append(point)
    return out


def remove_tree(path):
    """rm -rf path, unless something is mounted below it (rmtree would
    delete through the mount: /dev, /sys)."""
    left = mounts_under(path)
    if left:
        raise RuntimeError("still mounted, not removing %s: %s" % (path, left))
    shutil.rmtree(path, ignore_errors=True)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the test process dies, even
    by SIGKILL (a CI timeout): no unshare, and so no tallyd inside, is left
    serving the machine's port."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def sweep_stale_roots(age_s=2 * 3600):
    """Removes roots (and their output files) that a killed test run left
    in /var/tmp: older than age_s, unmounted, no process inside."""
    for d in Path("/var/tmp").glob("tally-pristine-*"):
        try:
            if time.time() - d.stat().st_mtime < age_s:
                continue
        except OSError:
            continue
        if d.is_dir():
            if not mounts_under(d) and not processes_in(d):
                shutil.rmtree(d, ignore_errors=True)
        else:
            d.unlink(missing_ok=True)


def processes_in(path):
    """Some process has its root directory at or below path."""
    me = os.path.realpath(path)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                r = os.readlink("/proc/%s/root" % d)
            except OSError:
                continue
            if r == me or r.startswith(me + "/"):
                return True
    return False


class Root:
    """One fresh pristine root with a clean clone of HEAD at /src/tally."""

    def __init__(self, name):
        sweep_stale_roots()
        self.dir = Path(tempfile.mkdtemp(prefix="tally-pristine-%s-" % name, dir="/var/tmp"))
        self.procs = []
        try:
            self._make()
        except BaseException:
            remove_tree(self.dir)
            raise

    def _make(self):
        subprocess.run(["tar", "--numeric-owner", "-C", str(self.dir), "-xf",
                        str(base_tarball())], check=True, timeout=300)
        shutil.copy("/etc/resolv.conf", self.dir / "etc" / "resolv.conf")
        rc = self.dir / "usr" / "sbin" / "policy-rc.d"
        rc.write_text("#!/bin/sh\n# services are not started in this root\nexit 101\n")
        rc.chmod(0o755)
        (self.dir / "src").mkdir(exist_ok=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True).stdout
        if dirty.strip():
            print("\n[front door] note: uncommitted changes are not in the roots, which hold a "
                  "clean clone of HEAD:\n" + dirty, flush=True)
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO),
                        str(self.dir / "src" / "tally")], check=True, timeout=300)

    def path(self, inside):
        """The machine's path of a path inside the root."""
        return self.dir / inside.lstrip("/")

    def add_sudo_user(self, name):
        """A user of the root who may use sudo without a password, as on a
        machine where the README says "a user with sudo"; the clone at
        /src/tally becomes a clone of theirs at /home/NAME/tally."""
        rc, out, err = self.run("apt-get update -q && DEBIAN_FRONTEND=noninteractive "
                                "apt-get install -y -q --no-install-recommends sudo && "
                                "useradd -m -s /bin/sh %s && echo '%s ALL=(ALL) NOPASSWD: ALL' "
                                "> /etc/sudoers.d/%s && chmod 440 /etc/sudoers.d/%s && "
                                "cp -a /src/tally /home/%s/tally && chown -R %s: /home/%s/tally"
                                % ((name,) * 7), timeout=600, cwd="/")
        assert rc == 0, "cannot make a sudo user in the root:\n" + tail(out + err)

    def argv(self, command, cwd="/src/tally", user=None):
        """argv running the shell command line `command` in cwd inside the
        root, as root (or as user), with a login shell's PATH and nothing
        else in the environment."""
        r = str(self.dir)
        who = ""
        home, path = "/root", INSIDE_PATH
        if user is not None:
            who = "--userspec=%s:%s " % (user, user)
            home, path = "/home/" + user, USER_PATH
        setup = ("mount -t proc proc '{r}/proc' && mount --rbind /dev '{r}/dev' && "
                 "mount --rbind /sys '{r}/sys' && exec chroot {who}'{r}' /usr/bin/env -i "
                 "HOME={home} USER={user} PATH={path} TERM=dumb /bin/sh -c \"$0\"").format(
                     r=r, who=who, home=home, user=user or "root", path=path)
        inner = "cd '%s' && %s" % (cwd, command)
        return ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                "--kill-child", "/bin/sh", "-c", setup, inner]

    def start(self, command, out, err, cwd="/src/tally", user=None):
        """Starts command inside the root, its stdout and stderr going to
        the files out and err; returns the Popen of the unshare."""
        with open(out, "wb") as o, open(err, "wb") as e:
            p = subprocess.Popen(self.argv(command, cwd, user), stdin=subprocess.DEVNULL,
                                 stdout=o, stderr=e, preexec_fn=die_with_parent)
        self.procs.append(p)
        return p

    def run(self, command, timeout, cwd="/src/tally", user=None):
        """Runs command inside the root to its end: (status, stdout, stderr)."""
        try:
            p = subprocess.run(self.argv(command, cwd, user), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=timeout,
                               preexec_fn=die_with_parent)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%r did not end within %d s; its output:\n%s\n%s" % (
                command, timeout, tail(decode(e.stdout), 40), tail(decode(e.stderr), 40)))
        return p.returncode, p.stdout, p.stderr

    @staticmethod
    def pid1(p):
        """The machine's PID of the first process inside p's namespace (the
        command: the shell, then what it exec'd), or None."""
        try:
            kids = Path("/proc/%d/task/%d/children" % (p.pid, p.pid)).read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def signal(self, p, sig):
        pid = self.pid1(p)
        if pid is not None:
            os.kill(pid, sig)

    def stop(self, p, timeout=20):
        """SIGTERM to the command; its exit status (None if it had to be
        killed)."""
        if p.poll() is None:
            self.signal(p, signal.SIGTERM)
            try:
                return p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                return None
        return p.returncode

    def remove(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        # The mounts live in the commands' namespaces, and the processes
        # inside die of SIGKILL when their unshare does: wait until none
        # still has the root open before deleting it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and processes_in(self.dir):
            time.sleep(0.1)
        remove_tree(self.dir)


def wait_http(port, path="/healthz", timeout=600.0, alive=None):
    """Seconds until GET path on 127.0.0.1:port answers 200, or None when
    timeout passes or alive() turns false first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if alive is not None and not alive():
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.1)
    return None


def port_is_free(port):
    """Nobody listens on port (connections in TIME_WAIT do not count, as
    they do not for tallyd, which binds with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True
