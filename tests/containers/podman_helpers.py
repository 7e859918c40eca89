"""Helpers of the container tests: commands, HTTP, ab, podman, playfiles.

(A module of its own, not conftest.py, so that tests can import it by a
name no other test directory uses.)
"""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAYFILE = REPO / "playfile.yaml"
PLAYFILE_SCALE = REPO / "containers" / "playfile-scale.yaml"
PLAYFILE_POSTGRES = REPO / "containers" / "playfile-postgres.yaml"
ALL_PLAYFILES = [PLAYFILE_SCALE, PLAYFILE, PLAYFILE_POSTGRES]

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
IMAGES = {
    # tag: (Containerfile, build context)
    "localhost/tally:latest": (REPO / "Containerfile", REPO),
    "localhost/tally-redis:latest": (REPO / "containers" / "redis.Containerfile", REPO / "containers"),
    "localhost/tally-postgres:latest": (
        REPO / "containers" / "postgres.Containerfile",
        REPO / "containers",
    ),
}
PORTS = {8080: "tally", 8081: "the second tally", 6379: "Redis", 5432: "PostgreSQL"}

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile={n}:{n}", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

# Filled by the tests, printed by pytest_terminal_summary.
MEASURED = {}


def run(cmd, timeout=120, check=True, **kw):
    """subprocess.run with text output captured and a readable failure."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.run(cmd, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(
            "command failed (exit %d): %s\n--- stdout:\n%s\n--- stderr:\n%s"
            % (p.returncode, " ".join(map(str, cmd)), (p.stdout or "")[-3000:], (p.stderr or "")[-3000:])
        )
    return p


def package_installed(pkg):
    """True when dpkg has the package installed (not merely known)."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return p.returncode == 0 and p.stdout.strip().endswith(" installed")


def apt_install(*packages):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
    if run(apt + ["install", "-y", "--no-install-recommends", *packages], timeout=600, check=False, env=env).returncode != 0:
        run(apt + ["update"], timeout=300, env=env)
        run(apt + ["install", "-y", "--no-install-recommends", *packages], timeout=600, env=env)


def http_get(url, timeout=2.0):
    """(status, body) of a GET, or (None, error text) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


def wait_http(url, want=200, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = http_get(url)
        if last[0] == want:
            return last
        time.sleep(0.2)
    raise AssertionError("%s did not answer %d within %.0f s; last: %r" % (url, want, timeout, last))


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(port):
    """True when something listens on TCP port (any IPv4 address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: connections in TIME_WAIT do not count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def podman_state():
    """Ids of every pod, container and volume podman knows."""
    pods = run(["podman", "pod", "ps", "-q", "--no-trunc"]).stdout.split()
    ctrs = run(["podman", "ps", "-a", "-q", "--no-trunc"]).stdout.split()
    vols = run(["podman", "volume", "ls", "-q"]).stdout.split()
    return {"pods": set(pods), "containers": set(ctrs), "volumes": set(vols)}


def play(playfile, cwd):
    """podman play kube from a neutral directory (podman would try to build
    ./<image>/ if the directory held one named like an image)."""
    t = time.monotonic()
    run(["podman", "play", "kube", str(playfile)], cwd=cwd, timeout=180)
    return time.monotonic() - t


def down(playfile, cwd, check=True):
    t = time.monotonic()
    run(["podman", "play", "kube", "--down", str(playfile)], cwd=cwd, timeout=180, check=check)
    return time.monotonic() - t


def granted_numbers(container):
    """The numbers a tally container logged, read the way a user would:
    podman logs CONTAINER | jq -r '.record.extra.request_count // empty'."""
    logs = run(["podman", "logs", container], timeout=60)
    out = run(["jq", "-r", ".record.extra.request_count // empty"], input=logs.stdout, timeout=60)
    return [int(x) for x in out.stdout.split()]


def wait_granted(container, want, timeout=10.0):
    """granted_numbers(), polled until it holds `want` numbers (the log
    reaches podman's log file a moment after the answers leave)."""
    deadline = time.monotonic() + timeout
    nums = granted_numbers(container)
    while len(nums) < want and time.monotonic() < deadline:
        time.sleep(0.2)
        nums = granted_numbers(container)
    return nums


def ab(url, n, c, timeout=180):
    """Run ab -s 5 -n N -c C URL; return its output and the parsed counts."""
    p = run(["ab", "-s", "5", "-n", str(n), "-c", str(c), url], timeout=timeout, check=False)
    return parse_ab(p.stdout, p.stderr, p.returncode)


def parse_ab(out, err="", rc=0):
    res = {"rc": rc, "output": out + err, "complete": None, "failed": None, "non2xx": 0, "rps": None}
    for line in out.splitlines():
        key, _, val = line.partition(":")
        val = val.strip()
        if key == "Complete requests":
            res["complete"] = int(val)
        elif key == "Failed requests":
            res["failed"] = int(val.split()[0])
        elif key == "Non-2xx responses":
            res["non2xx"] = int(val)
        elif key == "Requests per second":
            res["rps"] = float(val.split()[0])
    return res
