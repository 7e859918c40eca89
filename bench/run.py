#!/usr/bin/python3
"""tally's benchmark: tallyd side by side with nginx and the Python original,
in one run, on one machine.

    bench/run            full run: writes bench/results/{results.md,results.png,raw.json}
    bench/run --baseline OLD/tallyd --only "tally memory,tally baseline"
                         this build against an earlier one, CPU per request
                         and req/s under every load, ratios per repetition
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

The code: this file parses the arguments and runs the repetitions;
bench_servers.py starts the servers (and their backends, with
tests/e2e/servers.py), loads.py runs ab and wrk against one, report.py
writes the results, procfs.py reads CPU time and RSS from /proc.
"""

import argparse
import datetime
import shutil
import sys
import tempfile
from pathlib import Path

from bench_servers import (BASELINE, HUGE_CAP, NGINX_JSON, REPO, start_nginx, start_postgres,
                           start_python_peer, start_redis, start_tally, stop_backends)
from loads import LOADS, idle_rss, measure, measure_order
from report import fmt, summarize, targets, write_report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="short loads, one repetition, targets not binding")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--tallyd", default=str(REPO / "build" / "tallyd"))
    ap.add_argument("--threads", type=int, default=0, help="tallyd --threads (0: its default)")
    ap.add_argument("--out", default=None, help="results directory")
    ap.add_argument("--only", default=None, help="comma-separated server names to run")
    ap.add_argument("--baseline", default=None, metavar="TALLYD",
                    help="another tallyd (an earlier build) measured as \"tally baseline\" "
                         "(memory, CAP 100) back to back with tally memory; the report adds "
                         "their per-repetition ratios")
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
        redis = start_redis(backends)
        pg = start_postgres(backends)
        redis_flags = ["--backend", "redis", "--redis-url", redis.url]
        pg_flags = ["--backend", "postgres", "--database-url", pg.url]
        t = args.threads
        servers.append(start_tally(args.tallyd, "tally memory", workdir, [], 100, t))
        if args.baseline:
            servers.append(start_tally(args.baseline, BASELINE, workdir, [], 100, t))
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
        peer_redis = start_redis(backends)
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
    except RuntimeError as e:  # PeerError, or a tallyd or backend that did not start
        failure = str(e)
    finally:
        for s in servers:
            s.proc.stop()
        stop_backends(backends)
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
