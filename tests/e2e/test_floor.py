"""The floor (src/counter/floor.h): a backend that loses writes under load
never makes tallyd grant a number twice.

Each test loads one or two tallyd processes sharing a real redis-server or
postgres with ab for a few seconds, makes the backend lose writes in the
middle (Redis killed and restarted empty on its port; the counter set back
by hand, as a restored backup would; PostgreSQL's row set back), and then
reads every granted number from the processes' logs (jq
.record.extra.request_count): no number appears twice, none exceeds CAP,
grants resume after the loss, and the loss is logged and counted in
/metrics and /readyz.
"""

import collections
import re
import subprocess
import time

CAP = 10**9


def start_load(port, seconds, conc=8):
    """ab -k for `seconds` against 127.0.0.1:port, in the background."""
    return subprocess.Popen(
        ["ab", "-s", "5", "-k", "-q", "-t", str(seconds), "-n", "5000000", "-c", str(conc),
         "http://127.0.0.1:%d/" % port],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_load(p):
    out, _ = p.communicate(timeout=60)
    m = re.search(r"Complete requests:\s+(\d+)", out)
    assert m, out
    return int(m.group(1))


def wait_ready(t, timeout=10.0):
    deadline = time.monotonic() + timeout
    while t.request("GET", "/readyz").status != 200:
        assert time.monotonic() < deadline, "not ready"
        time.sleep(0.02)


def granted(insts):
    """Every number the instances granted (from their logs), and the ones
    granted twice or more."""
    nums = []
    for t in insts:
        nums += t.request_counts()
    twice = [n for n, c in collections.Counter(nums).items() if c > 1]
    return nums, twice


def metric(t, name):
    m = re.search(r"\n%s (\d+)\n" % name, t.request("GET", "/metrics").body.decode())
    assert m, name
    return int(m.group(1))


def check_loss_seen(insts):
    """At least one instance saw the loss: logged, in /metrics, in /readyz."""
    lost = [metric(t, "tally_counter_lost_writes_total") for t in insts]
    assert sum(lost) >= 1, lost
    for t, n in zip(insts, lost):
        ready = t.request("GET", "/readyz").json()
        assert ready.get("lost_writes", 0) == n, ready
        lines = [r for r in t.records() if "lost writes" in r["record"]["message"]]
        assert len(lines) == n, (n, lines)
        assert all(r["record"]["level"]["name"] == "ERROR" for r in lines)


def test_redis_restarted_empty_under_load(tallyd, redis_server):
    """Redis without persistence killed and started again, empty, on its
    port while two processes grant: the first claim of each on the new
    server raises the counter to the highest number it had seen."""
    insts = [tallyd("--threads", "2", "--cap", str(CAP), "--backend", "redis", "--redis-url",
                    redis_server.url) for _ in range(2)]
    for t in insts:
        wait_ready(t)
    loads = [start_load(t.port, 3) for t in insts]
    time.sleep(1.2)
    before = int(redis_server.cli("get", "request_count"))
    redis_server.kill()
    redis_server.start()
    done = [finish_load(p) for p in loads]
    nums, twice = granted(insts)
    assert twice == [], "numbers granted twice: %s" % twice[:20]
    assert before > 0 and max(nums) <= CAP
    after = [n for n in nums if n > before]
    assert after, "no grant after the restart"
    assert int(redis_server.cli("get", "request_count")) >= max(nums)
    check_loss_seen(insts)
    assert sum(done) >= len(nums)


def test_redis_counter_set_back_under_load(tallyd, redis_server):
    """The counter set back by 500 (a restored backup) while a process
    grants: raised again, never granted twice."""
    t = tallyd("--threads", "2", "--cap", str(CAP), "--backend", "redis", "--redis-url",
               redis_server.url)
    wait_ready(t)
    load = start_load(t.port, 2)
    time.sleep(0.8)
    v = int(redis_server.cli("get", "request_count"))
    assert v > 500
    redis_server.cli("set", "request_count", str(v - 500))
    finish_load(load)
    nums, twice = granted([t])
    assert twice == [], "numbers granted twice: %s" % twice[:20]
    assert max(nums) > v
    check_loss_seen([t])
    assert metric(t, "tally_counter_lost_numbers_total") >= 1
    assert metric(t, "tally_counter_floor") == int(redis_server.cli("get", "request_count"))


def test_reset_epoch_survives_a_restart(tallyd, redis_server):
    """A reset moves the counter to the next epoch (KEY:epoch); Redis
    restarted empty afterwards loses the epoch too: the next claim restores
    it and the floor, so the numbers granted since the reset stay unique,
    and another process's older floor does not undo the reset."""
    token = "s3cret-token"
    a, b = [tallyd("--threads", "1", "--cap", "100000", "--backend", "redis", "--redis-url",
                   redis_server.url, env={"TALLY_ADMIN_TOKEN": token}) for _ in range(2)]
    wait_ready(a)
    wait_ready(b)
    for _ in range(30):
        assert b.request("GET", "/").status == 200  # b's floor: 30
    r = a.request("POST", "/reset", headers={"Authorization": "Bearer " + token})
    assert r.status == 200
    assert redis_server.cli("get", "request_count:epoch") == "1"
    got_a = [a.request("GET", "/").json()["request_num"] for _ in range(5)]
    assert got_a == [1, 2, 3, 4, 5]  # b's older floor did not undo the reset
    got_b = [b.request("GET", "/").json()["request_num"] for _ in range(5)]
    assert got_b == [6, 7, 8, 9, 10]  # b saw the new epoch: its old floor is gone
    # a has seen 5, b 10: a's claim on the emptied server goes past 5 by
    # what others could have taken since its last answer.
    redis_server.kill()
    redis_server.start()
    deadline = time.monotonic() + 5
    nxt = None
    while time.monotonic() < deadline:
        r = a.request("GET", "/")
        if r.status == 200:
            nxt = r.json()["request_num"]
            break
        time.sleep(0.05)
    assert nxt is not None and nxt > 10, nxt  # past b's 6..10, which a never saw
    assert redis_server.cli("get", "request_count:epoch") == "1"  # restored
    nb = b.request("GET", "/").json()["request_num"]
    assert nb > nxt, (nxt, nb)
    nums, twice = granted([a, b])
    assert twice == [] or set(twice) <= set(range(1, 31)), twice  # 1..30 came before the reset


def test_postgres_row_set_back_under_load(tallyd, postgres_server):
    """PostgreSQL's row set back by 500 (a failover to a standby that was
    behind, a restored backup) while two processes grant."""
    insts = [tallyd("--threads", "2", "--cap", str(CAP), "--backend", "postgres",
                    "--database-url", postgres_server.url) for _ in range(2)]
    for t in insts:
        wait_ready(t)
    loads = [start_load(t.port, 3) for t in insts]
    time.sleep(1.2)
    v = int(postgres_server.psql(
        "UPDATE tally_counters SET value = value - 500 WHERE name = 'request_count' "
        "RETURNING value + 500"))
    for p in loads:
        finish_load(p)
    nums, twice = granted(insts)
    assert twice == [], "numbers granted twice: %s" % twice[:20]
    assert max(nums) > v
    check_loss_seen(insts)
