"""The front door from pristine (issue 13): the README's two commands, run
exactly as written in pristine Debian 12 roots (pristine.py), as a new user
on a fresh machine would run them.

Root A, command 1 (`scripts/run.sh`): from nothing installed to serving
:8080; `ab -s 5 -n 10000 -c 10` against it (0 failed, 0 non-2xx, exactly
the numbers 1..100 granted, each once, in the log it printed); SIGTERM
exits 0. Run again, it installs and configures nothing. Then its failure
paths, each in a copy of the clone: a broken build option (configure), a
compile error (build), the port taken (tallyd's own start), and build
directories it must recover from (moved with the clone, set up with other
options).

Root C, command 1 as "a user with sudo": the same, from a user's own
clone, with sudo only for apt (the root gets sudo and that user first).

Root B, command 2 (`scripts/test.sh`), from pristine: first with apt's
mirror unreachable (apt fails, and says so), then for real: install,
configure, build, the unit and end-to-end suites inside the root (the
container tests need podman on a real machine, not a chroot). Run again,
it installs and configures nothing; with the unit tests turned off in its
build directory, it turns them on again.

Needs root (chroot, namespaces), the machine's apt mirror, ab, and port
8080 free (the port command 1 serves on; a test fails at once, naming it,
when it is taken). Every step's time is printed (pytest -s shows it).
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from pristine import Root, port_is_free, wait_http

PORT = 8080  # command 1's port, as the README writes it
COMMAND1 = "exec scripts/run.sh"
COMMAND2 = "exec scripts/test.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, namespaces)")


def note(what, seconds):
    print("\n[front door] %s: %.1f s" % (what, seconds), flush=True)


def require_port_free():
    assert port_is_free(PORT), (
        "port %d is taken on this machine; command 1 serves there, so this test needs it free" % PORT)


def read(path):
    return path.read_text(errors="replace") if path.exists() else ""


def granted_numbers(log_text):
    """Every record.extra.request_count in a JSON-lines log; fails on a
    line that is not one whole JSON object."""
    nums = []
    for line in log_text.splitlines():
        rec = json.loads(line)["record"]
        if "request_count" in rec["extra"]:
            nums.append(rec["extra"]["request_count"])
    return nums


def run_ab(n=10000, c=10):
    out = subprocess.run(["ab", "-s", "5", "-n", str(n), "-c", str(c),
                          "http://127.0.0.1:%d/" % PORT],
                         capture_output=True, text=True, timeout=120).stdout

    def num(pat):
        m = re.search(pat, out, re.M)
        return int(m.group(1)) if m else None

    return {"complete": num(r"^Complete requests:\s+(\d+)"),
            "failed": num(r"^Failed requests:\s+(\d+)"),
            "non2xx": num(r"^Non-2xx responses:\s+(\d+)") or 0,
            "out": out}


class Serving:
    """Command 1 started in a root; stdout and stderr in files beside it.
    stop() sends SIGTERM to the namespace's PID 1, which is tallyd once
    run.sh has exec'd it: call it only after wait_serving() (before that,
    PID 1 is a shell, which ignores the signal, and stop() kills)."""

    def __init__(self, root, tag, cwd="/src/tally", command=COMMAND1, user=None):
        self.root = root
        self.out = root.dir.parent / (root.dir.name + "-%s.out" % tag)
        self.err = root.dir.parent / (root.dir.name + "-%s.err" % tag)
        self.t0 = time.monotonic()
        self.p = root.start(command, self.out, self.err, cwd=cwd, user=user)

    def wait_serving(self, timeout=600):
        t = wait_http(PORT, timeout=timeout, alive=lambda: self.p.poll() is None)
        assert t is not None, "command 1 did not serve :%d (exit %r)\nstderr:\n%s\nstdout:\n%s" % (
            PORT, self.p.poll(), read(self.err)[-4000:], read(self.out)[-2000:])
        return t

    def stop(self):
        return self.root.stop(self.p)

    def stdout(self):
        return read(self.out)

    def stderr(self):
        return read(self.err)

    def cleanup(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        for f in (self.out, self.err):
            f.unlink(missing_ok=True)


def ab_stop_and_count(s):
    """The README's check of a serving command 1: ab -s 5 -n 10000 -c 10
    (0 failed, 0 non-2xx), SIGTERM exits 0, and the log it printed says it
    served and holds exactly the numbers 1..100, each once."""
    ab = run_ab()
    assert ab["complete"] == 10000 and ab["failed"] == 0 and ab["non2xx"] == 0, ab["out"]
    rc = s.stop()
    assert rc == 0, "SIGTERM: exit %r\n%s" % (rc, s.stderr()[-3000:])
    out = s.stdout()
    assert re.search(r"serving http://0\.0\.0\.0:8080/ \(memory backend, \d+ threads?", out), \
        out[:2000]
    nums = granted_numbers(out)
    assert sorted(nums) == list(range(1, 101)), "granted: %d numbers, %d distinct" % (
        len(nums), len(set(nums)))


@pytest.fixture(scope="module")
def root_a():
    t0 = time.monotonic()
    r = Root("a")
    note("pristine root A extracted (debootstrap, when not cached, included)", time.monotonic() - t0)
    yield r
    r.remove()


@pytest.fixture(scope="module")
def root_c():
    r = Root("c")
    yield r
    r.remove()


@pytest.fixture(scope="module")
def root_b():
    r = Root("b")
    yield r
    r.remove()


# -- command 1 -------------------------------------------------------------------


def test_command1_serves_from_pristine(root_a):
    require_port_free()
    s = Serving(root_a, "first")
    try:
        t = s.wait_serving(timeout=600)
        note("command 1, pristine root to serving", t)
        err = s.stderr()
        # It said what it was doing, in a line or two per step.
        for line in ("tally: setup: installing ", "tally: configuring build/",
                     "tally: building tallyd"):
            assert line in err, "no %r in its output:\n%s" % (line, err)
        ab_stop_and_count(s)
    finally:
        s.cleanup()


def test_command1_rerun_is_quick_and_names_a_taken_port(root_a):
    require_port_free()
    s = Serving(root_a, "again")
    try:
        t = s.wait_serving(timeout=120)
        note("command 1 re-run to serving", t)
        err = s.stderr()
        assert "installing" not in err and "configuring" not in err, err
        build_log = root_a.path("/src/tally/.logs/build.log").read_text()
        assert "ninja: no work to do" in build_log, build_log
        # A second command 1 while the first serves: tallyd's own start
        # fails, says why in plain words on stderr, and exits non-zero.
        rc, out, err2 = root_a.run(COMMAND1, timeout=120)
        assert rc != 0
        assert "tallyd: cannot listen on 0.0.0.0:8080: Address already in use" in err2, err2
        assert s.stop() == 0
    finally:
        s.cleanup()


def copy_clone(root, name):
    """A copy of the root's clone (its build/ included) at /src/NAME."""
    dst = root.path("/src/" + name)
    subprocess.run(["rm", "-rf", str(dst)], check=True)
    subprocess.run(["cp", "-a", str(root.path("/src/tally")), str(dst)], check=True)
    return "/src/" + name


