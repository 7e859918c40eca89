"""Configuration (DESIGN.md section 5): flags, environment twins, flags
winning, --help, --version, and bad values refused with status 2 and one
line naming the flag."""

import json
import re
import subprocess

import pytest

import rawhttp
from conftest import REPO, TALLYD, child_env, free_port


def run(args, env=None, timeout=5):
    return subprocess.run([TALLYD] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=child_env(env), stdin=subprocess.DEVNULL)


BAD_FLAGS = [
    ("--port", "0"), ("--port", "65536"), ("--port", "http"), ("--port", "-1"), ("--port", "80x"),
    ("--host", "example.invalid"), ("--host", "1.2.3.4.5"),
    ("--threads", "0"), ("--threads", "many"), ("--threads", "-2"),
    ("--cap", "0"), ("--cap", "-5"), ("--cap", "ten"), ("--cap", "1e3"),
    ("--cap", "99999999999999999999"),
    ("--backend", "mysql"), ("--backend", "MEMORY "),
    ("--log-level", "loud"), ("--log-format", "xml"),
    ("--max-connections", "0"), ("--max-connections", "lots"),
    ("--max-header-size", "10"), ("--max-header-size", "big"), ("--max-header-size", "8q"),
    ("--header-timeout", "soon"), ("--header-timeout", "-1s"),
    ("--idle-timeout", "5 s"), ("--idle-timeout", "1x"),
    ("--shutdown-timeout", "x"),
    ("--max-body-size", "2048m"),
    ("--key", "has space"),
]


def check_one_line_naming(p, name):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, "expected one line on stderr, got %r" % p.stderr
    assert name in lines[0], "the line does not name %s: %r" % (name, lines[0])
    assert p.stdout == "", p.stdout


@pytest.mark.parametrize("flag,value", BAD_FLAGS, ids=["%s=%s" % fv for fv in BAD_FLAGS])
def test_bad_flag_value_exits_2_naming_it(flag, value):
    port = str(free_port())
    p = run(["--host", "127.0.0.1", "--port", port, flag, value])
    check_one_line_naming(p, flag)
    if flag != "--port":
        assert rawhttp.connect_refused(int(port)), "it went on serving after a bad value"
    # The --flag=value spelling is refused the same way.
    p = run(["--host", "127.0.0.1", "--port", port, "%s=%s" % (flag, value)])
    check_one_line_naming(p, flag)


@pytest.mark.parametrize("args,name", [
    (["--bogus", "1"], "--bogus"),
    (["--cap"], "--cap"),
    (["--cap="], "--cap"),
    (["--port", ""], "--port"),
    (["--backend", "postgres"], "--database-url"),
])
def test_unknown_missing_or_empty_flag(args, name):
    p = run(["--host", "127.0.0.1"] + args)
    check_one_line_naming(p, name)


@pytest.mark.parametrize("var,value", [
    ("TALLY_CAP", "zero"), ("TALLY_PORT", "99999"), ("PORT", "eighty"),
    ("TALLY_THREADS", "0"), ("TALLY_LOG_LEVEL", "chatty"), ("TALLY_BACKEND", "sqlite"),
    ("TALLY_IDLE_TIMEOUT", "forever"), ("TALLY_ADMIN_TOKEN", "has space"),
])
def test_bad_environment_value_exits_2_naming_it(var, value):
    args = ["--host", "127.0.0.1"]
    if var not in ("PORT", "TALLY_PORT"):
        args += ["--port", str(free_port())]  # a flag would win over the variable
    p = run(args, env={var: value})
    check_one_line_naming(p, var)


def test_flag_wins_over_a_bad_variable(tallyd):
    t = tallyd("--cap", "2", env={"TALLY_CAP": "zero"})
    assert first_numbers(t, 3) == [1, 2, 2]


