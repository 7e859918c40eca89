"""podman play kube, as a user runs it: the playfile up, ab against it, the
granted numbers counted in `podman logs` with jq, --down, nothing left.
Then two tally pods sharing one Redis, and the PostgreSQL variant."""

import subprocess
import threading
import time

from podman_helpers import (
    MEASURED,
    PLAYFILE,
    PLAYFILE_POSTGRES,
    PLAYFILE_SCALE,
    ab,
    down,
    granted_numbers,
    http_get,
    parse_ab,
    play,
    podman_state,
    run,
    wait_granted,
    wait_http,
)

CAP = 100


def healthy(container):
    """podman's own run of the pod's livenessProbe (tally-healthcheck)."""
    p = run(["podman", "healthcheck", "run", container], check=False, timeout=60)
    return p.returncode == 0, p.stdout + p.stderr


def assert_nothing_left(stack, what):
    after = podman_state()
    before = stack["before"]
    for kind in ("pods", "containers", "volumes"):
        extra = after[kind] - before[kind]
        assert not extra, "%s left after --down: %s %s" % (what, kind, sorted(extra))


def test_playfile_redis(stack):
    cwd = stack["cwd"]
    MEASURED["play kube playfile.yaml"] = "%.1f s" % play(PLAYFILE, cwd)
    ps = run(["podman", "ps", "--format", "{{.Names}}", "--filter", "pod=tally"]).stdout.split()
    assert {"tally-tally", "tally-redis"} <= set(ps), ps

    t = time.monotonic()
    wait_http("http://127.0.0.1:8080/healthz", timeout=60)
    wait_http("http://127.0.0.1:8080/readyz", timeout=60)
    MEASURED["play kube to /readyz 200"] = "%.1f s" % (time.monotonic() - t)
    ok, out = healthy("tally-tally")
    assert ok, "liveness probe failed under podman: %s" % out

    r = ab("http://127.0.0.1:8080/", 10000, 10)
    MEASURED["ab -n 10000 -c 10 (playfile.yaml)"] = "complete %s, failed %s, non-2xx %s, %.0f req/s" % (
        r["complete"], r["failed"], r["non2xx"], r["rps"] or 0)
    assert r["rc"] == 0 and r["complete"] == 10000, r["output"][-3000:]
    assert r["failed"] == 0 and r["non2xx"] == 0, r["output"][-3000:]

    nums = wait_granted("tally-tally", CAP)
    time.sleep(0.5)
    nums = granted_numbers("tally-tally")
    MEASURED["jq granted numbers (playfile.yaml)"] = "%d lines, %d distinct, min %s, max %s" % (
        len(nums), len(set(nums)), min(nums, default=None), max(nums, default=None))
    assert sorted(nums) == list(range(1, CAP + 1)), "granted: %s" % sorted(nums)
    status, body = http_get("http://127.0.0.1:8080/")
    assert status == 200 and '"Go":"away!"' in body, body
    counter = run(["podman", "exec", "tally-redis", "redis-cli", "get", "request_count"]).stdout.strip()
    assert counter == str(CAP)

    # podman stops the pod with each container's STOPSIGNAL: tally exits 0.
    run(["podman", "pod", "stop", "-t", "20", "tally"], timeout=120)
    code = run(["podman", "inspect", "-f", "{{.State.ExitCode}}", "tally-tally"]).stdout.strip()
    assert code == "0", "tally exited %s on SIGTERM" % code
    MEASURED["play kube --down playfile.yaml"] = "%.1f s" % down(PLAYFILE, cwd)
    assert_nothing_left(stack, "playfile.yaml")


def test_two_tallies_share_one_redis(stack):
    """tally (8080) and tally2 (8081) on the Redis of playfile.yaml grant
    1..100 once between them, under concurrent ab load on both."""
    cwd = stack["cwd"]
    play(PLAYFILE, cwd)
    play(PLAYFILE_SCALE, cwd)
    for port in (8080, 8081):
        wait_http("http://127.0.0.1:%d/readyz" % port, timeout=60)
    assert healthy("tally2-tally")[0]

    # Ten numbers each first, alternating, so both are sure to hold some;
    # then both under ab at once.
    for i in range(20):
        status, body = http_get("http://127.0.0.1:%d/" % (8080 + i % 2))
        assert status == 200 and '"request_num":%d' % (i + 1) in body, body
    results = {}

    def load(port):
        p = subprocess.run(["ab", "-s", "5", "-n", "5000", "-c", "10", "http://127.0.0.1:%d/" % port],
                           capture_output=True, text=True, timeout=180)
        results[port] = parse_ab(p.stdout, p.stderr, p.returncode)

    threads = [threading.Thread(target=load, args=(port,)) for port in (8080, 8081)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for port, r in results.items():
        assert r["rc"] == 0 and r["complete"] == 5000, r["output"][-3000:]
        assert r["failed"] == 0 and r["non2xx"] == 0, r["output"][-3000:]

    a = wait_granted("tally-tally", 10)
    b = wait_granted("tally2-tally", 10)
    deadline = time.monotonic() + 10
    while len(a) + len(b) < CAP and time.monotonic() < deadline:
        time.sleep(0.2)
        a, b = granted_numbers("tally-tally"), granted_numbers("tally2-tally")
    MEASURED["two tallies, one Redis"] = "tally %d + tally2 %d numbers; ab %s / %s req/s" % (
        len(a), len(b), results[8080]["rps"], results[8081]["rps"])
    assert len(a) >= 10 and len(b) >= 10, (a, b)
    assert not set(a) & set(b), "granted by both: %s" % sorted(set(a) & set(b))
    assert sorted(a + b) == list(range(1, CAP + 1)), "granted: %s" % sorted(a + b)

    down(PLAYFILE_SCALE, cwd)
    down(PLAYFILE, cwd)
    assert_nothing_left(stack, "playfile.yaml + containers/playfile-scale.yaml")


def test_playfile_postgres(stack):
    cwd = stack["cwd"]
    MEASURED["play kube containers/playfile-postgres.yaml"] = "%.1f s" % play(PLAYFILE_POSTGRES, cwd)
    t = time.monotonic()
    wait_http("http://127.0.0.1:8080/readyz", timeout=90)
    MEASURED["postgres variant to /readyz 200"] = "%.1f s" % (time.monotonic() - t)
    assert healthy("tally-postgres-tally")[0]
    for i in range(1, 6):
        status, body = http_get("http://127.0.0.1:8080/")
        assert status == 200 and '"request_num":%d' % i in body, body
    assert sorted(wait_granted("tally-postgres-tally", 5)) == [1, 2, 3, 4, 5]
    value = run(["podman", "exec", "tally-postgres-postgres", "psql", "-U", "postgres", "-Atc",
                 "select value from tally_counters where name = 'request_count'"]).stdout.strip()
    assert value == "5"
    run(["podman", "pod", "stop", "-t", "20", "tally-postgres"], timeout=120)
    for ctr in ("tally-postgres-tally", "tally-postgres-postgres"):
        code = run(["podman", "inspect", "-f", "{{.State.ExitCode}}", ctr]).stdout.strip()
        assert code == "0", "%s exited %s" % (ctr, code)
    down(PLAYFILE_POSTGRES, cwd)
    assert_nothing_left(stack, "containers/playfile-postgres.yaml")