def assert_failed_step(rc, err, step, detail):
    assert rc != 0, "exit status 0 with a step broken on purpose:\n" + err
    assert "tally: FAILED: " + step in err, "the failed step is not named:\n" + err
    assert detail in err, "the failed step's own error is not shown:\n" + err
    assert re.search(r"the whole output of that step is in /\S+\.log", err), err


def test_command1_names_a_failed_configure(root_a):
    cwd = copy_clone(root_a, "broken-option")
    opts = root_a.path(cwd + "/meson_options.txt")
    opts.write_text(opts.read_text().replace("'/usr/share/llhttp'", "'/nonexistent/llhttp'"))
    subprocess.run(["rm", "-rf", str(root_a.path(cwd + "/build"))], check=True)
    rc, out, err = root_a.run(COMMAND1, timeout=300, cwd=cwd)
    assert_failed_step(rc, err, "configuring build/", "llhttp source /nonexistent/llhttp")


def test_command1_names_a_failed_build(root_a):
    cwd = copy_clone(root_a, "broken-build")
    main_c = root_a.path(cwd + "/src/main.c")
    main_c.write_text(main_c.read_text() + "\n#error broken on purpose\n")
    rc, out, err = root_a.run(COMMAND1, timeout=300, cwd=cwd)
    assert_failed_step(rc, err, "building tallyd", "broken on purpose")