def test_help_lists_every_flag():
    p = run(["--help"])
    assert p.returncode == 0 and p.stderr == ""
    out = p.stdout
    for flag in ["--host", "--port", "--threads", "--cap", "--backend", "--redis-url",
                 "--database-url", "--key", "--log-level", "--log-format", "--max-connections",
                 "--max-header-size", "--header-timeout", "--idle-timeout", "--shutdown-timeout",
                 "--help", "--version"]:
        assert re.search(r"(^|\s)%s\b" % re.escape(flag), out), "--help does not list %s" % flag
    for var in ["TALLY_CAP", "TALLY_PORT", "PORT", "REDIS_URL", "DATABASE_URL",
                "TALLY_ADMIN_TOKEN"]:
        assert re.search(r"\b%s\b" % var, out), "--help does not mention %s" % var
    assert run(["-h"]).stdout == out
    # --help wins over anything else on the line, even a bad value.
    assert run(["--cap", "3", "--help"]).returncode == 0


def test_version():
    p = run(["--version"])
    assert p.returncode == 0 and p.stderr == ""
    lines = p.stdout.splitlines()
    assert len(lines) == 1
    m = re.fullmatch(r"tallyd (\d+\.\d+\.\d+\S*)", lines[0])
    assert m, lines
    declared = re.search(r"version:\s*'([^']+)'", (REPO / "meson.build").read_text())
    assert declared and m.group(1) == declared.group(1)


# -- environment twins -----------------------------------------------------------


def first_numbers(t, n):
    return [json.loads(t.request("GET", "/").body)["request_num"] for _ in range(n)]


def test_env_tally_cap(tallyd):
    t = tallyd(env={"TALLY_CAP": "2"})
    assert first_numbers(t, 4) == [1, 2, 2, 2]
    assert t.request("GET", "/").header("Content-Length") == "33"


def test_flag_wins_over_tally_cap(tallyd):
    t = tallyd("--cap", "3", env={"TALLY_CAP": "2"})
    assert first_numbers(t, 4) == [1, 2, 3, 3]


@pytest.mark.parametrize("var", ["PORT", "TALLY_PORT"])
def test_env_port(tallyd, var):
    port = free_port()
    t = tallyd(env={var: str(port)}, port=port, port_flag=False)
    assert t.request("GET", "/healthz").status == 200


def test_tally_port_wins_over_port(tallyd):
    p1, p2 = free_port(), free_port()
    t = tallyd(env={"PORT": str(p1), "TALLY_PORT": str(p2)}, port=p2, port_flag=False)
    assert t.request("GET", "/healthz").status == 200
    assert rawhttp.connect_refused(p1)


def test_port_flag_wins_over_env(tallyd):
    p1, p2, p3 = free_port(), free_port(), free_port()
    t = tallyd("--port", str(p3), env={"PORT": str(p1), "TALLY_PORT": str(p2)}, port=p3,
               port_flag=False)
    assert t.request("GET", "/healthz").status == 200
    assert rawhttp.connect_refused(p1) and rawhttp.connect_refused(p2)


def test_env_twins_of_other_flags(tallyd):
    t = tallyd(env={"TALLY_THREADS": "3", "TALLY_LOG_FORMAT": "text", "TALLY_LOG_LEVEL": "warning",
                    "TALLY_MAX_HEADER_SIZE": "1k", "TALLY_CAP": "1"})
    r = t.request("GET", "/metrics")
    up = [l for l in r.body.decode().splitlines() if l.startswith("tally_backend_up")]
    assert len(up) == 3, up
    with t.conn() as c:
        c.send(rawhttp.build("GET", "/", headers={"X-Pad": "a" * 1500}))
        assert c.read_response().status == 431
    assert first_numbers(t, 2) == [1, 1]
    t.stop_ok()
    lines = t.log_text().splitlines()
    assert lines and all(not l.startswith("{") for l in lines)
    assert all(" | INFO " not in l for l in lines)
    assert any("already hit 1 requests" in l for l in lines)


def test_threads_flag(tallyd):
    t = tallyd("--threads", "4")
    body = t.request("GET", "/metrics").body.decode()
    up = [l for l in body.splitlines() if l.startswith("tally_backend_up")]
    assert len(up) == 4, up