def test_command1_recovers_a_stale_build_dir(root_a):
    require_port_free()
    # build/ came with a copy of the clone: meson's files name the old tree.
    cwd = copy_clone(root_a, "moved")
    s = Serving(root_a, "moved", cwd=cwd)
    try:
        s.wait_serving(timeout=300)
        assert "build/ is not a complete build directory of this tree: making it again" in s.stderr()
        assert s.stop() == 0
    finally:
        s.cleanup()
    # build/ configured with another option set (a sanitizer build).
    rc, out, err = root_a.run("meson configure build -Db_sanitize=address", timeout=120, cwd=cwd)
    assert rc == 0, err
    s = Serving(root_a, "reconfigured", cwd=cwd)
    try:
        s.wait_serving(timeout=300)
        assert "configuring build/ again" in s.stderr(), s.stderr()
        assert s.stop() == 0
    finally:
        s.cleanup()
    rc, out, err = root_a.run("meson introspect --buildoptions build", timeout=60, cwd=cwd)
    opts = {o["name"]: o["value"] for o in json.loads(out)}
    assert opts["b_sanitize"] in ("none", []), opts["b_sanitize"]


def test_command1_as_a_user_with_sudo(root_c):
    """"as root or a user with sudo": a user's own clone, sudo for apt only,
    the user's PATH (no /usr/sbin); everything it makes is the user's."""
    require_port_free()
    root_c.add_sudo_user("dev")
    s = Serving(root_c, "user", cwd="/home/dev/tally", user="dev")
    try:
        t = s.wait_serving(timeout=600)
        note("command 1 as a user with sudo, pristine (but sudo) to serving", t)
        assert "tally: setup: installing " in s.stderr(), s.stderr()
        ab_stop_and_count(s)
    finally:
        s.cleanup()
    uid = int(root_c.run("id -u dev", timeout=30)[1])
    for made in ("build", "build/tallyd", ".logs", ".logs/build.log"):
        st = root_c.path("/home/dev/tally/" + made).stat()
        assert st.st_uid == uid, "%s is owned by uid %d, not the user's %d" % (made, st.st_uid, uid)


# -- command 2 -------------------------------------------------------------------


def test_setup_names_a_failed_apt(root_b):
    """Before anything is installed: with the mirror unreachable, command 1
    stops at its first step and says so. (The root stays pristine.)"""
    sources = root_b.path("/etc/apt/sources.list")
    good = sources.read_text()
    sources.write_text("deb http://127.0.0.1:9/debian bookworm main\n")
    try:
        rc, out, err = root_b.run(COMMAND1, timeout=300)
    finally:
        sources.write_text(good)
    assert_failed_step(rc, err, "setup: apt-get", "127.0.0.1")


def test_command2_from_pristine(root_b):
    t0 = time.monotonic()
    # The container tests need podman and a machine of their own; the rest
    # of the suite runs as command 2 runs it.
    rc, out, err = root_b.run(COMMAND2 + " --no-containers", timeout=1200)
    note("command 2 (--no-containers) from pristine", time.monotonic() - t0)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", last)
    assert m, "no result line; last output:\n%s\n%s" % (out[-3000:], err[-3000:])
    assert rc == 0 and int(m.group(2)) == 0 and int(m.group(1)) > 300, \
        "%s\n%s\n%s" % (last, out[-6000:], err[-3000:])
    for line in ("tally: setup --test: installing ", "tally: configuring build/",
                 "tally: building everything in build/"):
        assert line in err, "no %r in its output:\n%s" % (line, err)


def test_command2_rerun_and_a_stale_option(root_b):
    t0 = time.monotonic()
    rc, out, err = root_b.run(COMMAND2 + " --unit", timeout=600)
    note("command 2 (--unit) re-run", time.monotonic() - t0)
    assert rc == 0, out[-3000:] + err[-3000:]
    assert "installing" not in err and "configuring" not in err, err
    units = out.strip().splitlines()[-1]
    # build/ with the unit tests turned off: command 2 turns them on again
    # rather than run a smaller suite.
    rc, _, e = root_b.run("meson configure build -Dtests=disabled", timeout=120)
    assert rc == 0, e
    rc, out, err = root_b.run(COMMAND2 + " --unit", timeout=600)
    assert rc == 0, out[-3000:] + err[-3000:]
    assert "configuring build/ again (meson configure -Dtests=enabled" in err, err
    assert out.strip().splitlines()[-1] == units
